//! Identity's use cases. Handlers call these; so do the CLI (first admin)
//! and the platform (token checks through [`TokenVerifier`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gate::{Quota, RateLimiter};
use kernel::auth::{Admin, AuthError, Reader, TokenVerifier};
use kernel::{Page, PageRequest, Principal, Role, Roles, SharedClock, UserId, Violations};
use time::Duration;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::IdentityError;
use crate::model::{
    Credentials, Email, LoginRequest, NewUser, Password, REFERRAL_CODE_LEN, Rotation,
    SignupRequest, TestUser, TestUserBatch, TestUsersRequest, Tokens, User, email_filter,
    normalise_referral_code, referral_code_from,
};
use crate::store::{CreateUserError, IdentityStore, NewSession, NewTestUser, RoleChange};
use crate::tokens::{
    Claims, ISSUER, Jwks, KeyRing, new_refresh_token, random_bytes, refresh_token_hash,
};

/// Identity's tunables.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Failed logins allowed for one email from one client address before
    /// that address gets 429 for that email; other addresses are not refused.
    pub login_failures_per_email_and_address: Quota,
    /// Failed logins allowed per client address, over every email, before 429.
    pub login_failures_per_address: Quota,
    /// How long a token version is trusted from memory before it is re-read;
    /// bounds staleness when several instances share one database.
    pub token_version_cache_ttl: StdDuration,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::minutes(10),
            refresh_token_ttl: Duration::days(30),
            login_failures_per_email_and_address: Quota::per_period(
                5,
                StdDuration::from_secs(15 * 60),
            ),
            login_failures_per_address: Quota::per_period(50, StdDuration::from_secs(15 * 60)),
            token_version_cache_ttl: StdDuration::from_secs(5),
        }
    }
}

/// Most verified access tokens remembered, and for how long.
const VERIFIED_TOKENS: u64 = 100_000;
const VERIFIED_TOKEN_TTL: StdDuration = StdDuration::from_secs(60);
/// Test users written per transaction, so the SQLite writer is never held long.
const TEST_USERS_PER_WRITE: usize = 1000;

pub struct IdentityService {
    store: Arc<dyn IdentityStore>,
    keys: KeyRing,
    clock: SharedClock,
    limiter: Arc<dyn RateLimiter>,
    settings: IdentitySettings,
    /// user → current token version; written through on every change here.
    versions: moka::sync::Cache<UserId, i64>,
    /// Access tokens whose signature was already checked (expiry and version
    /// are still checked on every use): Ed25519 verification is the dearest
    /// step of a signed-in request.
    /// Shared, so that a hit clones a pointer rather than the claims' strings.
    verified: moka::sync::Cache<String, Arc<Claims>>,
    /// Argon2 takes ~19 MiB and tens of milliseconds; this bounds how many run at once.
    hashing: Semaphore,
    /// Verified against when the email is unknown, so both failures take as long.
    dummy_hash: String,
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityService")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Internal(e.to_string())
}

impl IdentityService {
    /// Builds the service. The signing key is `configured_key` (PKCS#8 DER)
    /// when given, else the one stored, else a new one that is stored.
    pub async fn start(
        store: Arc<dyn IdentityStore>,
        clock: SharedClock,
        limiter: Arc<dyn RateLimiter>,
        settings: IdentitySettings,
        configured_key: Option<Vec<u8>>,
    ) -> Result<Self, IdentityError> {
        let der = match configured_key {
            Some(der) => der,
            None => {
                let candidate = KeyRing::generate_pkcs8().map_err(internal)?;
                let kid = KeyRing::kid_of(&candidate).map_err(internal)?;
                store.signing_key((kid, candidate), clock.now()).await?.1
            }
        };
        let keys = KeyRing::from_pkcs8(&der).map_err(internal)?;
        let parallel = std::thread::available_parallelism().map_or(2, usize::from);
        let dummy_hash = tokio::task::spawn_blocking(|| hash(b"not a real password"))
            .await
            .map_err(internal)??;
        Ok(Self {
            store,
            keys,
            clock,
            limiter,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_live(VERIFIED_TOKEN_TTL)
                .build(),
            versions: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(settings.token_version_cache_ttl)
                .build(),
            settings,
            hashing: Semaphore::new(parallel * 2),
            dummy_hash,
        })
    }

