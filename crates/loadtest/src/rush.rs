//! The timed window: `--connections` keep-alive connections, each sending
//! one request after another until `--requests` have been claimed or
//! `--duration` has passed. Requests and headers are prepared before the
//! clock starts; per request the tool records a latency in an HDR histogram
//! and a few counters, and reads a body only to tally an issue's outcome.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http::{HeaderValue, Method, StatusCode, Uri};
use serde::Deserialize;
use uuid::Uuid;

use crate::conn::{Answer, ConnError, Connection};
pub use crate::steps::Errors;
use crate::steps::{Caller, HistogramError, Step, Window, open_all, problem_code};
use crate::target::Target;

/// The problem codes a coupon issue may be refused with.
pub const SOLD_OUT: &str = "SOLD_OUT";
pub const LIMIT_REACHED: &str = "LIMIT_REACHED";

/// What each request of the rush is.
#[derive(Debug)]
pub enum Shot {
    /// `GET /healthz`, anonymous.
    Healthz,
    /// `POST /api/v1/coupon-campaigns/{campaign}/issue`; request `i` is
    /// sent as user `i % users.len()`.
    Issue {
        campaign: Uuid,
        users: Vec<IssuingUser>,
    },
}

/// A user the rush sends issue requests for, with its header ready.
#[derive(Debug)]
pub struct IssuingUser {
    pub user_id: Uuid,
    pub authorization: HeaderValue,
}

#[derive(Debug)]
pub struct RushPlan {
    pub target: Target,
    pub shot: Shot,
    pub requests: u64,
    pub duration: Duration,
    pub connections: usize,
    /// How long one request may wait for its answer.
    pub timeout: Duration,
}

/// One user's requests, as the tool saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserTally {
    /// 201 answers.
    pub issued: u64,
    /// Requests with any answer.
    pub answered: u64,
    /// Requests sent without an answer: the server may or may not have issued.
    pub unanswered: u64,
    /// Refused with `LIMIT_REACHED` at least once.
    pub limit_refused: bool,
}

/// A coupon a 201 answer carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCoupon {
    /// Index of the user in the plan.
    pub user: usize,
    pub id: Uuid,
    pub code: String,
}

/// Everything the rush measured.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    /// Requests claimed (answered or not).
    pub sent: u64,
    /// Latency of answered requests, µs.
    pub latency: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// Problem `code`s of error answers.
    pub codes: BTreeMap<String, u64>,
    pub errors: Errors,
    /// Per user of an issue rush, in plan order; empty for healthz.
    pub users: Vec<UserTally>,
    pub coupons: Vec<IssuedCoupon>,
    /// 201 answers whose body was not a coupon of this campaign for this caller.
    pub foreign_coupons: u64,
}

impl Outcome {
    #[must_use]
    pub fn answered(&self) -> u64 {
        self.statuses.values().sum()
    }

    #[must_use]
    pub fn count(&self, status: StatusCode) -> u64 {
        self.statuses
            .get(&status.as_u16())
            .copied()
            .unwrap_or_default()
    }

    #[must_use]
    pub fn code(&self, code: &str) -> u64 {
        self.codes.get(code).copied().unwrap_or_default()
    }
}

