//! Typed UUID identifiers. Every id is a UUID v7, so ordering by id is
//! ordering by creation time — keyset pagination relies on it.

/// Declares a UUID newtype id that serialises as a string, stores as a UUID
/// on PostgreSQL and a 16-byte blob on SQLite (through sqlx or rusqlite),
/// and documents itself in OpenAPI.
#[macro_export]
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize, ::sqlx::Type, ::utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub ::uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            #[must_use]
            pub fn new() -> Self {
                Self(::uuid::Uuid::now_v7())
            }
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = ::uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        impl From<$name> for ::uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        /// The 16-byte blob sqlx writes, for the SQLite writer's direct connection.
        impl $crate::db::rusqlite::ToSql for $name {
            fn to_sql(
                &self,
            ) -> $crate::db::rusqlite::Result<$crate::db::rusqlite::types::ToSqlOutput<'_>> {
                Ok($crate::db::rusqlite::types::ToSqlOutput::Borrowed(
                    $crate::db::rusqlite::types::ValueRef::Blob(self.0.as_bytes()),
                ))
            }
        }
    };
}

id_type!(
    /// A user account, owned by the identity module and referred to by every other.
    UserId
);