    #[must_use]
    pub const fn settings(&self) -> &IdentitySettings {
        &self.settings
    }

    #[must_use]
    pub fn jwks(&self) -> Jwks {
        self.keys.jwks()
    }

    /// Signs a user up with the `USER` role.
    #[tracing::instrument(name = "identity.sign_up", skip_all)]
    pub async fn sign_up(&self, request: SignupRequest) -> Result<User, IdentityError> {
        let mut v = Violations::default();
        let email = v.check("email", Email::parse(&request.email));
        let password = v.check("password", Password::parse(&request.password));
        let code = request
            .referral_code
            .as_deref()
            .map(normalise_referral_code)
            .transpose();
        let referrer = match v.check("referral_code", code).flatten().flatten() {
            None => None,
            Some(code) => {
                let owner = self.store.user_by_referral_code(&code).await?;
                if owner.is_none() {
                    v.add("referral_code", "is not a known referral code");
                }
                owner
            }
        };
        if let Err(problem) = v.finish() {
            return Err(IdentityError::Invalid(problem.into_details().errors));
        }
        let (Some(email), Some(password)) = (email, password) else {
            return Err(internal("validated fields missing"));
        };
        self.create_user(email, &password, Roles::of(&[Role::User]), referrer)
            .await
    }

    async fn create_user(
        &self,
        email: Email,
        password: &Password,
        roles: Roles,
        referred_by: Option<UserId>,
    ) -> Result<User, IdentityError> {
        let password_hash = self.hash_password(password).await?;
        // A fresh code collides about once in 10^12 sign-ups; retry a few times.
        for _ in 0..5 {
            let new = NewUser {
                id: UserId::new(),
                email: email.clone(),
                password_hash: password_hash.clone(),
                roles,
                referral_code: referral_code_from(
                    random_bytes::<REFERRAL_CODE_LEN>().map_err(internal)?,
                ),
                referred_by,
                created_at: self.clock.now(),
            };
            match self.store.create_user(new).await {
                Ok(user) => return Ok(user),
                Err(CreateUserError::EmailTaken) => return Err(IdentityError::EmailTaken),
                Err(CreateUserError::ReferralCodeTaken) => {}
                Err(CreateUserError::Database(e)) => return Err(e.into()),
            }
        }
        Err(internal("could not find a free referral code"))
    }

    /// Creates an ADMIN; fails if the email is taken.
    #[tracing::instrument(name = "identity.create_admin", skip_all)]
    pub async fn create_admin(&self, email: &str, password: &str) -> Result<User, IdentityError> {
        let email =
            Email::parse(email).map_err(|e| IdentityError::invalid("email", e.to_string()))?;
        let password = Password::parse(password)
            .map_err(|e| IdentityError::invalid("password", e.to_string()))?;
        self.create_user(
            email,
            &password,
            Roles::of(&[Role::User, Role::Admin]),
            None,
        )
        .await
    }

