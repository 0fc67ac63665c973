//! What rewards hears on the bus: identity's sign-ups and logins, which feed
//! the `FRIEND_INVITE` and `CONTINUOUS_LOGIN` conditions and user analytics.
//! Both writes are idempotent, so a redelivery changes nothing.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, Handler, HandlerError, Message};
use contracts::identity::{UserLoggedIn, UserSignedUp};

use crate::RewardsService;

/// Records identity's facts in rewards' own tables.
pub struct IdentityFacts {
    service: Arc<RewardsService>,
}

impl IdentityFacts {
    #[must_use]
    pub fn new(service: Arc<RewardsService>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl Handler for IdentityFacts {
    fn name(&self) -> &'static str {
        "rewards.identity_facts"
    }

    fn topics(&self) -> &'static [&'static str] {
        &[UserSignedUp::TOPIC, UserLoggedIn::TOPIC]
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let failed = |e: &dyn std::fmt::Display| HandlerError(e.to_string());
        if message.topic == UserLoggedIn::TOPIC {
            let login: UserLoggedIn = message.decode().map_err(|e| failed(&e))?;
            self.service
                .record_login(login.user_id, login.logged_in_at)
                .await
                .map_err(|e| failed(&e))
        } else {
            let sign_up: UserSignedUp = message.decode().map_err(|e| failed(&e))?;
            self.service
                .record_sign_up(sign_up.user_id, sign_up.referred_by, sign_up.signed_up_at)
                .await
                .map_err(|e| failed(&e))
        }
    }
}
