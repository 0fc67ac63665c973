//! The timed window: `--connections` keep-alive connections, each sending
//! one request after another until `--requests` have been claimed or
//! `--duration` has passed. Requests and headers are prepared before the
//! clock starts; per request the tool records a latency in an HDR histogram
//! and a few counters, and reads a body only to tally an issue's outcome.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http::{HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::Deserialize;
use uuid::Uuid;

use crate::conn::{Answer, ConnError, Connection};
use crate::target::Target;

/// Latencies are kept in microseconds, from 1 µs to a minute, 3 significant digits.
const LATENCY_MAX_MICROS: u64 = 60_000_000;

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

/// Requests that got no answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Errors {
    /// Never sent: no connection could be (re)opened, or it closed first.
    pub connect: u64,
    /// Sent, no answer within `--timeout`.
    pub timeout: u64,
    /// Sent, the connection failed before the answer.
    pub transport: u64,
}

impl Errors {
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.connect + self.timeout + self.transport
    }

    fn add(&mut self, other: Self) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.transport += other.transport;
    }
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
    #[error("latency histogram: {0}")]
    Histogram(String),
    #[error("a connection's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Counters every connection shares.
struct Shared {
    plan: RushPlan,
    next: AtomicU64,
    deadline: Instant,
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

impl Shared {
    /// The next request's number, or `None` once the count or time is up.
    fn claim(&self) -> Option<u64> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.plan.requests && Instant::now() < self.deadline).then_some(i)
    }
}

/// Opens every connection, then runs the timed window.
pub async fn rush(plan: RushPlan) -> Result<Outcome, RushError> {
    let mut connections = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        connections.push(Connection::open(&plan.target).await?);
    }
    let (uri, users) = match &plan.shot {
        Shot::Healthz => (Uri::from_static("/healthz"), 0),
        Shot::Issue { users, .. } if users.is_empty() => return Err(RushError::NoUsers),
        Shot::Issue { campaign, users } => (issue_uri(*campaign)?, users.len()),
    };
    let started = Instant::now();
    let shared = Arc::new(Shared {
        deadline: started + plan.duration,
        plan,
        next: AtomicU64::new(0),
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
    /// Requests claimed, answered or not.
    sent: u64,
    latency: Histogram<u64>,
    statuses: Vec<u64>,
    codes: HashMap<String, u64>,
    errors: Errors,
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

#[derive(Deserialize)]
struct ProblemBody<'a> {
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
}

impl Worker {
    fn new() -> Result<Self, RushError> {
        Ok(Self {
            sent: 0,
            latency: Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3)
                .map_err(|e| RushError::Histogram(e.to_string()))?,
            statuses: vec![0; 600],
            codes: HashMap::new(),
            errors: Errors::default(),
            coupons: Vec::new(),
            foreign_coupons: 0,
        })
    }

    async fn run(mut self, shared: &Shared, first: Connection) -> Result<Self, RushError> {
        let plan = &shared.plan;
        let mut conn = Some(first);
        while let Some(i) = shared.claim() {
            self.sent += 1;
            let mut open = match conn.take() {
                Some(open) => open,
                None => match Connection::open(&plan.target).await {
                    Ok(open) => open,
                    Err(_) => {
                        self.errors.connect += 1;
                        continue;
                    }
                },
            };
            let (request, user) = match &plan.shot {
                Shot::Healthz => (
                    open.request(Method::GET, shared.uri.clone(), Full::new(Bytes::new())),
                    None,
                ),
                Shot::Issue { users, .. } => {
                    let user = (i % users.len() as u64) as usize;
                    let mut request =
                        open.request(Method::POST, shared.uri.clone(), Full::new(Bytes::new()));
                    request
                        .headers_mut()
                        .insert(header::AUTHORIZATION, users[user].authorization.clone());
                    (request, Some(user))
                }
            };
            let started = Instant::now();
            match tokio::time::timeout(plan.timeout, open.send(request)).await {
                Ok(Ok(answer)) => {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.latency.saturating_record(micros.max(1));
                    self.tally(shared, user, &answer);
                    conn = Some(open);
                }
                Ok(Err(ConnError::Closed | ConnError::Connect { .. })) => {
                    self.errors.connect += 1;
                }
                Ok(Err(ConnError::Http(_))) => {
                    self.errors.transport += 1;
                    unanswered(shared, user);
                }
                Err(_) => {
                    self.errors.timeout += 1;
                    unanswered(shared, user);
                }
            }
        }
        Ok(self)
    }

    fn tally(&mut self, shared: &Shared, user: Option<usize>, answer: &Answer) {
        if let Some(count) = self.statuses.get_mut(usize::from(answer.status.as_u16())) {
            *count += 1;
        }
        let code = if answer.status.is_client_error() || answer.status.is_server_error() {
            serde_json::from_slice::<ProblemBody<'_>>(&answer.body)
                .ok()
                .and_then(|p| p.code)
        } else {
            None
        };
        if let Some(code) = &code {
            match self.codes.get_mut(code.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    self.codes.insert(code.clone().into_owned(), 1);
                }
            }
        }
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
        } else if code.as_deref() == Some(LIMIT_REACHED) {
            tally.limit_refused.store(true, Ordering::Relaxed);
        }
    }

    fn merge(&mut self, other: Self) -> Result<(), RushError> {
        self.latency
            .add(&other.latency)
            .map_err(|e| RushError::Histogram(format!("{e:?}")))?;
        for (mine, theirs) in self.statuses.iter_mut().zip(other.statuses) {
            *mine += theirs;
        }
        for (code, n) in other.codes {
            *self.codes.entry(code).or_default() += n;
        }
        self.sent += other.sent;
        self.errors.add(other.errors);
        self.coupons.extend(other.coupons);
        self.foreign_coupons += other.foreign_coupons;
        Ok(())
    }

    fn into_outcome(self, elapsed: Duration, tallies: &[AtomicTally]) -> Outcome {
        Outcome {
            elapsed,
            sent: self.sent,
            latency: self.latency,
            statuses: (0u16..)
                .zip(self.statuses)
                .filter(|(_, n)| *n > 0)
                .collect(),
            codes: self.codes.into_iter().collect(),
            errors: self.errors,
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
