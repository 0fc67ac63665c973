//! Reward requests: the decision at request time, the staff decision on a
//! PENDING one, grants, the wallet, and the stock-gate pools of limited
//! event rewards.
//!
//! A request takes a unit from the stock gate, under a lease named by the
//! request id, before its durable write; it settles the lease once the write
//! records the claim and gives the unit back through it otherwise, so the
//! gate never drifts from the database for long (a lease left by a process
//! that died is swept by the server); the claim's transaction re-checks the
//! per-user limit and `remaining` as the last guard.

use std::sync::Arc;

use async_trait::async_trait;
use bus::Envelope;
use contracts::commerce::{GrantId, IssueCouponGrant};
use contracts::rewards::{RewardGranted, RewardRejected};
use gate::{
    ClaimError, GiveBackError, Holder, Limits, PoolId, Refusal, Snapshot, StockClaim, StockLoader,
    Written,
};
use kernel::auth::{Reader, Staff};
use kernel::{IdempotentEffect, Lifecycle as _, Page, PageRequest, Principal, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{POOL_PREFIX, RewardsService, pool_of};
use crate::error::RewardsError;
use crate::model::{
    Clause, Condition, EvalContext, Evaluation, Event, EventId, EventReward, EventRewardId, Grant,
    OUT_OF_STOCK, ReasonCode, RequestStatus, RewardRequest, RewardRequestId, Verdict, Wallet,
};
use crate::store::{Claim, ClaimOutcome, Decide, Decision, FactQuery, RequestFilter, RewardsStore};

pub const MAX_DECISION_REASON_CHARS: usize = 500;

/// The body of `PATCH /requests/{id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DecisionRequest {
    /// `APPROVED` or `REJECTED`.
    #[schema(example = "APPROVED")]
    pub status: String,
    /// A note kept with the decision (at most 500 characters).
    pub reason: Option<String>,
}

/// Whether the caller would get an event reward now, and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Eligibility {
    /// A request now would be APPROVED or PENDING.
    pub eligible: bool,
    /// The condition's leaves, evaluated on the caller's facts.
    pub clauses: Vec<Clause>,
    /// Whether the event is live (ACTIVE and inside its period).
    pub event_live: bool,
    /// The caller already holds `per_user_limit` requests (PENDING or APPROVED).
    pub already_requested: bool,
    /// Units left; null when unlimited.
    #[schema(required = true)]
    pub remaining: Option<u32>,
    /// Why a request now would be refused; null when eligible.
    #[schema(required = true)]
    pub reason_code: Option<String>,
    #[schema(required = true)]
    pub reason: Option<String>,
}

/// Loads the gate's counters of `reward:<event reward id>` pools from the
/// database: the quantity, what is taken, and each holder's requests.
pub struct RewardStockLoader {
    store: Arc<dyn RewardsStore>,
}

impl RewardStockLoader {
    #[must_use]
    pub fn new(store: Arc<dyn RewardsStore>) -> Self {
        Self { store }
    }

    /// Reads a pool's limits and counters (also what reconciliation compares).
    pub async fn snapshot(&self, id: EventRewardId) -> Result<(Limits, Snapshot), String> {
        let snapshot = self
            .store
            .pool_snapshot(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no event reward {}", id.0))?;
        let taken = match (snapshot.quantity, snapshot.remaining) {
            (Some(q), Some(r)) => q.saturating_sub(r),
            _ => 0,
        };
        Ok((
            Limits {
                stock: snapshot.quantity.map(u64::from),
                per_user: Some(snapshot.per_user_limit),
            },
            Snapshot {
                taken: u64::from(taken),
                by_user: snapshot
                    .holders
                    .into_iter()
                    .map(|(user, n)| (Holder::from(user).into_string(), n))
                    .collect(),
            },
        ))
    }
}

#[async_trait]
impl StockLoader for RewardStockLoader {
    fn owns(&self, pool: &PoolId) -> bool {
        pool.as_str().starts_with(POOL_PREFIX)
    }

    async fn load(&self, pool: &PoolId) -> Result<(Limits, Snapshot), String> {
        let id = pool
            .as_str()
            .strip_prefix(POOL_PREFIX)
            .and_then(|raw| uuid::Uuid::parse_str(raw).ok())
            .ok_or_else(|| format!("{pool} is not an event reward pool"))?;
        self.snapshot(EventRewardId(id)).await
    }

