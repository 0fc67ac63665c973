//! The bus subscriber that turns reward grants into coupons.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, Handler, HandlerError, Message};

use crate::error::CommerceError;
use crate::service::CouponService;
use contracts::commerce::IssueCouponGrant;

/// Issues the coupon of each [`IssueCouponGrant`], exactly once per grant:
/// the inbox drops a redelivered message, and the unique grant id keeps a
/// grant sent twice (or handled twice after a crash) to one coupon. A grant
/// naming an unknown campaign fails, is retried, and ends as a dead letter.
pub struct CouponGrantHandler {
    service: Arc<CouponService>,
}

impl CouponGrantHandler {
    /// The subscriber's name: part of the inbox key, never to be renamed.
    pub const NAME: &'static str = "commerce.coupon_grants";

    #[must_use]
    pub fn new(service: Arc<CouponService>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl Handler for CouponGrantHandler {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn topics(&self) -> &'static [&'static str] {
        &[IssueCouponGrant::TOPIC]
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let grant: IssueCouponGrant = message
            .decode()
            .map_err(|e| HandlerError(format!("not a coupon grant: {e}")))?;
        match self
            .service
            .grant(grant.grant_id, grant.user_id, grant.campaign_id)
            .await
        {
            Ok(_) => Ok(()),
            Err(CommerceError::CampaignNotFound) => Err(HandlerError(format!(
                "coupon campaign {} does not exist: grant {} cannot be issued",
                grant.campaign_id, grant.grant_id
            ))),
            Err(e) => Err(HandlerError(format!(
                "grant {} of coupon campaign {}: {e}",
                grant.grant_id, grant.campaign_id
            ))),
        }
    }
}
