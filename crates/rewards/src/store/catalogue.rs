//! Events, the reward catalogue and event rewards.

use async_trait::async_trait;
use kernel::db::{Backend, bad_row, stored_count};
use kernel::{PageRequest, Timestamp};
use serde_json::{Map, Value};

use super::{SqlRewardsStore, encode};
use crate::model::{
    Condition, Description, Event, EventId, EventPeriod, EventReward, EventRewardId, EventStatus,
    Name, Reward, RewardId, RewardKind,
};

/// Which events a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub status: Option<EventStatus>,
    /// Readers see drafts; everyone else does not.
    pub include_drafts: bool,
    /// Only events whose name contains this, ignoring ASCII case.
    pub name_contains: Option<String>,
}

/// The outcome of deleting an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteEvent {
    Deleted,
    NotFound,
    NotDraft,
}

/// A reward to attach to an event; `remaining` starts at `quantity`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEventReward {
    pub id: EventRewardId,
    pub event_id: EventId,
    pub reward_id: RewardId,
    pub condition: Option<Condition>,
    pub auto_resolve: bool,
    pub quantity: Option<u32>,
    pub per_user_limit: u32,
    pub now: Timestamp,
}

/// The outcome of attaching a reward to an event.
#[derive(Debug, Clone, PartialEq)]
pub enum AddEventReward {
    Added(EventReward),
    EventNotFound,
    RewardNotFound,
}

/// A change to an event reward; `None` leaves a field as it is, and the inner
/// `None` of `condition` and `quantity` means "no condition" / "unlimited".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRewardChange {
    pub condition: Option<Option<Condition>>,
    pub auto_resolve: Option<bool>,
    pub quantity: Option<Option<u32>>,
    pub per_user_limit: Option<u32>,
}

/// The outcome of changing an event reward.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateEventReward {
    Updated(EventReward),
    NotFound,
    /// The new quantity is below the units already taken.
    QuantityBelowTaken {
        taken: u32,
    },
}

