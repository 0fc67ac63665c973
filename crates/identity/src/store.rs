//! Identity's tables, behind a trait shaped like the use cases. One SQL
//! implementation serves SQLite and PostgreSQL through `kernel::write_tx!`
//! and `kernel::read!`; the conformance suite in `tests/store.rs` runs it on
//! each.

use async_trait::async_trait;
use bus::{Envelope, Message};
use kernel::db::{Backend, Db, is_unique_violation};
use kernel::{PageRequest, Roles, Timestamp, UserId};
use uuid::Uuid;

use crate::model::{Credentials, Email, NewUser, Rotation, User};
use contracts::identity::{UserLoggedIn, UserSignedUp, UserTokensRevoked};

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("the email is taken")]
    EmailTaken,
    #[error("the referral code is taken")]
    ReferralCodeTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The outcome of a role change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    Changed(User),
    NotFound,
    /// It would have left no ADMIN.
    LastAdmin,
}

/// A new login: its session and first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: Uuid,
    pub user_id: UserId,
    pub refresh_token_hash: Vec<u8>,
    pub expires_at: Timestamp,
    pub now: Timestamp,
}

/// A test user and the login its access token will name.
#[derive(Debug, Clone)]
pub struct NewTestUser {
    pub user: NewUser,
    pub session_id: Uuid,
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Creates the user (and records the referral). Unique email and code.
    async fn create_user(&self, new: NewUser) -> Result<User, CreateUserError>;
    /// The owner of a referral code.
    async fn user_by_referral_code(&self, code: &str) -> Result<Option<UserId>, sqlx::Error>;
    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, sqlx::Error>;
    async fn credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, sqlx::Error>;
    /// Users in id order, optionally those whose email contains a fragment.
    async fn list_users(
        &self,
        email_contains: Option<String>,
        page: PageRequest,
    ) -> Result<Vec<User>, sqlx::Error>;
    /// How many users hold ADMIN.
    async fn admin_count(&self) -> Result<u64, sqlx::Error>;
    /// Replaces a user's roles and invalidates their access tokens, unless it
    /// would leave no ADMIN.
    async fn set_roles(
        &self,
        id: UserId,
        roles: Roles,
        now: Timestamp,
    ) -> Result<RoleChange, sqlx::Error>;
    async fn token_version(&self, id: UserId) -> Result<Option<i64>, sqlx::Error>;
    /// Records a login with its first refresh token.
    async fn start_session(&self, session: NewSession) -> Result<(), sqlx::Error>;
    /// Presents a refresh token: rotates it, or detects its reuse and revokes
    /// the login (and the user's access tokens).
    async fn rotate_refresh_token(
        &self,
        presented_hash: Vec<u8>,
        replacement_hash: Vec<u8>,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Rotation, sqlx::Error>;
    /// Revokes a login and the user's access tokens; `None` if it was not active.
    async fn revoke_session(
        &self,
        session_id: Uuid,
        now: Timestamp,
    ) -> Result<Option<UserId>, sqlx::Error>;
    /// The login a refresh token belongs to.
    async fn session_of_refresh_token(&self, hash: Vec<u8>) -> Result<Option<Uuid>, sqlx::Error>;
    /// Stores `candidate` as the signing key unless one exists; returns the
    /// key in force (kid, PKCS#8 DER).
    async fn signing_key(
        &self,
        candidate: (String, Vec<u8>),
        now: Timestamp,
    ) -> Result<(String, Vec<u8>), sqlx::Error>;
    /// Creates test users, each with one login (no refresh token), in one
    /// transaction: all of them or none. Each sign-up is announced.
    async fn create_test_users(
        &self,
        users: Vec<NewTestUser>,
    ) -> Result<Vec<Credentials>, CreateUserError>;
}

/// Marks a login revoked and bumps its user's token version, so access
/// tokens issued before now are refused. Evaluates to the user if the login
/// was active. A macro so it runs on either backend's connection.
macro_rules! revoke_in_tx {
    ($conn:expr, $session_id:expr, $now:expr) => {{
        let user: Option<UserId> = sqlx::query_scalar(
            "update login_sessions set revoked_at = $2 \
             where id = $1 and revoked_at is null returning user_id",
        )
        .bind($session_id)
        .bind($now)
        .fetch_optional(&mut *$conn)
        .await?;
        if let Some(user) = user {
            let token_version: i64 = sqlx::query_scalar(
                "update users set token_version = token_version + 1 where id = $1 \
                 returning token_version",
            )
            .bind(user)
            .fetch_one(&mut *$conn)
            .await?;
            let revoked = envelope(
                &UserTokensRevoked {
                    user_id: user,
                    token_version,
                    revoked_at: $now,
                },
                $now,
            )?;
            bus::enqueue!($conn, &revoked)?;
        }
        user
    }};
}

/// A message for the outbox; an encoding failure fails the transaction.
fn envelope<M: Message>(message: &M, at: Timestamp) -> Result<Envelope, sqlx::Error> {
    Envelope::new(message, at).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// The SQL implementation for both backends.
#[derive(Debug, Clone)]
pub struct SqlIdentityStore {
    db: Db,
}

impl SqlIdentityStore {
    #[must_use]
    pub const fn new(db: Db) -> Self {
        Self { db }
    }
}

/// The columns a [`UserRow`] reads, for `concat!` (sqlx takes only static SQL).
macro_rules! user_columns {
    () => {
        "id, email, roles, referral_code, created_at, password_hash, token_version"
    };
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: UserId,
    email: String,
    roles: String,
    referral_code: String,
    created_at: Timestamp,
    password_hash: String,
    token_version: i64,
}

impl TryFrom<UserRow> for Credentials {
    type Error = sqlx::Error;
    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let roles = Roles::from_column(&row.roles).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Ok(Self {
            user: User {
                id: row.id,
                email: Email::from_stored(row.email),
                roles,
                referral_code: row.referral_code,
                created_at: row.created_at,
            },
            password_hash: row.password_hash,
            token_version: row.token_version,
        })
    }
}

/// Inserts one user ($1 id … $6 created_at) and reads it back as a [`UserRow`].
const INSERT_USER: &str = concat!(
    "insert into users (id, email, password_hash, roles, referral_code, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, $6) returning ",
    user_columns!()
);

fn create_user_error(e: sqlx::Error) -> CreateUserError {
    if is_unique_violation(&e, "email") {
        CreateUserError::EmailTaken
    } else if is_unique_violation(&e, "referral_code") {
        CreateUserError::ReferralCodeTaken
    } else {
        CreateUserError::Database(e)
    }
}

fn into_user(row: UserRow) -> Result<User, sqlx::Error> {
    Credentials::try_from(row).map(|c| c.user)
}

/// Users holding ADMIN (roles are stored as names joined by commas).
const COUNT_ADMINS: &str = "select count(*) from users where roles like '%ADMIN%'";

/// Serialises role changes on PostgreSQL so two admins demoting each other
/// at once cannot leave none; SQLite's single writer already does.
const ROLE_CHANGE_LOCK: i64 = 0x5354_4d50_0001;

#[async_trait]
impl IdentityStore for SqlIdentityStore {
    async fn create_user(&self, new: NewUser) -> Result<User, CreateUserError> {
        let signed_up = envelope(
            &UserSignedUp {
                user_id: new.id,
                referred_by: new.referred_by,
                signed_up_at: new.created_at,
            },
            new.created_at,
        )?;
        let result: Result<User, sqlx::Error> = kernel::write_tx!(&self.db, |conn| {
            let row: UserRow = sqlx::query_as(INSERT_USER)
                .bind(new.id)
                .bind(new.email.as_str())
                .bind(&new.password_hash)
                .bind(new.roles.to_column())
                .bind(&new.referral_code)
                .bind(new.created_at)
                .fetch_one(&mut *conn)
                .await?;
            if let Some(referrer) = new.referred_by {
                sqlx::query(
                    "insert into referrals (referred_id, referrer_id, created_at) values ($1, $2, $3)",
                )
                .bind(new.id)
                .bind(referrer)
                .bind(new.created_at)
                .execute(&mut *conn)
                .await?;
            }
            bus::enqueue!(conn, &signed_up)?;
            into_user(row)
        });
        result.map_err(create_user_error)
    }

