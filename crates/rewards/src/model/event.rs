//! Events: their lifecycle (the legal status moves, in one place), their
//! period, and when one is live.

use kernel::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::EventId;
use kernel::text::{Description, Name};
use kernel::{Lifecycle, text_form};

/// Where an event is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Being prepared; seen only by readers.
    Draft,
    /// Open to requests while inside its period.
    Active,
    /// Paused; may be activated again.
    Inactive,
    /// Over for good.
    Completed,
}

impl EventStatus {
    pub const ALL: [Self; 4] = [Self::Draft, Self::Active, Self::Inactive, Self::Completed];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "DRAFT",
            Self::Active => "ACTIVE",
            Self::Inactive => "INACTIVE",
            Self::Completed => "COMPLETED",
        }
    }
}

impl Lifecycle for EventStatus {
    fn name(self) -> &'static str {
        self.as_str()
    }

    /// The lifecycle: DRAFT→ACTIVE, ACTIVE⇄INACTIVE, ACTIVE or
    /// INACTIVE→COMPLETED. Staying put is not a move.
    fn can_move_to(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Draft, Self::Active)
                | (Self::Active, Self::Inactive)
                | (Self::Inactive, Self::Active)
                | (Self::Active | Self::Inactive, Self::Completed)
        )
    }
}

text_form!(EventStatus, "DRAFT, ACTIVE, INACTIVE, COMPLETED");

/// When an event runs: `[starts_at, ends_at)`, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub struct EventPeriod {
    starts_at: Timestamp,
    ends_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be after starts_at")]
pub struct InvalidPeriod;

impl EventPeriod {
    /// Refuses `ends_at <= starts_at`; the error reads as a message on `ends_at`.
    pub fn new(starts_at: Timestamp, ends_at: Timestamp) -> Result<Self, InvalidPeriod> {
        if ends_at > starts_at {
            Ok(Self { starts_at, ends_at })
        } else {
            Err(InvalidPeriod)
        }
    }

    #[must_use]
    pub const fn starts_at(self) -> Timestamp {
        self.starts_at
    }

    #[must_use]
    pub const fn ends_at(self) -> Timestamp {
        self.ends_at
    }

    /// Whether `now` is in `[starts_at, ends_at)`.
    #[must_use]
    pub fn contains(self, now: Timestamp) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}

/// Whether an event takes requests: `ACTIVE` and `now` inside its period.
#[must_use]
pub fn is_live(status: EventStatus, period: EventPeriod, now: Timestamp) -> bool {
    status == EventStatus::Active && period.contains(now)
}

/// An event as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Event {
    pub id: EventId,
    pub name: Name,
    pub description: Description,
    pub status: EventStatus,
    /// `starts_at` and `ends_at`.
    #[serde(flatten)]
    pub period: EventPeriod,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Event {
    /// See [`is_live`].
    #[must_use]
    pub fn is_live(&self, now: Timestamp) -> bool {
        is_live(self.status, self.period, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    use EventStatus::{Active, Completed, Draft, Inactive};

    fn period() -> EventPeriod {
        EventPeriod::new(
            datetime!(2026-11-01 00:00 UTC).into(),
            datetime!(2026-12-01 00:00 UTC).into(),
        )
        .expect("ends after it starts")
    }

    #[test]
    fn only_the_contracts_status_moves_are_legal() {
        let legal = [
            (Draft, Active),
            (Active, Inactive),
            (Inactive, Active),
            (Active, Completed),
            (Inactive, Completed),
        ];
        for from in EventStatus::ALL {
            for to in EventStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn move_to_returns_the_new_status_or_names_the_refused_move() {
        assert_eq!(Draft.move_to(Active), Ok(Active));

        let refused = Draft
            .move_to(Completed)
            .expect_err("drafts cannot complete");

        assert_eq!(refused.to_string(), "cannot move from DRAFT to COMPLETED");
        assert!(Completed.move_to(Active).is_err());
        assert!(Active.move_to(Active).is_err());
    }

    #[test]
    fn statuses_are_screaming_snake_case_both_ways() {
        for status in EventStatus::ALL {
            let json = serde_json::to_value(status).expect("serialises");
            assert_eq!(json, status.as_str());
            assert_eq!(status.as_str().parse::<EventStatus>(), Ok(status));
        }
        assert_eq!(
            "active".parse::<EventStatus>().map_err(|e| e.to_string()),
            Err("must be one of DRAFT, ACTIVE, INACTIVE, COMPLETED".to_owned())
        );
    }

    #[test]
    fn a_period_must_end_after_it_starts() {
        let start: Timestamp = datetime!(2026-11-01 00:00 UTC).into();

        assert_eq!(EventPeriod::new(start, start), Err(InvalidPeriod));
        assert_eq!(
            EventPeriod::new(start, start - time::Duration::seconds(1)),
            Err(InvalidPeriod)
        );
        assert!(EventPeriod::new(start, start + time::Duration::microseconds(1)).is_ok());
    }

    #[test]
    fn an_event_is_live_when_active_from_its_start_until_just_before_its_end() {
        let p = period();
        let just_before_end = datetime!(2026-12-01 00:00 UTC) - time::Duration::microseconds(1);

        assert!(is_live(Active, p, p.starts_at()));
        assert!(is_live(Active, p, just_before_end.into()));
        assert!(!is_live(Active, p, p.ends_at()));
        assert!(!is_live(
            Active,
            p,
            p.starts_at() - time::Duration::microseconds(1)
        ));
    }

    #[test]
    fn an_event_that_is_not_active_is_never_live() {
        let p = period();
        let inside: Timestamp = datetime!(2026-11-15 12:00 UTC).into();

        for status in [Draft, Inactive, Completed] {
            assert!(!is_live(status, p, inside), "{status}");
        }
    }

    #[test]
    fn an_event_serialises_as_the_contract_says() {
        let event = Event {
            id: EventId::new(),
            name: Name::parse("Winter festival").expect("valid"),
            description: Description::parse("Snow and rewards").expect("valid"),
            status: Active,
            period: period(),
            created_at: datetime!(2026-10-01 00:00 UTC).into(),
            updated_at: datetime!(2026-10-02 00:00 UTC).into(),
        };

        let v = serde_json::to_value(&event).expect("serialises");

        let mut keys: Vec<&str> = v
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created_at",
                "description",
                "ends_at",
                "id",
                "name",
                "starts_at",
                "status",
                "updated_at"
            ]
        );
        assert_eq!(v["id"], event.id.to_string());
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["starts_at"], "2026-11-01T00:00:00Z");
        assert_eq!(v["ends_at"], "2026-12-01T00:00:00Z");
        assert_eq!(v["name"], "Winter festival");
        assert!(event.is_live(datetime!(2026-11-15 00:00 UTC).into()));
    }
}