#[async_trait]
pub trait CatalogueStore: Send + Sync {
    async fn create_event(&self, event: Event) -> Result<(), sqlx::Error>;
    async fn event(&self, id: EventId) -> Result<Option<Event>, sqlx::Error>;
    /// Events in id order.
    async fn list_events(
        &self,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Vec<Event>, sqlx::Error>;
    /// Saves `event` if its stored status is still `expected`; `false` if not
    /// (or if it is gone), so a status move is never decided on stale data.
    async fn update_event(&self, event: Event, expected: EventStatus) -> Result<bool, sqlx::Error>;
    /// Deletes a DRAFT event and its event rewards.
    async fn delete_draft_event(&self, id: EventId) -> Result<DeleteEvent, sqlx::Error>;
    async fn create_reward(&self, reward: Reward, now: Timestamp) -> Result<(), sqlx::Error>;
    async fn reward(&self, id: RewardId) -> Result<Option<Reward>, sqlx::Error>;
    /// Catalogue rewards in id order.
    async fn list_rewards(&self, page: PageRequest) -> Result<Vec<Reward>, sqlx::Error>;
    async fn add_event_reward(&self, new: NewEventReward) -> Result<AddEventReward, sqlx::Error>;
    /// An event's rewards in id order.
    async fn event_rewards(
        &self,
        event_id: EventId,
        page: PageRequest,
    ) -> Result<Vec<EventReward>, sqlx::Error>;
    /// One reward of this event; `None` if it belongs to another.
    async fn event_reward(
        &self,
        event_id: EventId,
        id: EventRewardId,
    ) -> Result<Option<EventReward>, sqlx::Error>;
    /// Applies a change; a new quantity moves `remaining` by the same delta.
    async fn update_event_reward(
        &self,
        event_id: EventId,
        id: EventRewardId,
        change: EventRewardChange,
        now: Timestamp,
    ) -> Result<UpdateEventReward, sqlx::Error>;
    /// `false` if there was no such reward on this event.
    async fn delete_event_reward(
        &self,
        event_id: EventId,
        id: EventRewardId,
    ) -> Result<bool, sqlx::Error>;
}

/// The columns an [`EventRow`] reads, for `concat!` (sqlx takes only static SQL).
macro_rules! event_columns {
    () => {
        "id, name, description, status, starts_at, ends_at, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: EventId,
    name: String,
    description: String,
    status: String,
    starts_at: Timestamp,
    ends_at: Timestamp,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl TryFrom<EventRow> for Event {
    type Error = sqlx::Error;
    fn try_from(row: EventRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            name: Name::parse(&row.name).map_err(|e| bad_row("event name", e))?,
            description: Description::parse(&row.description)
                .map_err(|e| bad_row("event description", e))?,
            status: row.status.parse().map_err(|e| bad_row("event status", e))?,
            period: EventPeriod::new(row.starts_at, row.ends_at)
                .map_err(|e| bad_row("event period", e))?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(super) fn reward_from(id: RewardId, name: &str, spec: &str) -> Result<Reward, sqlx::Error> {
    let object: Map<String, Value> =
        serde_json::from_str(spec).map_err(|e| bad_row("reward spec", e))?;
    let kind = RewardKind::parse(&object).map_err(|errors| {
        let reasons: Vec<String> = errors
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        bad_row("reward spec", reasons.join("; "))
    })?;
    Ok(Reward {
        id,
        name: Name::parse(name).map_err(|e| bad_row("reward name", e))?,
        kind,
    })
}

fn spec_of(kind: &RewardKind) -> Result<String, sqlx::Error> {
    serde_json::to_string(kind).map_err(encode)
}

fn condition_column(condition: Option<&Condition>) -> Result<Option<String>, sqlx::Error> {
    condition
        .map(serde_json::to_string)
        .transpose()
        .map_err(encode)
}

#[derive(sqlx::FromRow)]
struct RewardRow {
    id: RewardId,
    name: String,
    spec: String,
}

/// The columns an [`EventRewardRow`] reads, from `event_rewards er` joined
/// with `rewards r`.
macro_rules! event_reward_columns {
    () => {
        "er.id, er.event_id, er.condition, er.auto_resolve, er.quantity, er.remaining, \
         er.per_user_limit, r.id as reward_id, r.name as reward_name, r.spec as reward_spec \
         from event_rewards er join rewards r on r.id = er.reward_id"
    };
}

#[derive(sqlx::FromRow)]
struct EventRewardRow {
    id: EventRewardId,
    event_id: EventId,
    condition: Option<String>,
    auto_resolve: bool,
    quantity: Option<i64>,
    remaining: Option<i64>,
    per_user_limit: i64,
    reward_id: RewardId,
    reward_name: String,
    reward_spec: String,
}

impl TryFrom<EventRewardRow> for EventReward {
    type Error = sqlx::Error;
    fn try_from(row: EventRewardRow) -> Result<Self, Self::Error> {
        let condition = row
            .condition
            .as_deref()
            .map(serde_json::from_str::<Condition>)
            .transpose()
            .map_err(|e| bad_row("condition", e))?;
        Ok(Self {
            id: row.id,
            event_id: row.event_id,
            reward: reward_from(row.reward_id, &row.reward_name, &row.reward_spec)?,
            condition,
            auto_resolve: row.auto_resolve,
            quantity: row
                .quantity
                .map(|n| stored_count("quantity", n))
                .transpose()?,
            remaining: row
                .remaining
                .map(|n| stored_count("remaining", n))
                .transpose()?,
            per_user_limit: stored_count("per_user_limit", row.per_user_limit)?,
        })
    }
}

const EVENT_REWARD_BY_ID: &str = concat!(
    "select ",
    event_reward_columns!(),
    " where er.id = $1 and er.event_id = $2"
);
const EVENT_REWARD_BY_ID_FOR_UPDATE: &str = concat!(
    "select ",
    event_reward_columns!(),
    " where er.id = $1 and er.event_id = $2 for update of er"
);

#[async_trait]
impl CatalogueStore for SqlRewardsStore {
    async fn create_event(&self, event: Event) -> Result<(), sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into events (id, name, description, status, starts_at, ends_at, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(event.id)
            .bind(event.name.as_str())
            .bind(event.description.as_str())
            .bind(event.status.as_str())
            .bind(event.period.starts_at())
            .bind(event.period.ends_at())
            .bind(event.created_at)
            .bind(event.updated_at)
            .execute(&mut *conn)
            .await
            .map(|_| ())
        })
    }

    async fn event(&self, id: EventId) -> Result<Option<Event>, sqlx::Error> {
        let sql = concat!("select ", event_columns!(), " from events where id = $1");
        let row: Option<EventRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql).bind(id).fetch_optional(pool).await
        })?;
        row.map(Event::try_from).transpose()
    }

