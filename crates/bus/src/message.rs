//! Messages: typed in code, versioned JSON on the wire.

use kernel::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A message type: its topic (`module.event_name`) and payload version.
pub trait Message: Serialize + DeserializeOwned {
    const TOPIC: &'static str;
    const VERSION: i32;
}

/// A message as stored and carried: id, topic, version, JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Envelope {
    /// Unique and time-ordered (UUID v7); consumers dedupe on it.
    pub id: Uuid,
    pub topic: String,
    pub version: i32,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub occurred_at: Timestamp,
}

/// Why a payload could not be read as the expected message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("expected {expected} v{expected_version}, got {topic} v{version}")]
    Mismatch {
        expected: &'static str,
        expected_version: i32,
        topic: String,
        version: i32,
    },
    #[error("payload: {0}")]
    Payload(#[from] serde_json::Error),
}

impl Envelope {
    pub fn new<M: Message>(message: &M, occurred_at: Timestamp) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: Uuid::now_v7(),
            topic: M::TOPIC.to_owned(),
            version: M::VERSION,
            payload: serde_json::to_value(message)?,
            occurred_at,
        })
    }

    /// Reads the payload as `M`, checking topic and version.
    pub fn decode<M: Message>(&self) -> Result<M, DecodeError> {
        if self.topic != M::TOPIC || self.version != M::VERSION {
            return Err(DecodeError::Mismatch {
                expected: M::TOPIC,
                expected_version: M::VERSION,
                topic: self.topic.clone(),
                version: self.version,
            });
        }
        Ok(serde_json::from_value(self.payload.clone())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Greeted {
        name: String,
    }

    impl Message for Greeted {
        const TOPIC: &'static str = "test.greeted";
        const VERSION: i32 = 2;
    }

    #[test]
    fn an_envelope_round_trips_its_message_and_checks_the_version() {
        let now = Timestamp::from(time::macros::datetime!(2026-11-22 10:00 UTC));
        let mut envelope = Envelope::new(&Greeted { name: "Ann".into() }, now).expect("encodes");
        assert_eq!(envelope.topic, "test.greeted");
        assert_eq!(
            envelope.decode::<Greeted>().ok(),
            Some(Greeted { name: "Ann".into() })
        );
        envelope.version = 1;
        assert!(matches!(
            envelope.decode::<Greeted>(),
            Err(DecodeError::Mismatch { .. })
        ));
    }
}
