//! The rewards module's use cases. This file holds the service and the
//! catalogue (events, rewards, event rewards); `requests` the reward
//! requests, decisions, grants and wallet; `facts` what conditions read;
//! `analytics` the readers' aggregates. Methods that need a role take the
//! proof (`&Staff`, `&Admin`, `&Reader`); visibility of drafts depends on an
//! optional `&Reader`.

mod analytics;
mod facts;
mod requests;

pub use analytics::{EventAnalytics, RewardAnalytics, UserAnalytics};
pub use facts::{ActivityReceipt, NewActivityRequest};
pub(crate) use requests::status_filter;
pub use requests::{DecisionRequest, Eligibility, RewardStockLoader};

use std::sync::Arc;

use contracts::commerce::CouponCampaigns;
use gate::{PoolId, StockGate};

use kernel::auth::{Admin, Reader, Staff};
use kernel::{Lifecycle as _, Page, PageRequest, SharedClock, Timestamp, Violations};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::RewardsError;
use crate::model::{
    Condition, Description, Event, EventId, EventPeriod, EventReward, EventRewardId, EventStatus,
    Name, NewReward, Reward, RewardId, RewardKind,
};
use crate::store::{
    AddEventReward, DeleteEvent, EventFilter, EventRewardChange, NewEventReward, RewardsStore,
    UpdateEventReward,
};

/// The body of `POST /events`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewEventRequest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// `DRAFT` (the default) or `ACTIVE`; an event cannot start in another status.
    #[schema(example = "DRAFT")]
    pub status: Option<String>,
}

/// The body of `PATCH /events/{id}`; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct EventPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    /// The status to move to: DRAFT→ACTIVE, ACTIVE⇄INACTIVE,
    /// ACTIVE or INACTIVE→COMPLETED.
    pub status: Option<String>,
}

/// The body of `POST /events/{id}/rewards`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewEventRewardRequest {
    #[schema(format = Uuid)]
    pub reward_id: String,
    /// A condition tree, or null for none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub condition: Value,
    #[serde(default)]
    pub auto_resolve: bool,
    /// At least 1; null or absent means unlimited.
    #[schema(minimum = 1)]
    pub quantity: Option<i64>,
    /// At least 1 (default 1).
    #[schema(minimum = 1)]
    pub per_user_limit: Option<i64>,
}

/// The body of `PATCH /events/{id}/rewards/{event_reward_id}`; absent fields
/// stay as they are, `"condition": null` removes the condition and
/// `"quantity": null` makes the stock unlimited.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct EventRewardPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub condition: Option<Value>,
    pub auto_resolve: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    pub quantity: Option<Option<i64>>,
    #[schema(minimum = 1)]
    pub per_user_limit: Option<i64>,
}

/// Tells a member sent as `null` (`Some(null)`) from one not sent (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The stock-gate pool of an event reward.
fn pool_of(id: EventRewardId) -> PoolId {
    PoolId::new(format!("{POOL_PREFIX}{}", id.0))
}

const POOL_PREFIX: &str = "reward:";

/// A count of at least 1 that fits a `u32`.
fn positive(raw: i64) -> Result<u32, &'static str> {
    u32::try_from(raw)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or("must be between 1 and 4294967295")
}

fn status(raw: &str) -> Result<EventStatus, RewardsError> {
    raw.parse()
        .map_err(|e: crate::model::UnknownValue| RewardsError::invalid("status", e.to_string()))
}

pub struct RewardsService {
    store: Arc<dyn RewardsStore>,
    clock: SharedClock,
    /// Limited quantities and per-user limits under concurrency (pools
    /// `reward:<event reward id>`); the database keeps the last guard.
    gate: Arc<dyn StockGate>,
    /// Commerce's campaigns, which a `COUPON` reward must name.
    campaigns: Arc<dyn CouponCampaigns>,
}

impl std::fmt::Debug for RewardsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RewardsService").finish_non_exhaustive()
    }
}

impl RewardsService {
    /// `gate` should load its pools through a [`RewardStockLoader`] over
    /// the same store; `campaigns` is commerce's service.
    #[must_use]
    pub fn new(
        store: Arc<dyn RewardsStore>,
        clock: SharedClock,
        gate: Arc<dyn StockGate>,
        campaigns: Arc<dyn CouponCampaigns>,
    ) -> Self {
        Self {
            store,
            clock,
            gate,
            campaigns,
        }
    }