    /// Creates the first admin at start-up unless the email exists; true if created.
    #[tracing::instrument(name = "identity.ensure_admin", skip_all)]
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<bool, IdentityError> {
        match self.create_admin(email, password).await {
            Ok(_) => Ok(true),
            Err(IdentityError::EmailTaken) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Checks a password and starts a login. Failures are throttled per
    /// (email, client address) and per client address, and answer the same
    /// whether the email exists. A throttled address is refused before the
    /// password is checked, the right one included; an address that has not
    /// failed for an email is not, so nobody can lock the owner out
    /// (`docs/adr/0004-rate-limiting.md`).
    #[tracing::instrument(name = "identity.log_in", skip_all)]
    pub async fn log_in(
        &self,
        request: LoginRequest,
        client: IpAddr,
    ) -> Result<Tokens, IdentityError> {
        let typed_email = request.email.trim().to_lowercase();
        let pair_key = format!("login-failures:email-addr:{client}/{typed_email}");
        let address_key = format!("login-failures:addr:{client}");
        let by_pair = self.settings.login_failures_per_email_and_address;
        let by_address = self.settings.login_failures_per_address;
        for (key, quota) in [(&pair_key, by_pair), (&address_key, by_address)] {
            if let Err(limited) = self.limiter.peek(key, quota).await {
                return Err(IdentityError::LoginThrottled {
                    retry_after_secs: limited.retry_after_secs(),
                });
            }
        }
        let credentials = match Email::parse(&typed_email) {
            Ok(email) => self.store.credentials(&email).await?,
            Err(_) => None,
        };
        let stored_hash = credentials
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |c| c.password_hash.as_str());
        let matches = self.verify_password(&request.password, stored_hash).await?;
        let Some(credentials) = credentials.filter(|_| matches) else {
            let _ = self.limiter.acquire(&pair_key, by_pair).await;
            let _ = self.limiter.acquire(&address_key, by_address).await;
            return Err(IdentityError::InvalidCredentials);
        };
        let session_id = Uuid::now_v7();
        let refresh_token = new_refresh_token().map_err(internal)?;
        let now = self.clock.now();
        self.store
            .start_session(NewSession {
                session_id,
                user_id: credentials.user.id,
                refresh_token_hash: refresh_token_hash(&refresh_token),
                expires_at: now + self.settings.refresh_token_ttl,
                now,
            })
            .await?;
        tracing::info!(user_id = %credentials.user.id, "user logged in");
        self.issue(credentials, session_id, refresh_token)
    }

    /// Exchanges a refresh token for new tokens. A token presented twice
    /// revokes its whole login.
    #[tracing::instrument(name = "identity.refresh", skip_all)]
    pub async fn refresh(&self, presented: &str) -> Result<Tokens, IdentityError> {
        let replacement = new_refresh_token().map_err(internal)?;
        let now = self.clock.now();
        let rotation = self
            .store
            .rotate_refresh_token(
                refresh_token_hash(presented),
                refresh_token_hash(&replacement),
                now + self.settings.refresh_token_ttl,
                now,
            )
            .await?;
        match rotation {
            Rotation::Invalid => Err(IdentityError::InvalidRefreshToken),
            Rotation::Reused { user_id } => {
                self.versions.invalidate(&user_id);
                tracing::warn!(%user_id, "refresh token reused; login revoked");
                Err(IdentityError::RefreshTokenReused)
            }
            Rotation::Rotated {
                user_id,
                session_id,
            } => {
                let credentials = self
                    .store
                    .credentials_by_id(user_id)
                    .await?
                    .ok_or(IdentityError::InvalidRefreshToken)?;
                self.issue(credentials, session_id, replacement)
            }
        }
    }

    /// Ends the login an access token belongs to.
    #[tracing::instrument(name = "identity.log_out_session", skip_all)]
    pub async fn log_out_session(&self, session_id: Uuid) -> Result<(), IdentityError> {
        if let Some(user_id) = self
            .store
            .revoke_session(session_id, self.clock.now())
            .await?
        {
            self.versions.invalidate(&user_id);
        }
        Ok(())
    }

    /// Ends the login a refresh token belongs to; an unknown token is a no-op.
    #[tracing::instrument(name = "identity.log_out_refresh_token", skip_all)]
    pub async fn log_out_refresh_token(&self, presented: &str) -> Result<(), IdentityError> {
        match self
            .store
            .session_of_refresh_token(refresh_token_hash(presented))
            .await?
        {
            Some(session_id) => self.log_out_session(session_id).await,
            None => Ok(()),
        }
    }

    #[tracing::instrument(name = "identity.me", skip_all)]
    pub async fn me(&self, principal: &Principal) -> Result<User, IdentityError> {
        self.find(principal.user_id).await
    }

    #[tracing::instrument(name = "identity.list_users", skip_all)]
    pub async fn list_users(
        &self,
        _: &Admin,
        email_contains: Option<String>,
        page: PageRequest,
    ) -> Result<Page<User>, IdentityError> {
        let email_contains = email_filter(email_contains)
            .map_err(|e| IdentityError::invalid("email", e.to_string()))?;
        let rows = self.store.list_users(email_contains, page).await?;
        Ok(Page::from_rows(rows, page, "users", |u| u.id.0))
    }

    #[tracing::instrument(name = "identity.user", skip_all)]
    pub async fn user(&self, _: &Admin, id: UserId) -> Result<User, IdentityError> {
        self.find(id).await
    }

    /// The user with exactly this email (readers): whom the dashboard's
    /// sample checks are about.
    #[tracing::instrument(name = "identity.user_by_email", skip_all)]
    pub async fn user_by_email(&self, _: &Reader, email: &str) -> Result<User, IdentityError> {
        let email =
            Email::parse(email).map_err(|e| IdentityError::invalid("email", e.to_string()))?;
        self.store
            .credentials(&email)
            .await?
            .map(|c| c.user)
            .ok_or(IdentityError::UserNotFound)
    }

    /// How many users hold ADMIN (the last one cannot lose the role).
    #[tracing::instrument(name = "identity.admin_count", skip_all)]
    pub async fn admin_count(&self, _: &Admin) -> Result<u64, IdentityError> {
        Ok(self.store.admin_count().await?)
    }

    /// Replaces a user's roles; their access tokens stop working at once.
    #[tracing::instrument(name = "identity.set_roles", skip_all)]
    pub async fn set_roles(
        &self,
        _: &Admin,
        id: UserId,
        names: &[String],
    ) -> Result<User, IdentityError> {
        let mut v = Violations::default();
        let roles: Vec<Role> = names
            .iter()
            .filter_map(|n| v.check("roles", n.parse::<Role>()))
            .collect();
        if names.is_empty() {
            v.add("roles", "must name at least one role");
        }
        v.finish()
            .map_err(|p| IdentityError::Invalid(p.into_details().errors))?;
        match self
            .store
            .set_roles(id, Roles::of(&roles), self.clock.now())
            .await?
        {
            RoleChange::Changed(user) => {
                self.versions.invalidate(&id);
                tracing::info!(user_id = %id, roles = ?user.roles, "roles changed");
                Ok(user)
            }
            RoleChange::NotFound => Err(IdentityError::UserNotFound),
            RoleChange::LastAdmin => Err(IdentityError::LastAdmin),
        }
    }

    async fn find(&self, id: UserId) -> Result<User, IdentityError> {
        self.store
            .credentials_by_id(id)
            .await?
            .map(|c| c.user)
            .ok_or(IdentityError::UserNotFound)
    }

    fn issue(
        &self,
        credentials: Credentials,
        session_id: Uuid,
        refresh_token: String,
    ) -> Result<Tokens, IdentityError> {
        Ok(Tokens {
            access_token: self.sign_access_token(&credentials, session_id)?,
            token_type: "Bearer",
            expires_in: self.settings.access_token_ttl.whole_seconds(),
            refresh_token,
            user: credentials.user,
        })
    }

    /// An access token for a login of this user; remembers the user's token version.
    fn sign_access_token(
        &self,
        credentials: &Credentials,
        session_id: Uuid,
    ) -> Result<String, IdentityError> {
        let now = self.clock.now();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: credentials.user.id,
            sid: session_id,
            roles: credentials.user.roles.iter().collect(),
            ver: credentials.token_version,
            iat: now.unix_timestamp(),
            exp: (now + self.settings.access_token_ttl).unix_timestamp(),
        };
        self.versions
            .insert(credentials.user.id, credentials.token_version);
        self.keys.sign(&claims).map_err(internal)
    }