    /// A request claim is durable once the request is recorded as having
    /// claimed its unit ([`RewardRequest::claimed_stock`]).
    async fn claimed(&self, pool: &PoolId, claim: &str) -> Result<bool, String> {
        if !pool.as_str().starts_with(POOL_PREFIX) {
            return Err(format!("{pool} is not an event reward pool"));
        }
        let id = uuid::Uuid::parse_str(claim)
            .map_err(|_| format!("claim {claim} of {pool} is not a request id"))?;
        let request = self
            .store
            .request(RewardRequestId(id))
            .await
            .map_err(|e| format!("cannot read reward request {id}: {e}"))?;
        Ok(request.is_some_and(|r| r.claimed_stock()))
    }
}

impl RewardsService {
    /// Requests an event reward for the caller. Every attempt on a visible
    /// event reward is recorded, rejections included; only
    /// [`RewardsError::AlreadyRequested`] records nothing. A keyed request
    /// is recorded under the key's effect id; a retry of one that may have
    /// been recorded answers with that request.
    #[tracing::instrument(name = "rewards.request_reward", skip_all, fields(user = %caller.user_id, event_reward = %event_reward_id))]
    pub async fn request_reward(
        &self,
        caller: &Principal,
        event_id: EventId,
        event_reward_id: EventRewardId,
        effect: Option<IdempotentEffect>,
    ) -> Result<RewardRequest, RewardsError> {
        let id = effect.map_or_else(RewardRequestId::new, |e| RewardRequestId(e.id));
        if effect.is_some_and(|e| e.retry) {
            let first = self.store.request(id).await?;
            if let Some(first) = first
                .filter(|r| r.user_id == caller.user_id && r.event_reward_id == event_reward_id)
            {
                return Ok(first);
            }
        }
        let (event, reward) = self
            .visible_reward(caller, event_id, event_reward_id)
            .await?;
        let user = caller.user_id;
        if let Some(held) = self.at_limit(&reward, user).await? {
            return Err(RewardsError::AlreadyRequested(Some(held)));
        }
        let now = self.clock.now();
        let evaluation = self
            .evaluate(user, &event, reward.condition.as_ref(), now)
            .await?;
        let request = RewardRequest {
            id,
            user_id: user,
            event_id,
            event_reward_id,
            reward_id: reward.reward.id,
            status: RequestStatus::Rejected,
            reason_code: None,
            reason: None,
            created_at: now,
            decided_at: None,
            decided_by: None,
        };
        let status = match Verdict::of(event.is_live(now), &evaluation, reward.auto_resolve) {
            Verdict::Claim(status) => status,
            Verdict::Reject(code, reason) => return self.reject(request, code, reason).await,
        };
        let mut claimed = request.clone();
        claimed.status = status;
        // Built before the take: nothing may fail between the take and the
        // claim's protocol, which alone gives the unit back.
        let (grant, messages) = if status == RequestStatus::Approved {
            claimed.decided_at = Some(now);
            granting(&claimed, &reward.reward.kind, now)?
        } else {
            (None, Vec::new())
        };
        let claim = StockClaim {
            pool: pool_of(event_reward_id),
            holder: Holder::from(user),
            lease: claimed.id.0.to_string(),
            quantity: 1,
        };
        let store = Arc::clone(&self.store);
        let write = Claim {
            request: claimed.clone(),
            grant,
            messages,
        };
        let outcome = claim
            .run(Arc::clone(&self.gate), move |_| async move {
                match store.claim(write).await {
                    Ok(ClaimOutcome::Claimed) => Written::Durable(Ok(ClaimOutcome::Claimed)),
                    Err(e) if kernel::db::may_have_committed(&e) => Written::Unknown(Err(e)),
                    other => Written::NotWritten(other),
                }
            })
            .await;
        let outcome = match outcome {
            Ok(outcome) => outcome?,
            Err(ClaimError::Refused(Refusal::SoldOut)) => return self.out_of_stock(request).await,
            Err(ClaimError::Refused(Refusal::LimitReached)) => {
                // Another request of this user is being recorded right now.
                let held = self.store.holdings(event_reward_id, user).await?;
                return Err(RewardsError::AlreadyRequested(held.first().copied()));
            }
            Err(e) => return Err(e.into()),
        };
        match outcome {
            ClaimOutcome::Claimed => Ok(claimed),
            ClaimOutcome::AlreadyRequested(held) => Err(RewardsError::AlreadyRequested(Some(held))),
            ClaimOutcome::OutOfStock => self.out_of_stock(request).await,
            ClaimOutcome::EventRewardGone => Err(RewardsError::EventRewardNotFound),
        }
    }