    /// Creates an event, `DRAFT` unless `ACTIVE` is asked for.
    #[tracing::instrument(name = "rewards.create_event", skip_all)]
    pub async fn create_event(
        &self,
        _: &Staff,
        request: NewEventRequest,
    ) -> Result<Event, RewardsError> {
        let mut v = Violations::default();
        let name = v.check("name", Name::parse(&request.name));
        let description = v.check("description", Description::parse(&request.description));
        let period = v.check(
            "ends_at",
            EventPeriod::new(request.starts_at, request.ends_at),
        );
        let status = match request.status.as_deref() {
            None => Some(EventStatus::Draft),
            Some(raw) => match raw.parse::<EventStatus>() {
                Ok(s @ (EventStatus::Draft | EventStatus::Active)) => Some(s),
                Ok(_) => {
                    v.add("status", "a new event must be DRAFT or ACTIVE");
                    None
                }
                Err(e) => v.check("status", Err::<EventStatus, _>(e)),
            },
        };
        v.into_errors().map_err(RewardsError::Invalid)?;
        let (Some(name), Some(description), Some(period), Some(status)) =
            (name, description, period, status)
        else {
            return Err(RewardsError::invalid("body", "is not valid"));
        };
        let now = self.clock.now();
        let event = Event {
            id: EventId::new(),
            name,
            description,
            status,
            period,
            created_at: now,
            updated_at: now,
        };
        self.store.create_event(event.clone()).await?;
        Ok(event)
    }

