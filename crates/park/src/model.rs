//! The park's types and rules: attractions, their kinds and statuses with
//! the legal moves, hashtags and their normal form, line entries, and the
//! wait estimate. No I/O.

use kernel::lifecycle::Lifecycle;
use kernel::text::{Description, Name};
use kernel::{FieldError, Timestamp, UserId, Violations, text_form};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use contracts::park::{AttractionId, LineEntryId};

/// Guests per cycle when a new attraction does not say.
pub const DEFAULT_CAPACITY_PER_CYCLE: u32 = 20;
/// Seconds per cycle when a new attraction does not say.
pub const DEFAULT_CYCLE_SECONDS: u32 = 300;
/// The most guests one cycle may take.
pub const MAX_CAPACITY_PER_CYCLE: u32 = 10_000;
/// The longest cycle: a day.
pub const MAX_CYCLE_SECONDS: u32 = 86_400;
/// The most hashtags one attraction carries, and one search asks for.
pub const MAX_HASHTAGS: usize = 20;
/// The longest hashtag, in characters.
pub const MAX_HASHTAG_CHARS: usize = 40;
/// The most entries one call may ask for.
pub const MAX_CALL_COUNT: u32 = 500;
/// How far back admissions count towards the observed rate.
pub const RATE_WINDOW_SECONDS: i64 = 900;

/// What an attraction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttractionKind {
    Ride,
    Sight,
}

impl AttractionKind {
    pub const ALL: [Self; 2] = [Self::Ride, Self::Sight];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ride => "RIDE",
            Self::Sight => "SIGHT",
        }
    }
}

text_form!(AttractionKind, "RIDE, SIGHT");

/// Whether an attraction runs. `DOWN` pauses its line (no calls, no joins,
/// positions kept); `CLOSED` is closed for the day. Every status may move
/// to every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttractionStatus {
    Operating,
    Down,
    Closed,
}

impl AttractionStatus {
    pub const ALL: [Self; 3] = [Self::Operating, Self::Down, Self::Closed];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Operating => "OPERATING",
            Self::Down => "DOWN",
            Self::Closed => "CLOSED",
        }
    }
}

text_form!(AttractionStatus, "OPERATING, DOWN, CLOSED");

impl Lifecycle for AttractionStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn can_move_to(self, next: Self) -> bool {
        self != next
    }
}

/// Where a party stands in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryStatus {
    Waiting,
    Called,
    Admitted,
    Left,
    Expired,
}

impl EntryStatus {
    pub const ALL: [Self; 5] = [
        Self::Waiting,
        Self::Called,
        Self::Admitted,
        Self::Left,
        Self::Expired,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "WAITING",
            Self::Called => "CALLED",
            Self::Admitted => "ADMITTED",
            Self::Left => "LEFT",
            Self::Expired => "EXPIRED",
        }
    }

    /// Still in the line (counts against `max_lines_per_user`).
    #[must_use]
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Waiting | Self::Called)
    }
}

text_form!(EntryStatus, "WAITING, CALLED, ADMITTED, LEFT, EXPIRED");

impl Lifecycle for EntryStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }

    fn can_move_to(self, next: Self) -> bool {
        use EntryStatus as S;
        matches!(
            (self, next),
            (S::Waiting, S::Called | S::Left) | (S::Called, S::Admitted | S::Left | S::Expired)
        )
    }
}