    async fn list_events(
        &self,
        filter: EventFilter,
        page: PageRequest,
    ) -> Result<Vec<Event>, sqlx::Error> {
        let sql = concat!(
            "select ",
            event_columns!(),
            " from events where ($1 is null or status = $1) and ($2 or status <> 'DRAFT') \
             and ($3 is null or lower(name) like $3 escape '\\') \
             and ($4 is null or id > $4) order by id limit $5"
        );
        let status = filter.status.map(EventStatus::as_str);
        let name = filter
            .name_contains
            .map(|f| kernel::db::contains_pattern(&f.trim().to_lowercase()));
        let rows: Vec<EventRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(status)
                .bind(filter.include_drafts)
                .bind(&name)
                .bind(page.after.map(EventId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(Event::try_from).collect()
    }

    async fn update_event(&self, event: Event, expected: EventStatus) -> Result<bool, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            let done = sqlx::query(
                "update events set name = $2, description = $3, status = $4, starts_at = $5, \
                 ends_at = $6, updated_at = $7 where id = $1 and status = $8",
            )
            .bind(event.id)
            .bind(event.name.as_str())
            .bind(event.description.as_str())
            .bind(event.status.as_str())
            .bind(event.period.starts_at())
            .bind(event.period.ends_at())
            .bind(event.updated_at)
            .bind(expected.as_str())
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn delete_draft_event(&self, id: EventId) -> Result<DeleteEvent, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            // SQLite's single writer already serialises; PostgreSQL needs the row lock.
            let sql = if backend == Backend::Postgres {
                "select status from events where id = $1 for update"
            } else {
                "select status from events where id = $1"
            };
            let status: Option<String> = sqlx::query_scalar(sql)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            match status.as_deref() {
                None => return Ok(DeleteEvent::NotFound),
                Some("DRAFT") => {}
                Some(_) => return Ok(DeleteEvent::NotDraft),
            }
            sqlx::query("delete from event_rewards where event_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            sqlx::query("delete from events where id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            Ok(DeleteEvent::Deleted)
        })
    }

