//! What webhooks hear on the bus: the events integrators subscribe to,
//! each queued for every endpoint that wants it. Queuing is idempotent by
//! (endpoint, bus message id), so a redelivery queues nothing more.

use std::sync::Arc;

use async_trait::async_trait;
use bus::{Envelope, Handler, HandlerError, Message};
use contracts::commerce::{OrderCancelled, OrderPaid, WaitingListOffered};
use contracts::park::LineEntryCalled;
use contracts::rewards::{RewardGranted, RewardRejected};

use crate::service::WebhookService;

/// The bus topics that become webhook events.
const TOPICS: &[&str] = &[
    RewardGranted::TOPIC,
    RewardRejected::TOPIC,
    OrderPaid::TOPIC,
    OrderCancelled::TOPIC,
    LineEntryCalled::TOPIC,
    WaitingListOffered::TOPIC,
];

/// The webhook event type of a bus topic.
#[must_use]
pub fn event_type(topic: &str) -> Option<&'static str> {
    match topic {
        t if t == RewardGranted::TOPIC => Some("reward_request.approved"),
        t if t == RewardRejected::TOPIC => Some("reward_request.rejected"),
        t if t == OrderPaid::TOPIC => Some("order.paid"),
        t if t == OrderCancelled::TOPIC => Some("order.cancelled"),
        t if t == LineEntryCalled::TOPIC => Some("line_entry.called"),
        t if t == WaitingListOffered::TOPIC => Some("waiting_list.offered"),
        _ => None,
    }
}

/// Checks that the message is the version and shape its topic promises;
/// the payload then goes out as it is.
fn check(message: &Envelope) -> Result<(), bus::message::DecodeError> {
    match message.topic.as_str() {
        t if t == RewardGranted::TOPIC => message.decode::<RewardGranted>().map(drop),
        t if t == RewardRejected::TOPIC => message.decode::<RewardRejected>().map(drop),
        t if t == OrderPaid::TOPIC => message.decode::<OrderPaid>().map(drop),
        t if t == OrderCancelled::TOPIC => message.decode::<OrderCancelled>().map(drop),
        t if t == LineEntryCalled::TOPIC => message.decode::<LineEntryCalled>().map(drop),
        t if t == WaitingListOffered::TOPIC => message.decode::<WaitingListOffered>().map(drop),
        _ => Ok(()),
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
        TOPICS
    }

    async fn handle(&self, message: &Envelope) -> Result<(), HandlerError> {
        let Some(event_type) = event_type(&message.topic) else {
            return Ok(());
        };
        check(message).map_err(|e| HandlerError(e.to_string()))?;
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
    fn every_subscribed_topic_names_a_known_event_type() {
        for topic in TOPICS {
            let event = event_type(topic).expect("an event type");
            assert!(crate::model::EVENT_TYPES.contains(&event), "{event}");
        }
        assert_eq!(event_type("identity.user_logged_in"), None);
    }
}