    /// Explains, without recording anything, what a request now would get.
    #[tracing::instrument(name = "rewards.eligibility", skip_all)]
    pub async fn eligibility(
        &self,
        caller: &Principal,
        event_id: EventId,
        event_reward_id: EventRewardId,
    ) -> Result<Eligibility, RewardsError> {
        let (event, reward) = self
            .visible_reward(caller, event_id, event_reward_id)
            .await?;
        let now = self.clock.now();
        let evaluation = self
            .evaluate(caller.user_id, &event, reward.condition.as_ref(), now)
            .await?;
        let already_requested = self.at_limit(&reward, caller.user_id).await?.is_some();
        let event_live = event.is_live(now);
        let verdict = match Verdict::of(event_live, &evaluation, reward.auto_resolve) {
            Verdict::Claim(_) if reward.remaining == Some(0) => {
                Verdict::Reject(ReasonCode::OutOfStock, OUT_OF_STOCK.to_owned())
            }
            verdict => verdict,
        };
        let (eligible, reason_code, reason) = match verdict {
            Verdict::Claim(_) if already_requested => (
                false,
                Some("ALREADY_REQUESTED".to_owned()),
                Some(format!(
                    "already holds {} request(s) for this reward",
                    reward.per_user_limit
                )),
            ),
            Verdict::Claim(_) => (true, None, None),
            Verdict::Reject(code, reason) => (false, Some(code.as_str().to_owned()), Some(reason)),
        };
        Ok(Eligibility {
            eligible,
            clauses: evaluation.into_clauses(),
            event_live,
            already_requested,
            remaining: reward.remaining,
            reason_code,
            reason,
        })
    }

    /// Decides a PENDING request: approval grants the reward, rejection gives
    /// the held unit back. Each happens once; a second decision is 409.
    #[tracing::instrument(name = "rewards.decide", skip_all)]
    pub async fn decide(
        &self,
        staff: &Staff,
        id: RewardRequestId,
        body: DecisionRequest,
    ) -> Result<RewardRequest, RewardsError> {
        let to = match body.status.parse::<RequestStatus>() {
            Ok(s @ (RequestStatus::Approved | RequestStatus::Rejected)) => s,
            _ => {
                return Err(RewardsError::invalid(
                    "status",
                    "must be APPROVED or REJECTED",
                ));
            }
        };
        let reason = body
            .reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_DECISION_REASON_CHARS)
        {
            return Err(RewardsError::invalid(
                "reason",
                format!("must be at most {MAX_DECISION_REASON_CHARS} characters"),
            ));
        }
        if let Some(Err(e)) = reason.as_deref().map(kernel::text::multi_line) {
            return Err(RewardsError::invalid("reason", e.to_string()));
        }
        let current = self
            .store
            .request(id)
            .await?
            .ok_or(RewardsError::RequestNotFound)?;
        current.status.move_to(to)?;
        let now = self.clock.now();
        let (grant, messages) = if to == RequestStatus::Approved {
            let reward = self
                .store
                .reward(current.reward_id)
                .await?
                .ok_or(RewardsError::RewardNotFound)?;
            granting(&current, &reward.kind, now)?
        } else {
            let rejected = RewardRejected {
                request_id: current.id,
                user_id: current.user_id,
                event_id: current.event_id,
                event_reward_id: current.event_reward_id,
                reward_id: current.reward_id,
                reason: reason.clone(),
                rejected_by: staff.principal().user_id,
                rejected_at: now,
            };
            (
                None,
                vec![Envelope::new(&rejected, now).map_err(RewardsError::encode)?],
            )
        };
        let decided = self
            .store
            .decide(Decision {
                id,
                to,
                reason,
                by: staff.principal().user_id,
                at: now,
                grant,
                messages,
            })
            .await?;
        match decided {
            Decide::Decided(request) => {
                if request.status == RequestStatus::Rejected {
                    // Every PENDING request took from the gate (the unit when
                    // limited, and the user's count always).
                    self.give_back(&pool_of(request.event_reward_id), request.user_id)
                        .await;
                }
                Ok(request)
            }
            Decide::NotFound => Err(RewardsError::RequestNotFound),
            Decide::InvalidTransition(e) => Err(e.into()),
        }
    }