    async fn create_reward(&self, reward: Reward, now: Timestamp) -> Result<(), sqlx::Error> {
        let spec = spec_of(&reward.kind)?;
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into rewards (id, name, type, spec, created_at) values ($1, $2, $3, $4, $5)",
            )
            .bind(reward.id)
            .bind(reward.name.as_str())
            .bind(reward.kind.type_name())
            .bind(spec)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|_| ())
        })
    }

    async fn reward(&self, id: RewardId) -> Result<Option<Reward>, sqlx::Error> {
        let row: Option<RewardRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as("select id, name, spec from rewards where id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(|r| reward_from(r.id, &r.name, &r.spec)).transpose()
    }

    async fn list_rewards(&self, page: PageRequest) -> Result<Vec<Reward>, sqlx::Error> {
        let rows: Vec<RewardRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(
                "select id, name, spec from rewards where ($1 is null or id > $1) \
                 order by id limit $2",
            )
            .bind(page.after.map(RewardId))
            .bind(page.fetch_limit())
            .fetch_all(pool)
            .await
        })?;
        rows.into_iter()
            .map(|r| reward_from(r.id, &r.name, &r.spec))
            .collect()
    }

    async fn add_event_reward(&self, new: NewEventReward) -> Result<AddEventReward, sqlx::Error> {
        let condition = condition_column(new.condition.as_ref())?;
        kernel::write_tx!(&self.db, |conn, backend| {
            // Lock the event on PostgreSQL so a concurrent delete cannot orphan the row.
            let event_sql = if backend == Backend::Postgres {
                "select 1 from events where id = $1 for share"
            } else {
                "select 1 from events where id = $1"
            };
            let event: Option<i32> = sqlx::query_scalar(event_sql)
                .bind(new.event_id)
                .fetch_optional(&mut *conn)
                .await?;
            if event.is_none() {
                return Ok(AddEventReward::EventNotFound);
            }
            let reward: Option<i32> = sqlx::query_scalar("select 1 from rewards where id = $1")
                .bind(new.reward_id)
                .fetch_optional(&mut *conn)
                .await?;
            if reward.is_none() {
                return Ok(AddEventReward::RewardNotFound);
            }
            let quantity = new.quantity.map(i64::from);
            sqlx::query(
                "insert into event_rewards (id, event_id, reward_id, condition, auto_resolve, \
                 quantity, remaining, per_user_limit, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $6, $7, $8, $8)",
            )
            .bind(new.id)
            .bind(new.event_id)
            .bind(new.reward_id)
            .bind(condition)
            .bind(new.auto_resolve)
            .bind(quantity)
            .bind(i64::from(new.per_user_limit))
            .bind(new.now)
            .execute(&mut *conn)
            .await?;
            let row: EventRewardRow = sqlx::query_as(EVENT_REWARD_BY_ID)
                .bind(new.id)
                .bind(new.event_id)
                .fetch_one(&mut *conn)
                .await?;
            EventReward::try_from(row).map(AddEventReward::Added)
        })
    }

    async fn event_rewards(
        &self,
        event_id: EventId,
        page: PageRequest,
    ) -> Result<Vec<EventReward>, sqlx::Error> {
        let sql = concat!(
            "select ",
            event_reward_columns!(),
            " where er.event_id = $1 and ($2 is null or er.id > $2) order by er.id limit $3"
        );
        let rows: Vec<EventRewardRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(sql)
                .bind(event_id)
                .bind(page.after.map(EventRewardId))
                .bind(page.fetch_limit())
                .fetch_all(pool)
                .await
        })?;
        rows.into_iter().map(EventReward::try_from).collect()
    }

    async fn event_reward(
        &self,
        event_id: EventId,
        id: EventRewardId,
    ) -> Result<Option<EventReward>, sqlx::Error> {
        let row: Option<EventRewardRow> = kernel::read!(&self.db, |pool| {
            sqlx::query_as(EVENT_REWARD_BY_ID)
                .bind(id)
                .bind(event_id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(EventReward::try_from).transpose()
    }

    async fn update_event_reward(
        &self,
        event_id: EventId,
        id: EventRewardId,
        change: EventRewardChange,
        now: Timestamp,
    ) -> Result<UpdateEventReward, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn, backend| {
            let sql = if backend == Backend::Postgres {
                EVENT_REWARD_BY_ID_FOR_UPDATE
            } else {
                EVENT_REWARD_BY_ID
            };
            let row: Option<EventRewardRow> = sqlx::query_as(sql)
                .bind(id)
                .bind(event_id)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(row) = row else {
                return Ok(UpdateEventReward::NotFound);
            };
            let mut current = EventReward::try_from(row)?;
            if let Some(quantity) = change.quantity {
                match current.restock(quantity) {
                    Ok(remaining) => {
                        current.quantity = quantity;
                        current.remaining = remaining;
                    }
                    Err(taken) => return Ok(UpdateEventReward::QuantityBelowTaken { taken }),
                }
            }
            if let Some(condition) = change.condition {
                current.condition = condition;
            }
            if let Some(auto_resolve) = change.auto_resolve {
                current.auto_resolve = auto_resolve;
            }
            if let Some(limit) = change.per_user_limit {
                current.per_user_limit = limit;
            }
            sqlx::query(
                "update event_rewards set condition = $3, auto_resolve = $4, quantity = $5, \
                 remaining = $6, per_user_limit = $7, updated_at = $8 \
                 where id = $1 and event_id = $2",
            )
            .bind(id)
            .bind(event_id)
            .bind(condition_column(current.condition.as_ref())?)
            .bind(current.auto_resolve)
            .bind(current.quantity.map(i64::from))
            .bind(current.remaining.map(i64::from))
            .bind(i64::from(current.per_user_limit))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(UpdateEventReward::Updated(current))
        })
    }

    async fn delete_event_reward(
        &self,
        event_id: EventId,
        id: EventRewardId,
    ) -> Result<bool, sqlx::Error> {
        kernel::write_tx!(&self.db, |conn| {
            let done = sqlx::query("delete from event_rewards where id = $1 and event_id = $2")
                .bind(id)
                .bind(event_id)
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}
