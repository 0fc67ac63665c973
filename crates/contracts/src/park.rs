//! What the park announces, and the park ids it carries.

use bus::Message;
use kernel::{Timestamp, UserId};
use serde::{Deserialize, Serialize};

kernel::id_type!(
    /// A ride or sight in the park.
    AttractionId
);

kernel::id_type!(
    /// One party in one attraction's waiting line.
    LineEntryId
);

/// One party called to the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalledEntry {
    pub entry_id: LineEntryId,
    pub user_id: UserId,
    pub party_size: u32,
    /// Where it stood in the line when called, 1 first.
    pub position: u64,
}

/// Staff called the next parties of a line; enqueued in the call's
/// transaction. Every entry shares `called_at` and `return_by`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEntryCalled {
    pub attraction_id: AttractionId,
    pub attraction_name: String,
    pub entries: Vec<CalledEntry>,
    pub called_at: Timestamp,
    /// Admitted by then, or the entry expires.
    pub return_by: Timestamp,
}

impl Message for LineEntryCalled {
    const TOPIC: &'static str = "park.line_entry_called";
    const VERSION: i32 = 1;
}