/// A hashtag in its normal form: trimmed, without a leading `#`,
/// lower-cased (Unicode-aware, so `Ö` and `ö` are one tag; Hangul has no
/// case and stays as written), 1 to 40 characters of letters, digits, `_`
/// and `-` (any script).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, min_length = 1, max_length = 40)]
pub struct Hashtag(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHashtag {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {MAX_HASHTAG_CHARS} characters")]
    TooLong,
    #[error("may hold only letters, digits, `_` and `-`")]
    BadCharacter,
}

impl Hashtag {
    pub fn parse(raw: &str) -> Result<Self, InvalidHashtag> {
        let tag = raw.trim();
        let tag = tag.strip_prefix('#').unwrap_or(tag).to_lowercase();
        match tag.chars().count() {
            0 => Err(InvalidHashtag::Blank),
            n if n > MAX_HASHTAG_CHARS => Err(InvalidHashtag::TooLong),
            _ if !tag
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
            {
                Err(InvalidHashtag::BadCharacter)
            }
            _ => Ok(Self(tag)),
        }
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A list of hashtags: each normalised, duplicates dropped, sorted (byte
/// order, as stored), at most [`MAX_HASHTAGS`].
pub fn hashtags(raw: &[String]) -> Result<Vec<Hashtag>, String> {
    if raw.len() > MAX_HASHTAGS {
        return Err(format!("at most {MAX_HASHTAGS} hashtags"));
    }
    let mut tags: Vec<Hashtag> = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let tag = Hashtag::parse(r).map_err(|e| format!("hashtag {}: {e}", i + 1))?;
        tags.push(tag);
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

/// A search prefix for `GET /hashtags`: normalised as a tag, but may be empty.
pub fn hashtag_prefix(raw: &str) -> Result<String, InvalidHashtag> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed == "#" {
        return Ok(String::new());
    }
    Hashtag::parse(trimmed).map(|t| t.0)
}

/// The body of `POST /attractions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewAttraction {
    pub name: String,
    pub kind: AttractionKind,
    pub description: Option<String>,
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// Guests one cycle takes; default 20.
    pub capacity_per_cycle: Option<i64>,
    /// Seconds one cycle lasts; default 300.
    pub cycle_seconds: Option<i64>,
    /// Default `OPERATING`.
    pub status: Option<AttractionStatus>,
}

/// The body of `PATCH /attractions/{id}`: the fields to change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct AttractionPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces the hashtags.
    pub hashtags: Option<Vec<String>>,
    pub capacity_per_cycle: Option<i64>,
    pub cycle_seconds: Option<i64>,
    pub status: Option<AttractionStatus>,
}

/// An attraction as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Attraction {
    pub id: AttractionId,
    #[schema(value_type = String)]
    pub name: Name,
    pub kind: AttractionKind,
    #[schema(value_type = String)]
    pub description: Description,
    #[schema(value_type = Vec<String>)]
    pub hashtags: Vec<Hashtag>,
    pub status: AttractionStatus,
    pub capacity_per_cycle: u32,
    pub cycle_seconds: u32,
    pub created_at: Timestamp,
    #[serde(skip)]
    pub updated_at: Timestamp,
}

fn bounded(raw: i64, min: u32, max: u32) -> Result<u32, String> {
    u32::try_from(raw)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("must be between {min} and {max}"))
}

fn checked<T>(value: Option<T>, v: Violations) -> Result<T, Vec<FieldError>> {
    v.into_errors()?;
    value.ok_or_else(Vec::new)
}

impl Attraction {
    /// Checks a new attraction, reporting every invalid field at once.
    pub fn new(
        id: AttractionId,
        request: &NewAttraction,
        now: Timestamp,
    ) -> Result<Self, Vec<FieldError>> {
        let mut v = Violations::default();
        let name = v.check("name", Name::parse(&request.name));
        let description = v.check(
            "description",
            Description::parse(request.description.as_deref().unwrap_or("")),
        );
        let tags = v.check("hashtags", hashtags(&request.hashtags));
        let capacity = v.check(
            "capacity_per_cycle",
            bounded(
                request
                    .capacity_per_cycle
                    .unwrap_or(DEFAULT_CAPACITY_PER_CYCLE.into()),
                1,
                MAX_CAPACITY_PER_CYCLE,
            ),
        );
        let cycle = v.check(
            "cycle_seconds",
            bounded(
                request
                    .cycle_seconds
                    .unwrap_or(DEFAULT_CYCLE_SECONDS.into()),
                1,
                MAX_CYCLE_SECONDS,
            ),
        );
        let attraction = match (name, description, tags, capacity, cycle) {
            (Some(name), Some(description), Some(hashtags), Some(cap), Some(cycle)) => Some(Self {
                id,
                name,
                kind: request.kind,
                description,
                hashtags,
                status: request.status.unwrap_or(AttractionStatus::Operating),
                capacity_per_cycle: cap,
                cycle_seconds: cycle,
                created_at: now,
                updated_at: now,
            }),
            _ => None,
        };
        checked(attraction, v)
    }

    /// The attraction with `patch` applied, every invalid field at once. A
    /// `status` equal to the current one is no move and is kept.
    pub fn patched(
        &self,
        patch: &AttractionPatch,
        now: Timestamp,
    ) -> Result<Self, Vec<FieldError>> {
        let mut v = Violations::default();
        let mut next = self.clone();
        if let Some(name) = &patch.name
            && let Some(name) = v.check("name", Name::parse(name))
        {
            next.name = name;
        }
        if let Some(d) = &patch.description
            && let Some(d) = v.check("description", Description::parse(d))
        {
            next.description = d;
        }
        if let Some(tags) = &patch.hashtags
            && let Some(tags) = v.check("hashtags", hashtags(tags))
        {
            next.hashtags = tags;
        }
        if let Some(raw) = patch.capacity_per_cycle
            && let Some(n) = v.check(
                "capacity_per_cycle",
                bounded(raw, 1, MAX_CAPACITY_PER_CYCLE),
            )
        {
            next.capacity_per_cycle = n;
        }
        if let Some(raw) = patch.cycle_seconds
            && let Some(n) = v.check("cycle_seconds", bounded(raw, 1, MAX_CYCLE_SECONDS))
        {
            next.cycle_seconds = n;
        }
        if let Some(status) = patch.status
            && status != self.status
            && let Some(s) = v.check("status", self.status.move_to(status))
        {
            next.status = s;
        }
        next.updated_at = now;
        checked(Some(next), v)
    }
}

