//! The Slack text of a call: which attraction, which positions.

use bus::Envelope;
use contracts::park::LineEntryCalled;

/// The topics [`render_call`] renders.
pub const TOPICS: &[&str] = &[<LineEntryCalled as bus::Message>::TOPIC];

/// Renders `park.line_entry_called` for the Slack subscriber.
pub fn render_call(message: &Envelope) -> Result<Option<String>, String> {
    let called: LineEntryCalled = message.decode().map_err(|e| e.to_string())?;
    Ok(Some(call_text(&called)))
}

/// `"Dragon: called positions 1, 2, 3 (5 guests) — back by …"`.
#[must_use]
pub fn call_text(called: &LineEntryCalled) -> String {
    let positions: Vec<String> = called
        .entries
        .iter()
        .map(|e| e.position.to_string())
        .collect();
    let guests: u64 = called.entries.iter().map(|e| u64::from(e.party_size)).sum();
    let noun = if positions.len() == 1 {
        "position"
    } else {
        "positions"
    };
    format!(
        "{}: called {noun} {} ({guests} guests); please be at the gate by {}",
        called.attraction_name,
        positions.join(", "),
        called.return_by
    )
}