/// Why the rush could not start.
#[derive(Debug, thiserror::Error)]
pub enum RushError {
    #[error(transparent)]
    Connect(#[from] ConnError),
    #[error("an issue rush needs at least one user")]
    NoUsers,
    #[error(transparent)]
    Uri(#[from] http::uri::InvalidUri),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    #[error("a connection's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Counters every connection shares.
struct Shared {
    plan: RushPlan,
    window: Window,
    /// Where every request goes, parsed once.
    uri: Uri,
    tallies: Vec<AtomicTally>,
}

#[derive(Default)]
struct AtomicTally {
    issued: AtomicU64,
    answered: AtomicU64,
    unanswered: AtomicU64,
    limit_refused: AtomicBool,
}

/// Opens every connection, then runs the timed window.
pub async fn rush(plan: RushPlan) -> Result<Outcome, RushError> {
    let connections = open_all(&plan.target, plan.connections).await?;
    let (uri, users) = match &plan.shot {
        Shot::Healthz => (Uri::from_static("/healthz"), 0),
        Shot::Issue { users, .. } if users.is_empty() => return Err(RushError::NoUsers),
        Shot::Issue { campaign, users } => (issue_uri(*campaign)?, users.len()),
    };
    let started = Instant::now();
    let shared = Arc::new(Shared {
        window: Window::new(plan.requests, started + plan.duration),
        plan,
        uri,
        tallies: (0..users).map(|_| AtomicTally::default()).collect(),
    });
    let workers: Vec<_> = connections
        .into_iter()
        .map(|conn| {
            let shared = shared.clone();
            tokio::spawn(async move { Worker::new()?.run(&shared, conn).await })
        })
        .collect();
    let mut total = Worker::new()?;
    for worker in workers {
        total.merge(worker.await??)?;
    }
    Ok(total.into_outcome(started.elapsed(), &shared.tallies))
}

/// One connection's share of the rush, merged at the end so the hot loop
/// touches no shared state but the request counter and the user tallies.
struct Worker {
    step: Step,
    coupons: Vec<IssuedCoupon>,
    foreign_coupons: u64,
}

#[derive(Deserialize)]
struct IssuedBody<'a> {
    id: Uuid,
    #[serde(borrow)]
    code: Cow<'a, str>,
    campaign_id: Uuid,
    user_id: Uuid,
}

impl Worker {
    fn new() -> Result<Self, RushError> {
        Ok(Self {
            step: Step::new("request")?,
            coupons: Vec::new(),
            foreign_coupons: 0,
        })
    }

    async fn run(mut self, shared: &Shared, first: Connection) -> Result<Self, RushError> {
        let plan = &shared.plan;
        let mut caller = Caller::new(plan.target.clone(), plan.timeout, Some(first));
        while let Some(i) = shared.window.claim() {
            let (method, user) = match &plan.shot {
                Shot::Healthz => (Method::GET, None),
                Shot::Issue { users, .. } => {
                    (Method::POST, Some((i % users.len() as u64) as usize))
                }
            };
            let authorization = match (&plan.shot, user) {
                (Shot::Issue { users, .. }, Some(user)) => Some(&users[user].authorization),
                _ => None,
            };
            match caller
                .call(
                    &mut self.step,
                    method,
                    shared.uri.clone(),
                    authorization,
                    None,
                )
                .await
            {
                Ok(answer) => self.tally(shared, user, &answer),
                Err(failure) if failure.maybe_done() => unanswered(shared, user),
                Err(_) => {}
            }
        }
        Ok(self)
    }

    fn tally(&mut self, shared: &Shared, user: Option<usize>, answer: &Answer) {
        let (
            Some(user),
            Shot::Issue {
                campaign, users, ..
            },
        ) = (user, &shared.plan.shot)
        else {
            return;
        };
        let tally = &shared.tallies[user];
        tally.answered.fetch_add(1, Ordering::Relaxed);
        if answer.status == StatusCode::CREATED {
            tally.issued.fetch_add(1, Ordering::Relaxed);
            match serde_json::from_slice::<IssuedBody<'_>>(&answer.body) {
                Ok(c) if c.campaign_id == *campaign && c.user_id == users[user].user_id => {
                    self.coupons.push(IssuedCoupon {
                        user,
                        id: c.id,
                        code: c.code.into_owned(),
                    });
                }
                _ => self.foreign_coupons += 1,
            }
        } else if answer.status == StatusCode::CONFLICT
            && problem_code(answer).as_deref() == Some(LIMIT_REACHED)
        {
            tally.limit_refused.store(true, Ordering::Relaxed);
        }
    }

    fn merge(&mut self, other: Self) -> Result<(), RushError> {
        self.step.merge(&other.step)?;
        self.coupons.extend(other.coupons);
        self.foreign_coupons += other.foreign_coupons;
        Ok(())
    }

    fn into_outcome(self, elapsed: Duration, tallies: &[AtomicTally]) -> Outcome {
        Outcome {
            elapsed,
            sent: self.step.sent,
            statuses: self.step.statuses(),
            codes: self.step.codes(),
            errors: self.step.errors,
            latency: self.step.latency,
            users: tallies
                .iter()
                .map(|t| UserTally {
                    issued: t.issued.load(Ordering::Relaxed),
                    answered: t.answered.load(Ordering::Relaxed),
                    unanswered: t.unanswered.load(Ordering::Relaxed),
                    limit_refused: t.limit_refused.load(Ordering::Relaxed),
                })
                .collect(),
            coupons: self.coupons,
            foreign_coupons: self.foreign_coupons,
        }
    }
}

/// `/api/v1/coupon-campaigns/{campaign}/issue`.
fn issue_uri(campaign: Uuid) -> Result<Uri, http::uri::InvalidUri> {
    Uri::try_from(format!("/api/v1/coupon-campaigns/{campaign}/issue"))
}

fn unanswered(shared: &Shared, user: Option<usize>) {
    if let Some(user) = user {
        shared.tallies[user]
            .unanswered
            .fetch_add(1, Ordering::Relaxed);
    }
}