    /// The caller's own requests.
    #[tracing::instrument(name = "rewards.my_requests", skip_all)]
    pub async fn my_requests(
        &self,
        caller: &Principal,
        status: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<RewardRequest>, RewardsError> {
        let filter = RequestFilter {
            user: Some(caller.user_id),
            status: status.map(request_status).transpose()?,
            ..RequestFilter::default()
        };
        let rows = self.store.list_requests(filter, page).await?;
        Ok(Page::from_rows(rows, page, "my-requests", |r| r.id.0))
    }

    /// Every request, filtered (readers).
    #[tracing::instrument(name = "rewards.list_requests", skip_all)]
    pub async fn list_requests(
        &self,
        _: &Reader,
        filter: RequestFilter,
        page: PageRequest,
    ) -> Result<Page<RewardRequest>, RewardsError> {
        let rows = self.store.list_requests(filter, page).await?;
        Ok(Page::from_rows(rows, page, "requests", |r| r.id.0))
    }

    /// One request, for its owner or a reader; anyone else gets not found.
    #[tracing::instrument(name = "rewards.request", skip_all)]
    pub async fn request(
        &self,
        caller: &Principal,
        id: RewardRequestId,
    ) -> Result<RewardRequest, RewardsError> {
        match self.store.request(id).await? {
            Some(r) if r.user_id == caller.user_id || Reader::check(*caller).is_some() => Ok(r),
            _ => Err(RewardsError::RequestNotFound),
        }
    }

    /// The condition of a request's event reward evaluated on the requester's
    /// facts now, clause by clause (readers): what a staff member deciding a
    /// PENDING request looks at. Records nothing.
    #[tracing::instrument(name = "rewards.explain_request", skip_all)]
    pub async fn explain_request(
        &self,
        _: &Reader,
        id: RewardRequestId,
    ) -> Result<Vec<Clause>, RewardsError> {
        let request = self
            .store
            .request(id)
            .await?
            .ok_or(RewardsError::RequestNotFound)?;
        let event = self
            .store
            .event(request.event_id)
            .await?
            .ok_or(RewardsError::EventNotFound)?;
        let reward = self
            .store
            .event_reward(request.event_id, request.event_reward_id)
            .await?
            .ok_or(RewardsError::EventRewardNotFound)?;
        let evaluation = self
            .evaluate(
                request.user_id,
                &event,
                reward.condition.as_ref(),
                self.clock.now(),
            )
            .await?;
        Ok(evaluation.into_clauses())
    }

    /// What `condition`, saved or not, says of `user` for this event now,
    /// clause by clause (readers): the condition editor's sample check,
    /// through the same evaluator as a request. Records nothing.
    #[tracing::instrument(name = "rewards.sample_condition", skip_all)]
    pub async fn sample_condition(
        &self,
        reader: &Reader,
        event_id: EventId,
        condition: Option<&Condition>,
        user: UserId,
    ) -> Result<Evaluation, RewardsError> {
        let event = self.event(Some(reader), event_id).await?;
        self.evaluate(user, &event, condition, self.clock.now())
            .await
    }

    /// The caller's wallet, summed from the ledger.
    #[tracing::instrument(name = "rewards.wallet", skip_all)]
    pub async fn wallet(&self, caller: &Principal) -> Result<Wallet, RewardsError> {
        Ok(self.store.wallet(caller.user_id).await?)
    }

    /// Every stock-gate pool of rewards, for reconciliation.
    pub async fn stock_pools(&self) -> Result<Vec<PoolId>, RewardsError> {
        let ids = self.store.event_reward_ids().await?;
        Ok(ids.into_iter().map(pool_of).collect())
    }

    /// Replaces a pool's gate counters with the database's, after its limits
    /// changed. A failure is logged: the gate then reloads on its next start.
    pub(super) async fn reload_pool(&self, id: EventRewardId) {
        let loader = RewardStockLoader::new(self.store.clone());
        let reset = match loader.snapshot(id).await {
            Ok((limits, snapshot)) => self
                .gate
                .reset(&pool_of(id), limits, snapshot)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(error) = reset {
            tracing::warn!(event_reward_id = %id.0, %error, "stock gate not reset");
        }
    }

    /// The event and its reward as the caller may see them (drafts only for readers).
    async fn visible_reward(
        &self,
        caller: &Principal,
        event_id: EventId,
        id: EventRewardId,
    ) -> Result<(Event, EventReward), RewardsError> {
        let reader = Reader::check(*caller);
        let event = self.event(reader.as_ref(), event_id).await?;
        let reward = self
            .store
            .event_reward(event_id, id)
            .await?
            .ok_or(RewardsError::EventRewardNotFound)?;
        Ok((event, reward))
    }

    /// One of the user's requests when they already hold the limit.
    async fn at_limit(
        &self,
        reward: &EventReward,
        user: UserId,
    ) -> Result<Option<RewardRequestId>, RewardsError> {
        let held = self.store.holdings(reward.id, user).await?;
        let limit = usize::try_from(reward.per_user_limit).unwrap_or(usize::MAX);
        Ok((held.len() >= limit)
            .then(|| held.first().copied())
            .flatten())
    }

    /// Fetches what the condition reads and evaluates it.
    async fn evaluate(
        &self,
        user: UserId,
        event: &Event,
        condition: Option<&Condition>,
        now: Timestamp,
    ) -> Result<Evaluation, RewardsError> {
        let ctx = EvalContext {
            now,
            event_starts_at: event.period.starts_at(),
        };
        let needs = Condition::needs_optional(condition);
        if needs.is_empty() {
            return Ok(Condition::evaluate_optional(
                condition,
                &Default::default(),
                &ctx,
            ));
        }
        let query = FactQuery {
            user,
            login_window: needs.login_window(&ctx),
            invites_between: needs.invites.then(|| (event.period.starts_at(), now)),
            metrics: needs.metrics.iter().cloned().collect(),
            metric_period: (event.period.starts_at(), event.period.ends_at()),
        };
        let facts = self.store.facts(&query).await?;
        Ok(Condition::evaluate_optional(condition, &facts, &ctx))
    }

    async fn reject(
        &self,
        mut request: RewardRequest,
        code: ReasonCode,
        reason: String,
    ) -> Result<RewardRequest, RewardsError> {
        request.status = RequestStatus::Rejected;
        request.reason_code = Some(code);
        request.reason = Some(reason);
        self.store.record_rejection(&request).await?;
        Ok(request)
    }

    async fn out_of_stock(&self, request: RewardRequest) -> Result<RewardRequest, RewardsError> {
        self.reject(request, ReasonCode::OutOfStock, OUT_OF_STOCK.to_owned())
            .await
    }

    async fn give_back(&self, pool: &PoolId, user: UserId) {
        let given = self
            .gate
            .give_back(pool, Holder::from(user).as_str(), 1)
            .await;
        Self::log_give_back(pool, given);
    }

    fn log_give_back(pool: &PoolId, given: Result<(), GiveBackError>) {
        match given {
            Ok(()) => {}
            Err(GiveBackError::Excess { .. }) => {
                tracing::warn!(%pool, "gave back a unit the stock gate did not count");
            }
            Err(GiveBackError::Unavailable(error)) => {
                tracing::warn!(%pool, %error, "stock gate unreachable; unit not given back until reconciled");
            }
        }
    }
}

fn request_status(raw: &str) -> Result<RequestStatus, RewardsError> {
    raw.parse()
        .map_err(|e: crate::model::UnknownValue| RewardsError::invalid("status", e.to_string()))
}

/// Parses the optional `status` filter of request lists.
pub(crate) fn status_filter(raw: Option<&str>) -> Result<Option<RequestStatus>, RewardsError> {
    raw.map(request_status).transpose()
}

/// What an approval of `request` commits with it: the grant of the reward
/// `kind`, and the messages announcing it (with commerce's command for a coupon).
fn granting(
    request: &RewardRequest,
    kind: &crate::model::RewardKind,
    at: Timestamp,
) -> Result<(Option<Grant>, Vec<Envelope>), RewardsError> {
    let grant = Grant::of(kind);
    let granted = RewardGranted {
        request_id: request.id,
        user_id: request.user_id,
        event_id: request.event_id,
        event_reward_id: request.event_reward_id,
        reward_id: request.reward_id,
        reward: kind.as_json(),
        granted_at: at,
    };
    let mut messages = vec![Envelope::new(&granted, at).map_err(RewardsError::encode)?];
    if let Grant::Coupon { campaign_id } = &grant {
        let command = IssueCouponGrant {
            grant_id: GrantId(request.id.0),
            user_id: request.user_id,
            campaign_id: *campaign_id,
            requested_at: at,
        };
        messages.push(Envelope::new(&command, at).map_err(RewardsError::encode)?);
    }
    Ok((Some(grant), messages))
}
