//! What identity announces. Other modules learn about users only from these
//! (and from identity's service), never from identity's tables.

use async_trait::async_trait;
use bus::Message;
use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user signed up, perhaps with another user's referral code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSignedUp {
    pub user_id: UserId,
    /// The owner of the referral code used, if any.
    pub referred_by: Option<UserId>,
    pub signed_up_at: Timestamp,
}

impl Message for UserSignedUp {
    const TOPIC: &'static str = "identity.user_signed_up";
    const VERSION: i32 = 1;
}

/// A user logged in (the login-streak condition counts these by UTC day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLoggedIn {
    pub user_id: UserId,
    pub session_id: Uuid,
    pub logged_in_at: Timestamp,
}

impl Message for UserLoggedIn {
    const TOPIC: &'static str = "identity.user_logged_in";
    const VERSION: i32 = 1;
}

/// A user's access tokens issued before now stop working: their roles
/// changed or a login was revoked. Services that verify tokens themselves
/// refuse tokens whose `ver` is below `token_version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserTokensRevoked {
    pub user_id: UserId,
    pub token_version: i64,
    pub revoked_at: Timestamp,
}

impl Message for UserTokensRevoked {
    const TOPIC: &'static str = "identity.user_tokens_revoked";
    const VERSION: i32 = 1;
}

/// Identity's answer to another part asking where a user is reached (the
/// email notifier, before it writes to them). The server hands identity's
/// service to the asking part as this trait.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// The user's email address, `None` for an unknown user; the error says
    /// why identity cannot answer now (the asker retries).
    async fn email_of(&self, user: UserId) -> Result<Option<String>, String>;
}
