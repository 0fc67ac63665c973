//! What webhooks hear on the bus: the events integrators subscribe to,
//! each queued for every endpoint that wants it. Queuing is idempotent by
//! (endpoint, bus message id), so a redelivery queues nothing more.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, Handler, HandlerError, Message};
use contracts::commerce::WaitingListOffered;
use contracts::rewards::RewardGranted;

use crate::service::WebhookService;

/// The webhook event type of a bus topic.
#[must_use]
pub fn event_type(topic: &str) -> Option<&'static str> {
    match topic {
        t if t == RewardGranted::TOPIC => Some("reward_request.approved"),
        t if t == WaitingListOffered::TOPIC => Some("waiting_list.offered"),
        _ => None,
    }
}

/// Turns bus messages into webhook messages.
pub struct WebhookEvents {
    service: Arc<WebhookService>,
}

impl WebhookEvents {
    #[must_use]
    pub fn new(service: Arc<WebhookService>) -> Self {
        Self { service }
    }
}

#[async_trait]
impl Handler for WebhookEvents {
    fn name(&self) -> &'static str {
        "webhooks.events"
    }

    fn topics(&self) -> &'static [&'static str] {
        &[RewardGranted::TOPIC, WaitingListOffered::TOPIC]
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let Some(event_type) = event_type(&message.topic) else {
            return Ok(());
        };
        // Decoding checks the version and shape; the payload goes out as is.
        let checked = match event_type {
            "waiting_list.offered" => message.decode::<WaitingListOffered>().map(drop),
            _ => message.decode::<RewardGranted>().map(drop),
        };
        checked.map_err(|e| HandlerError(e.to_string()))?;
        self.service
            .publish(
                message.id,
                event_type,
                message.occurred_at,
                &message.payload,
            )
            .await
            .map(drop)
            .map_err(|e| HandlerError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_subscribed_topic_has_its_event_type_and_others_none() {
        assert_eq!(
            event_type(RewardGranted::TOPIC),
            Some("reward_request.approved")
        );
        assert_eq!(
            event_type(WaitingListOffered::TOPIC),
            Some("waiting_list.offered")
        );
        assert_eq!(event_type("identity.user_logged_in"), None);
        for event in [
            event_type(RewardGranted::TOPIC),
            event_type(WaitingListOffered::TOPIC),
        ] {
            assert!(crate::model::EVENT_TYPES.contains(&event.expect("mapped")));
        }
    }
}