/// Filters of `GET /attractions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttractionFilter {
    pub kind: Option<AttractionKind>,
    pub status: Option<AttractionStatus>,
    /// All of them.
    pub hashtags: Vec<Hashtag>,
}

/// A tag and how many attractions carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HashtagCount {
    pub tag: String,
    pub count: u64,
}

/// One party in one line, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineEntry {
    pub id: LineEntryId,
    pub attraction_id: AttractionId,
    pub user_id: UserId,
    pub party_size: u32,
    pub status: EntryStatus,
    /// Join number within the attraction.
    pub seq: u64,
    pub joined_at: Timestamp,
    pub called_at: Option<Timestamp>,
    pub return_by: Option<Timestamp>,
    pub admitted_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

/// A line entry as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LineEntryView {
    pub id: LineEntryId,
    pub attraction_id: AttractionId,
    pub user_id: UserId,
    pub party_size: u32,
    pub status: EntryStatus,
    /// 1 for the next party to be called; null unless `WAITING`.
    pub position: Option<u64>,
    /// Null unless `WAITING` at an `OPERATING` attraction.
    pub estimated_wait_seconds: Option<u64>,
    pub joined_at: Timestamp,
    pub called_at: Option<Timestamp>,
    pub return_by: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admitted_at: Option<Timestamp>,
}

impl LineEntryView {
    #[must_use]
    pub fn new(entry: LineEntry, position: Option<u64>, estimate: Option<u64>) -> Self {
        let waiting = entry.status == EntryStatus::Waiting;
        Self {
            id: entry.id,
            attraction_id: entry.attraction_id,
            user_id: entry.user_id,
            party_size: entry.party_size,
            status: entry.status,
            position: position.filter(|_| waiting),
            estimated_wait_seconds: estimate.filter(|_| waiting),
            joined_at: entry.joined_at,
            called_at: entry.called_at,
            return_by: entry.return_by,
            admitted_at: entry.admitted_at,
        }
    }
}

/// The public board of one attraction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct WaitBoard {
    pub status: AttractionStatus,
    /// Parties waiting.
    pub line_length: u64,
    /// For a party joining now; null unless `OPERATING`.
    pub estimated_wait_seconds: Option<u64>,
    /// Guests admitted in the last hour.
    pub admitted_last_hour: u64,
}

/// The admissions observed in the rate window: how many guests, and when
/// the first of them was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    pub guests: u64,
    pub first_admitted_at: Option<Timestamp>,
}

/// Guests per second an attraction takes in, and whether it was observed.
#[must_use]
pub fn throughput(attraction: &Attraction, observed: Observed, now: Timestamp) -> f64 {
    let design = f64::from(attraction.capacity_per_cycle) / f64::from(attraction.cycle_seconds);
    match observed.first_admitted_at {
        Some(first) if observed.guests > 0 => {
            let span = (now - first)
                .whole_seconds()
                .max(i64::from(attraction.cycle_seconds));
            #[allow(clippy::cast_precision_loss)]
            let rate = observed.guests as f64 / span as f64;
            rate
        }
        _ => design,
    }
}