    /// Events in id order; drafts only for readers. `name_contains` keeps
    /// those whose name holds it, ignoring ASCII case.
    #[tracing::instrument(name = "rewards.list_events", skip_all)]
    pub async fn list_events(
        &self,
        reader: Option<&Reader>,
        status_filter: Option<&str>,
        name_contains: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Event>, RewardsError> {
        let name_contains = match name_contains.map(str::trim) {
            Some(fragment) if !fragment.is_empty() => {
                kernel::text::single_line(fragment)
                    .map_err(|e| RewardsError::invalid("name", e.to_string()))?;
                Some(fragment.to_owned())
            }
            _ => None,
        };
        let filter = EventFilter {
            status: status_filter.map(status).transpose()?,
            include_drafts: reader.is_some(),
            name_contains,
        };
        let rows = self.store.list_events(filter, page).await?;
        Ok(Page::from_rows(rows, page, "events", |e| e.id.0))
    }

    /// An event; a draft is not found unless the caller is a reader.
    #[tracing::instrument(name = "rewards.event", skip_all)]
    pub async fn event(&self, reader: Option<&Reader>, id: EventId) -> Result<Event, RewardsError> {
        match self.store.event(id).await? {
            Some(event) if event.status != EventStatus::Draft || reader.is_some() => Ok(event),
            _ => Err(RewardsError::EventNotFound),
        }
    }

    /// Changes an event. A status change must be a legal move (staying put
    /// is not one); the period must stay valid.
    #[tracing::instrument(name = "rewards.update_event", skip_all)]
    pub async fn update_event(
        &self,
        _: &Staff,
        id: EventId,
        patch: EventPatch,
    ) -> Result<Event, RewardsError> {
        let current = self
            .store
            .event(id)
            .await?
            .ok_or(RewardsError::EventNotFound)?;
        let mut v = Violations::default();
        let name = patch
            .name
            .as_deref()
            .map(|raw| v.check("name", Name::parse(raw)));
        let description = patch
            .description
            .as_deref()
            .map(|raw| v.check("description", Description::parse(raw)));
        let period = v.check(
            "ends_at",
            EventPeriod::new(
                patch.starts_at.unwrap_or(current.period.starts_at()),
                patch.ends_at.unwrap_or(current.period.ends_at()),
            ),
        );
        let next = patch
            .status
            .as_deref()
            .map(|raw| v.check("status", raw.parse::<EventStatus>()));
        v.into_errors().map_err(RewardsError::Invalid)?;
        let mut event = current.clone();
        if let Some(Some(next)) = next {
            event.status = current.status.move_to(next)?;
        }
        if let Some(Some(name)) = name {
            event.name = name;
        }
        if let Some(Some(description)) = description {
            event.description = description;
        }
        if let Some(period) = period {
            event.period = period;
        }
        event.updated_at = self.clock.now();
        if self
            .store
            .update_event(event.clone(), current.status)
            .await?
        {
            Ok(event)
        } else {
            Err(RewardsError::EventChanged)
        }
    }

    /// Deletes a DRAFT event and its event rewards.
    #[tracing::instrument(name = "rewards.delete_event", skip_all)]
    pub async fn delete_event(&self, _: &Admin, id: EventId) -> Result<(), RewardsError> {
        match self.store.delete_draft_event(id).await? {
            DeleteEvent::Deleted => Ok(()),
            DeleteEvent::NotFound => Err(RewardsError::EventNotFound),
            DeleteEvent::NotDraft => Err(RewardsError::EventNotDraft),
        }
    }

    /// Adds a reward to the catalogue.
    #[tracing::instrument(name = "rewards.create_reward", skip_all)]
    pub async fn create_reward(
        &self,
        _: &Staff,
        body: &Map<String, Value>,
    ) -> Result<Reward, RewardsError> {
        let new = NewReward::parse(body).map_err(RewardsError::Invalid)?;
        // A campaign deleted later still ends in a visible dead letter.
        if let RewardKind::Coupon { coupon_campaign_id } = new.kind {
            let exists = self.campaigns.exists(coupon_campaign_id).await;
            if !exists.map_err(RewardsError::CommerceUnavailable)? {
                return Err(RewardsError::invalid(
                    "coupon_campaign_id",
                    "no coupon campaign has this id",
                ));
            }
        }
        let reward = Reward {
            id: RewardId::new(),
            name: new.name,
            kind: new.kind,
        };
        self.store
            .create_reward(reward.clone(), self.clock.now())
            .await?;
        Ok(reward)
    }

    #[tracing::instrument(name = "rewards.reward", skip_all)]
    pub async fn reward(&self, _: &Reader, id: RewardId) -> Result<Reward, RewardsError> {
        self.store
            .reward(id)
            .await?
            .ok_or(RewardsError::RewardNotFound)
    }

    #[tracing::instrument(name = "rewards.list_rewards", skip_all)]
    pub async fn list_rewards(
        &self,
        _: &Reader,
        page: PageRequest,
    ) -> Result<Page<Reward>, RewardsError> {
        let rows = self.store.list_rewards(page).await?;
        Ok(Page::from_rows(rows, page, "rewards", |r| r.id.0))
    }

    /// Attaches a catalogue reward to an event.
    #[tracing::instrument(name = "rewards.add_event_reward", skip_all)]
    pub async fn add_event_reward(
        &self,
        _: &Staff,
        event_id: EventId,
        request: NewEventRewardRequest,
    ) -> Result<EventReward, RewardsError> {
        let mut v = Violations::default();
        let reward_id = v.check(
            "reward_id",
            uuid::Uuid::parse_str(&request.reward_id)
                .map(RewardId)
                .map_err(|_| "must be a UUID"),
        );
        let condition = match Condition::parse_optional(&request.condition) {
            Ok(c) => c,
            Err(errors) => {
                v.extend(errors);
                None
            }
        };
        let quantity = request
            .quantity
            .map(|q| v.check("quantity", positive(q)))
            .unwrap_or_default();
        let per_user_limit = v.check(
            "per_user_limit",
            positive(request.per_user_limit.unwrap_or(1)),
        );
        v.into_errors().map_err(RewardsError::Invalid)?;
        let (Some(reward_id), Some(per_user_limit)) = (reward_id, per_user_limit) else {
            return Err(RewardsError::invalid("body", "is not valid"));
        };
        let added = self
            .store
            .add_event_reward(NewEventReward {
                id: EventRewardId::new(),
                event_id,
                reward_id,
                condition,
                auto_resolve: request.auto_resolve,
                quantity,
                per_user_limit,
                now: self.clock.now(),
            })
            .await?;
        match added {
            AddEventReward::Added(er) => Ok(er),
            AddEventReward::EventNotFound => Err(RewardsError::EventNotFound),
            AddEventReward::RewardNotFound => {
                Err(RewardsError::invalid("reward_id", "no such reward"))
            }
        }
    }

    /// An event's rewards, visible as the event is.
    #[tracing::instrument(name = "rewards.event_rewards", skip_all)]
    pub async fn event_rewards(
        &self,
        reader: Option<&Reader>,
        event_id: EventId,
        page: PageRequest,
    ) -> Result<Page<EventReward>, RewardsError> {
        self.event(reader, event_id).await?;
        let rows = self.store.event_rewards(event_id, page).await?;
        Ok(Page::from_rows(rows, page, "event-rewards", |r| r.id.0))
    }

    /// Changes an event reward; a new quantity moves `remaining` by the same
    /// delta and may not go below what is already taken.
    #[tracing::instrument(name = "rewards.update_event_reward", skip_all)]
    pub async fn update_event_reward(
        &self,
        _: &Staff,
        event_id: EventId,
        id: EventRewardId,
        patch: EventRewardPatch,
    ) -> Result<EventReward, RewardsError> {
        let mut v = Violations::default();
        let condition = match patch.condition.as_ref().map(Condition::parse_optional) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(errors)) => {
                v.extend(errors);
                None
            }
        };
        let quantity = match patch.quantity {
            None => None,
            Some(None) => Some(None),
            Some(Some(q)) => v.check("quantity", positive(q)).map(Some),
        };
        let per_user_limit = patch
            .per_user_limit
            .and_then(|n| v.check("per_user_limit", positive(n)));
        v.into_errors().map_err(RewardsError::Invalid)?;
        let change = EventRewardChange {
            condition,
            auto_resolve: patch.auto_resolve,
            quantity,
            per_user_limit,
        };
        match self
            .store
            .update_event_reward(event_id, id, change, self.clock.now())
            .await?
        {
            UpdateEventReward::Updated(er) => {
                self.reload_pool(er.id).await;
                Ok(er)
            }
            UpdateEventReward::NotFound => Err(RewardsError::EventRewardNotFound),
            UpdateEventReward::QuantityBelowTaken { taken } => {
                Err(RewardsError::QuantityBelowTaken { taken })
            }
        }
    }

    /// Removes a reward from an event.
    #[tracing::instrument(name = "rewards.delete_event_reward", skip_all)]
    pub async fn delete_event_reward(
        &self,
        _: &Staff,
        event_id: EventId,
        id: EventRewardId,
    ) -> Result<(), RewardsError> {
        if self.store.delete_event_reward(event_id, id).await? {
            Ok(())
        } else {
            Err(RewardsError::EventRewardNotFound)
        }
    }
}