    async fn user_by_referral_code(&self, code: &str) -> Result<Option<UserId>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar("select id from users where referral_code = $1")
                .bind(code)
                .fetch_optional(pool)
                .await
        })
    }

    async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, sqlx::Error> {
        let sql = concat!("select ", user_columns!(), " from users where email = $1");
        let row: Option<UserRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(email.as_str())
                .fetch_optional(pool)
                .await
        })?;
        row.map(Credentials::try_from).transpose()
    }

    async fn credentials_by_id(&self, id: UserId) -> Result<Option<Credentials>, sqlx::Error> {
        let sql = concat!("select ", user_columns!(), " from users where id = $1");
        let row: Option<UserRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(Credentials::try_from).transpose()
    }

    async fn list_users(
        &self,
        email_contains: Option<String>,
        page: PageRequest,
    ) -> Result<Vec<User>, sqlx::Error> {
        let pattern =
            email_contains.map(|f| kernel::db::contains_pattern(&f.trim().to_lowercase()));
        let sql = concat!(
            "select ",
            user_columns!(),
            " from users where ($1 is null or email like $1 escape '\\') \
             and ($2 is null or id > $2) order by id limit $3"
        );
        let rows: Vec<UserRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(&pattern)
                .bind(page.after.map(UserId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(into_user).collect()
    }

    async fn admin_count(&self) -> Result<u64, sqlx::Error> {
        let admins: i64 = kernel::read!(&self.db, |pool| {
            sqlx::query_scalar(COUNT_ADMINS).fetch_one(pool).await
        })?;
        Ok(u64::try_from(admins).unwrap_or_default())
    }

    async fn set_roles(
        &self,
        id: UserId,
        roles: Roles,
        now: Timestamp,
    ) -> Result<RoleChange, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            if backend == Backend::Postgres {
                sqlx::query("select pg_advisory_xact_lock($1)")
                    .bind(ROLE_CHANGE_LOCK)
                    .execute(&mut *conn)
                    .await?;
            }
            let current: Option<String> =
                sqlx::query_scalar("select roles from users where id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(current) = current else {
                return Ok(RoleChange::NotFound);
            };
            let current =
                Roles::from_column(&current).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            if current.contains(kernel::Role::Admin) && !roles.contains(kernel::Role::Admin) {
                let admins: i64 = sqlx::query_scalar(COUNT_ADMINS)
                    .fetch_one(&mut *conn)
                    .await?;
                if admins <= 1 {
                    return Ok(RoleChange::LastAdmin);
                }
            }
            let row: UserRow = sqlx::query_as(concat!(
                "update users set roles = $2, token_version = token_version + 1, updated_at = $3 \
                 where id = $1 returning ",
                user_columns!()
            ))
            .bind(id)
            .bind(roles.to_column())
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            let revoked = envelope(
                &UserTokensRevoked {
                    user_id: id,
                    token_version: row.token_version,
                    revoked_at: now,
                },
                now,
            )?;
            bus::enqueue!(conn, &revoked)?;
            into_user(row).map(RoleChange::Changed)
        })
    }

    async fn token_version(&self, id: UserId) -> Result<Option<i64>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar("select token_version from users where id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    async fn start_session(&self, session: NewSession) -> Result<(), sqlx::Error> {
        let logged_in = envelope(
            &UserLoggedIn {
                user_id: session.user_id,
                session_id: session.session_id,
                logged_in_at: session.now,
            },
            session.now,
        )?;
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query("insert into login_sessions (id, user_id, created_at) values ($1, $2, $3)")
                .bind(session.session_id)
                .bind(session.user_id)
                .bind(session.now)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "insert into refresh_tokens (token_hash, session_id, expires_at, created_at) \
                 values ($1, $2, $3, $4)",
            )
            .bind(session.refresh_token_hash)
            .bind(session.session_id)
            .bind(session.expires_at)
            .bind(session.now)
            .execute(&mut *conn)
            .await?;
            bus::enqueue!(conn, &logged_in)
        })
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: Vec<u8>,
        replacement_hash: Vec<u8>,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Rotation, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            let found: Option<(
                Uuid,
                UserId,
                Timestamp,
                Option<Timestamp>,
                Option<Timestamp>,
            )> = sqlx::query_as(
                "select t.session_id, s.user_id, t.expires_at, t.rotated_at, s.revoked_at \
                     from refresh_tokens t join login_sessions s on s.id = t.session_id \
                     where t.token_hash = $1",
            )
            .bind(&presented_hash)
            .fetch_optional(&mut *conn)
            .await?;
            let Some((session_id, user_id, token_expires_at, rotated_at, revoked_at)) = found
            else {
                return Ok(Rotation::Invalid);
            };
            if revoked_at.is_some() || token_expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            // The conditional update makes exactly one of two racing refreshes the winner.
            let won = rotated_at.is_none()
                && sqlx::query(
                    "update refresh_tokens set rotated_at = $2 \
                     where token_hash = $1 and rotated_at is null",
                )
                .bind(&presented_hash)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                    == 1;
            if !won {
                revoke_in_tx!(conn, session_id, now);
                return Ok(Rotation::Reused { user_id });
            }
            sqlx::query(
                "insert into refresh_tokens (token_hash, session_id, expires_at, created_at) \
                 values ($1, $2, $3, $4)",
            )
            .bind(replacement_hash)
            .bind(session_id)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(Rotation::Rotated {
                user_id,
                session_id,
            })
        })
    }

    async fn revoke_session(
        &self,
        session_id: Uuid,
        now: Timestamp,
    ) -> Result<Option<UserId>, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| Ok(revoke_in_tx!(conn, session_id, now)))
    }

    async fn session_of_refresh_token(&self, hash: Vec<u8>) -> Result<Option<Uuid>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_scalar("select session_id from refresh_tokens where token_hash = $1")
                .bind(hash)
                .fetch_optional(pool)
                .await
        })
    }

    async fn signing_key(
        &self,
        candidate: (String, Vec<u8>),
        now: Timestamp,
    ) -> Result<(String, Vec<u8>), sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into signing_keys (kid, private_pkcs8, created_at) \
                 select $1, $2, $3 where not exists (select 1 from signing_keys)",
            )
            .bind(candidate.0)
            .bind(candidate.1)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query_as(
                "select kid, private_pkcs8 from signing_keys order by created_at, kid limit 1",
            )
            .fetch_one(&mut *conn)
            .await
        })
    }

    async fn create_test_users(
        &self,
        users: Vec<NewTestUser>,
    ) -> Result<Vec<Credentials>, CreateUserError> {
        let signed_up = users
            .iter()
            .map(|new| {
                envelope(
                    &UserSignedUp {
                        user_id: new.user.id,
                        referred_by: None,
                        signed_up_at: new.user.created_at,
                    },
                    new.user.created_at,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let result: Result<Vec<Credentials>, sqlx::Error> = kernel::write_tx!(&self.db, |conn| {
            let mut created = Vec::with_capacity(users.len());
            for (new, announcement) in users.iter().zip(&signed_up) {
                let row: UserRow = sqlx::query_as(INSERT_USER)
                    .bind(new.user.id)
                    .bind(new.user.email.as_str())
                    .bind(&new.user.password_hash)
                    .bind(new.user.roles.to_column())
                    .bind(&new.user.referral_code)
                    .bind(new.user.created_at)
                    .fetch_one(&mut *conn)
                    .await?;
                sqlx::query(
                    "insert into login_sessions (id, user_id, created_at) values ($1, $2, $3)",
                )
                .bind(new.session_id)
                .bind(new.user.id)
                .bind(new.user.created_at)
                .execute(&mut *conn)
                .await?;
                bus::enqueue!(conn, announcement)?;
                created.push(Credentials::try_from(row)?);
            }
            Ok(created)
        });
        result.map_err(create_user_error)
    }
}