/// The estimated wait of the party at `position` (1-based) when the
/// waiting parties hold `guests_waiting` guests in `parties_waiting`
/// parties: ⌈position × mean party size ÷ throughput⌉ seconds; `None`
/// unless the attraction is `OPERATING`.
#[must_use]
pub fn estimate(
    attraction: &Attraction,
    position: u64,
    parties_waiting: u64,
    guests_waiting: u64,
    observed: Observed,
    now: Timestamp,
) -> Option<u64> {
    if attraction.status != AttractionStatus::Operating {
        return None;
    }
    let rate = throughput(attraction, observed, now);
    #[allow(clippy::cast_precision_loss)]
    let mean_party = if parties_waiting == 0 {
        1.0
    } else {
        guests_waiting as f64 / parties_waiting as f64
    };
    #[allow(clippy::cast_precision_loss)]
    let guests_ahead = position as f64 * mean_party;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let seconds = (guests_ahead / rate).ceil() as u64;
    Some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    fn now() -> Timestamp {
        datetime!(2026-12-03 10:00 UTC).into()
    }

    fn ride() -> Attraction {
        Attraction::new(
            AttractionId::new(),
            &NewAttraction {
                name: "Dragon".into(),
                kind: AttractionKind::Ride,
                description: None,
                hashtags: vec!["#Thrill".into(), " 롤러코스터 ".into(), "thrill".into()],
                capacity_per_cycle: Some(20),
                cycle_seconds: Some(60),
                status: None,
            },
            now(),
        )
        .expect("valid")
    }

    #[test]
    fn hashtags_are_normalised_and_deduplicated() {
        let ride = ride();
        let tags: Vec<&str> = ride.hashtags.iter().map(Hashtag::as_str).collect();
        assert_eq!(tags, ["thrill", "롤러코스터"]);
        assert_eq!(Hashtag::parse("ÖL").expect("valid").as_str(), "öl");
        assert_eq!(Hashtag::parse("#"), Err(InvalidHashtag::Blank));
        assert_eq!(
            Hashtag::parse("two words"),
            Err(InvalidHashtag::BadCharacter)
        );
        assert_eq!(Hashtag::parse("a\u{0}b"), Err(InvalidHashtag::BadCharacter));
        assert_eq!(
            Hashtag::parse(&"가".repeat(MAX_HASHTAG_CHARS + 1)),
            Err(InvalidHashtag::TooLong)
        );
        assert!(Hashtag::parse(&"가".repeat(MAX_HASHTAG_CHARS)).is_ok());
        assert_eq!(hashtag_prefix(" #Ro ").expect("valid"), "ro");
        assert_eq!(hashtag_prefix("").expect("valid"), "");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = Attraction::new(
            AttractionId::new(),
            &NewAttraction {
                name: " ".into(),
                kind: AttractionKind::Sight,
                description: Some("a\u{0}".into()),
                hashtags: vec!["no spaces".into()],
                capacity_per_cycle: Some(0),
                cycle_seconds: Some(-1),
                status: None,
            },
            now(),
        )
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "description",
                "hashtags",
                "capacity_per_cycle",
                "cycle_seconds"
            ]
        );
    }

    #[test]
    fn entries_move_only_forward() {
        use EntryStatus as S;
        assert!(S::Waiting.can_move_to(S::Called));
        assert!(S::Called.can_move_to(S::Admitted));
        assert!(S::Called.can_move_to(S::Expired));
        assert!(!S::Waiting.can_move_to(S::Admitted));
        assert!(!S::Left.can_move_to(S::Admitted));
        assert!(!S::Expired.can_move_to(S::Admitted));
        assert!(AttractionStatus::Down.can_move_to(AttractionStatus::Operating));
        assert!(!AttractionStatus::Down.can_move_to(AttractionStatus::Down));
    }

    #[test]
    fn the_estimate_uses_design_capacity_until_admissions_are_observed() {
        let ride = ride();
        // 20 guests a minute, parties of 2: the 10th party is 20 guests ahead.
        assert_eq!(
            estimate(&ride, 10, 30, 60, Observed::default(), now()),
            Some(60)
        );
        // Observed: 30 guests over the last 10 minutes = 3 a minute.
        let observed = Observed {
            guests: 30,
            first_admitted_at: Some(now() - Duration::minutes(10)),
        };
        assert_eq!(estimate(&ride, 3, 3, 3, observed, now()), Some(60));
        // A single admission just now counts over one cycle at least.
        let just_now = Observed {
            guests: 10,
            first_admitted_at: Some(now()),
        };
        assert_eq!(estimate(&ride, 5, 5, 5, just_now, now()), Some(30));
        let mut down = ride;
        down.status = AttractionStatus::Down;
        assert_eq!(estimate(&down, 1, 1, 1, Observed::default(), now()), None);
    }

    #[test]
    fn a_patch_changes_what_it_names_and_keeps_a_same_status() {
        let ride = ride();
        let patch = AttractionPatch {
            status: Some(AttractionStatus::Operating),
            hashtags: Some(vec!["Family".into()]),
            ..AttractionPatch::default()
        };
        let next = ride.patched(&patch, now()).expect("valid");
        assert_eq!(next.status, AttractionStatus::Operating);
        assert_eq!(next.hashtags[0].as_str(), "family");
        let bad = AttractionPatch {
            cycle_seconds: Some(0),
            ..AttractionPatch::default()
        };
        assert!(ride.patched(&bad, now()).is_err());
    }
}