    async fn hash_password(&self, password: &Password) -> Result<String, IdentityError> {
        let _permit = self.hashing.acquire().await.map_err(internal)?;
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash(password.expose().as_bytes()))
            .await
            .map_err(internal)?
    }

    async fn verify_password(&self, password: &str, stored: &str) -> Result<bool, IdentityError> {
        let _permit = self.hashing.acquire().await.map_err(internal)?;
        let (password, stored) = (password.to_owned(), stored.to_owned());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&stored).map_err(internal)?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .map_err(internal)?
    }

    async fn current_version(&self, user: UserId) -> Result<Option<i64>, AuthError> {
        if let Some(v) = self.versions.get(&user) {
            return Ok(Some(v));
        }
        let version = self.store.token_version(user).await.map_err(|e| {
            tracing::error!(error = %e, "cannot read a token version");
            AuthError::Unavailable
        })?;
        if let Some(v) = version {
            self.versions.insert(user, v);
        }
        Ok(version)
    }

    /// Creates signed-in USER accounts for load tests, a few write
    /// transactions for the lot. They share one Argon2id hash of a random
    /// password nobody knows, so the hash is computed once per call; each
    /// gets a login and an ordinary access token.
    #[tracing::instrument(name = "identity.create_test_users", skip_all)]
    pub async fn create_test_users(
        &self,
        _: &Admin,
        request: &TestUsersRequest,
    ) -> Result<Vec<TestUser>, IdentityError> {
        let batch = TestUserBatch::parse(request)
            .map_err(|p| IdentityError::Invalid(p.into_details().errors))?;
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>().map_err(internal)?);
        let password_hash = self
            .hash_password(&Password::parse(&secret).map_err(internal)?)
            .await?;
        let run = referral_code_from(random_bytes::<REFERRAL_CODE_LEN>().map_err(internal)?)
            .to_ascii_lowercase();
        let mut users = Vec::with_capacity(batch.count);
        for first in (0..batch.count).step_by(TEST_USERS_PER_WRITE) {
            let numbers = first..batch.count.min(first + TEST_USERS_PER_WRITE);
            for (credentials, session_id) in self
                .store_test_users(&batch, &run, numbers, &password_hash)
                .await?
            {
                users.push(TestUser {
                    access_token: self.sign_access_token(&credentials, session_id)?,
                    user_id: credentials.user.id,
                    email: credentials.user.email,
                });
            }
        }
        tracing::info!(count = users.len(), "test users created");
        Ok(users)
    }

    /// Stores the test users numbered `numbers` in one transaction, with
    /// their logins; retried with fresh referral codes if one collides.
    async fn store_test_users(
        &self,
        batch: &TestUserBatch,
        run: &str,
        numbers: std::ops::Range<usize>,
        password_hash: &str,
    ) -> Result<Vec<(Credentials, Uuid)>, IdentityError> {
        for _ in 0..5 {
            let now = self.clock.now();
            let mut new_users = Vec::with_capacity(numbers.len());
            for n in numbers.clone() {
                new_users.push(NewTestUser {
                    user: NewUser {
                        id: UserId::new(),
                        email: batch.email(run, n).map_err(internal)?,
                        password_hash: password_hash.to_owned(),
                        roles: Roles::of(&[Role::User]),
                        referral_code: referral_code_from(
                            random_bytes::<REFERRAL_CODE_LEN>().map_err(internal)?,
                        ),
                        referred_by: None,
                        created_at: now,
                    },
                    session_id: Uuid::now_v7(),
                });
            }
            let session_ids: Vec<Uuid> = new_users.iter().map(|u| u.session_id).collect();
            match self.store.create_test_users(new_users).await {
                Ok(created) => return Ok(created.into_iter().zip(session_ids).collect()),
                Err(CreateUserError::EmailTaken) => return Err(IdentityError::EmailTaken),
                Err(CreateUserError::ReferralCodeTaken) => {}
                Err(CreateUserError::Database(e)) => return Err(e.into()),
            }
        }
        Err(internal("could not find free referral codes"))
    }
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane), as a PHC string.
fn hash(password: &[u8]) -> Result<String, IdentityError> {
    Argon2::default()
        .hash_password(password)
        .map(|h| h.to_string())
        .map_err(internal)
}

#[async_trait]
impl TokenVerifier for IdentityService {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.keys.verify_signature(token)?);
                self.verified.insert(token.to_owned(), Arc::clone(&claims));
                claims
            }
        };
        claims.check_expiry(self.clock.now())?;
        match self.current_version(claims.sub).await? {
            Some(version) if version == claims.ver => Ok(Principal {
                user_id: claims.sub,
                session_id: claims.sid,
                roles: claims.roles(),
            }),
            _ => Err(AuthError::Revoked),
        }
    }
}

#[async_trait]
impl contracts::identity::UserDirectory for IdentityService {
    async fn email_of(&self, user: UserId) -> Result<Option<String>, String> {
        match self.store.credentials_by_id(user).await {
            Ok(found) => Ok(found.map(|c| c.user.email.as_str().to_owned())),
            Err(e) => Err(e.to_string()),
        }
    }
}
