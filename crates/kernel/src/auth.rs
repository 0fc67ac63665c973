//! Who is calling, and what they may do. A request is authenticated once, by
//! the platform's middleware, which leaves either a [`Principal`] or an
//! [`AuthFailure`] in the request extensions; the extractors here read it.
//!
//! Privilege is visible in types: a handler that takes [`Staff`] cannot be
//! reached without the role, and a service method that takes `&Admin` cannot
//! be called by code that has not proven it.

use std::fmt;

use async_trait::async_trait;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::Problem;
use crate::id::UserId;

/// A role a user may hold; a user may hold several.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    User,
    Operator,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Self; 4] = [Self::User, Self::Operator, Self::Auditor, Self::Admin];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Operator => "OPERATOR",
            Self::Auditor => "AUDITOR",
            Self::Admin => "ADMIN",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

/// A set of roles, serialised as a sorted JSON array of names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(into = "Vec<Role>", try_from = "Vec<Role>")]
#[schema(value_type = Vec<Role>)]
pub struct Roles(u8);

impl Roles {
    #[must_use]
    pub fn of(roles: &[Role]) -> Self {
        Self(roles.iter().fold(0, |acc, r| acc | r.bit()))
    }

    #[must_use]
    pub const fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// ADMIN or OPERATOR.
    #[must_use]
    pub const fn is_staff(self) -> bool {
        self.contains(Role::Admin) || self.contains(Role::Operator)
    }

    /// Staff or AUDITOR.
    #[must_use]
    pub const fn is_reader(self) -> bool {
        self.is_staff() || self.contains(Role::Auditor)
    }

    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }

    /// The form stored in a database column: names joined by commas.
    #[must_use]
    pub fn to_column(self) -> String {
        self.iter().map(Role::as_str).collect::<Vec<_>>().join(",")
    }

    pub fn from_column(s: &str) -> Result<Self, UnknownRole> {
        s.split(',')
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Role>, _>>()
            .map(|r| Self::of(&r))
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl From<Roles> for Vec<Role> {
    fn from(r: Roles) -> Self {
        r.iter().collect()
    }
}

impl From<Vec<Role>> for Roles {
    fn from(r: Vec<Role>) -> Self {
        Self::of(&r)
    }
}

/// The authenticated caller: who, in which login, with which roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    /// The login (refresh-token family) the access token belongs to.
    pub session_id: Uuid,
    pub roles: Roles,
}

/// Why a presented token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("sign in first: no bearer token was sent")]
    Missing,
    #[error("the bearer token is malformed")]
    Malformed,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid")]
    Invalid,
    #[error("the access token was revoked; sign in again")]
    Revoked,
    #[error("tokens cannot be checked right now")]
    Unavailable,
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable => Self::unavailable(&e),
            _ => Self::unauthorized("UNAUTHORIZED", e.to_string()),
        }
    }
}

/// Checks access tokens. Identity implements it; any service can, with the
/// public keys from JWKS.
#[async_trait]
pub trait TokenVerifier: Send + Sync {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError>;
}

/// Left in the request extensions when a presented token was refused, so the
/// extractors answer 401 instead of treating the caller as anonymous.
#[derive(Debug, Clone)]
pub struct AuthFailure(pub AuthError);

fn principal_in(parts: &Parts) -> Result<Option<Principal>, Problem> {
    if let Some(failure) = parts.extensions.get::<AuthFailure>() {
        return Err(failure.0.clone().into());
    }
    Ok(parts.extensions.get::<Principal>().copied())
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        principal_in(parts)?.ok_or_else(|| AuthError::Missing.into())
    }
}

/// `Option<Principal>`: anonymous when no token was sent, 401 when a bad one was.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        principal_in(parts)
    }
}

macro_rules! role_guard {
    ($(#[$meta:meta])* $name:ident, $allowed:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name(Principal);

        impl $name {
            /// The proof, if the principal holds the role.
            #[must_use]
            pub fn check(principal: Principal) -> Option<Self> {
                let allowed: fn(Roles) -> bool = $allowed;
                allowed(principal.roles).then_some(Self(principal))
            }

            #[must_use]
            pub const fn principal(&self) -> &Principal {
                &self.0
            }
        }

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = Problem;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
                let principal =
                    <Principal as FromRequestParts<S>>::from_request_parts(parts, state).await?;
                Self::check(principal).ok_or_else(Problem::forbidden)
            }
        }
    };
}

role_guard!(
    /// Proof that the caller is an ADMIN.
    Admin,
    |r| r.contains(Role::Admin)
);
role_guard!(
    /// Proof that the caller is staff: ADMIN or OPERATOR.
    Staff,
    Roles::is_staff
);
role_guard!(
    /// Proof that the caller may read everything staff can: staff or AUDITOR.
    Reader,
    Roles::is_reader
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_serialise_as_sorted_names_and_round_trip_through_a_column() {
        let roles = Roles::of(&[Role::Admin, Role::User]);
        assert_eq!(
            serde_json::to_string(&roles).ok().as_deref(),
            Some(r#"["USER","ADMIN"]"#)
        );
        assert_eq!(roles.to_column(), "USER,ADMIN");
        assert_eq!(Roles::from_column("USER,ADMIN").ok(), Some(roles));
        assert!(Roles::from_column("USER,ROOT").is_err());
    }

    #[test]
    fn staff_and_readers_are_who_the_contract_says() {
        let p = |r: &[Role]| Principal {
            user_id: UserId::new(),
            session_id: Uuid::nil(),
            roles: Roles::of(r),
        };
        assert!(Staff::check(p(&[Role::Operator])).is_some());
        assert!(Staff::check(p(&[Role::Auditor])).is_none());
        assert!(Reader::check(p(&[Role::Auditor])).is_some());
        assert!(Reader::check(p(&[Role::User])).is_none());
        assert!(Admin::check(p(&[Role::Operator])).is_none());
        assert!(Admin::check(p(&[Role::Admin])).is_some());
        assert!(Reader::check(p(&[Role::Admin])).is_some());
    }
}
