//! What every scenario measures per kind of request (a *step*: the issue of
//! a coupon, a hold, a poll of `line/me`, …): requests sent, latency in an
//! HDR histogram, counts per status and per problem `code`, and requests
//! that got no answer. [`Caller`] sends one request of a step on a
//! keep-alive connection, reopened after a failure, and records it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http::{HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::Deserialize;

use crate::conn::{Answer, ConnError, Connection};
use crate::target::Target;

/// Latencies are kept in microseconds, from 1 µs to a minute, 3 significant digits.
const LATENCY_MAX_MICROS: u64 = 60_000_000;

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

    /// Sent without an answer: the server may or may not have acted on them.
    #[must_use]
    pub const fn unanswered(&self) -> u64 {
        self.timeout + self.transport
    }

    pub const fn add(&mut self, other: Self) {
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.transport += other.transport;
    }
}

/// Why the histogram could not be made or merged (never with these bounds).
#[derive(Debug, thiserror::Error)]
#[error("latency histogram: {0}")]
pub struct HistogramError(pub String);

/// One step's record. Kept per connection and merged at the end, so the
/// hot loop touches nothing shared.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    /// Requests claimed, answered or not.
    pub sent: u64,
    /// Latency of answered requests, µs.
    pub latency: Histogram<u64>,
    /// Indexed by status code: no map lookup per answer.
    statuses: Vec<u64>,
    codes: HashMap<String, u64>,
    pub errors: Errors,
}

#[derive(Deserialize)]
struct ProblemBody<'a> {
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
}

impl Step {
    pub fn new(name: &'static str) -> Result<Self, HistogramError> {
        Ok(Self {
            name,
            sent: 0,
            latency: Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3)
                .map_err(|e| HistogramError(e.to_string()))?,
            statuses: vec![0; 600],
            codes: HashMap::new(),
            errors: Errors::default(),
        })
    }

    /// Records an answer that took since `started`, with its problem `code`
    /// when it is an error answer that has one.
    pub fn answered(&mut self, started: Instant, answer: &Answer) {
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.latency.saturating_record(micros.max(1));
        if let Some(count) = self.statuses.get_mut(usize::from(answer.status.as_u16())) {
            *count += 1;
        }
        if !(answer.status.is_client_error() || answer.status.is_server_error()) {
            return;
        }
        let Some(code) = serde_json::from_slice::<ProblemBody<'_>>(&answer.body)
            .ok()
            .and_then(|p| p.code)
        else {
            return;
        };
        match self.codes.get_mut(code.as_ref()) {
            Some(n) => *n += 1,
            None => {
                self.codes.insert(code.into_owned(), 1);
            }
        }
    }

    /// Records a request that got no answer.
    pub const fn failed(&mut self, failure: Failure) {
        match failure {
            Failure::Connect => self.errors.connect += 1,
            Failure::Timeout => self.errors.timeout += 1,
            Failure::Transport => self.errors.transport += 1,
        }
    }

    pub fn merge(&mut self, other: &Self) -> Result<(), HistogramError> {
        self.latency
            .add(&other.latency)
            .map_err(|e| HistogramError(format!("{e:?}")))?;
        for (mine, theirs) in self.statuses.iter_mut().zip(&other.statuses) {
            *mine += theirs;
        }
        for (code, n) in &other.codes {
            *self.codes.entry(code.clone()).or_default() += n;
        }
        self.sent += other.sent;
        self.errors.add(other.errors);
        Ok(())
    }

    /// Counts per status, only those seen.
    #[must_use]
    pub fn statuses(&self) -> BTreeMap<u16, u64> {
        (0u16..)
            .zip(self.statuses.iter().copied())
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    #[must_use]
    pub fn codes(&self) -> BTreeMap<String, u64> {
        self.codes.iter().map(|(c, n)| (c.clone(), *n)).collect()
    }

    #[must_use]
    pub fn answered_count(&self) -> u64 {
        self.statuses.iter().sum()
    }

    #[must_use]
    pub fn count(&self, status: StatusCode) -> u64 {
        self.statuses
            .get(usize::from(status.as_u16()))
            .copied()
            .unwrap_or_default()
    }

    #[must_use]
    pub fn code(&self, code: &str) -> u64 {
        self.codes.get(code).copied().unwrap_or_default()
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Never sent.
    Connect,
    /// Sent; no answer within the timeout.
    Timeout,
    /// Sent; the connection failed before the answer.
    Transport,
}

impl Failure {
    /// Whether the server may have acted on the request.
    #[must_use]
    pub const fn maybe_done(self) -> bool {
        !matches!(self, Self::Connect)
    }
}

/// Sends requests one at a time on one keep-alive connection, opening a
/// new one after a failure.
pub struct Caller {
    target: Target,
    timeout: Duration,
    conn: Option<Connection>,
}

impl Caller {
    #[must_use]
    pub const fn new(target: Target, timeout: Duration, first: Option<Connection>) -> Self {
        Self {
            target,
            timeout,
            conn: first,
        }
    }

    /// One request of `step`, recorded there: its answer, or why none came.
    /// `body` is sent as JSON.
    pub async fn call(
        &mut self,
        step: &mut Step,
        method: Method,
        uri: Uri,
        authorization: Option<&HeaderValue>,
        body: Option<Bytes>,
    ) -> Result<Answer, Failure> {
        step.sent += 1;
        let mut open = match self.conn.take() {
            Some(open) => open,
            None => match Connection::open(&self.target).await {
                Ok(open) => open,
                Err(_) => {
                    step.failed(Failure::Connect);
                    return Err(Failure::Connect);
                }
            },
        };
        let json = body.is_some();
        let mut request = open.request(method, uri, Full::new(body.unwrap_or_default()));
        let headers = request.headers_mut();
        if json {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(authorization) = authorization {
            headers.insert(header::AUTHORIZATION, authorization.clone());
        }
        let started = Instant::now();
        let failure = match tokio::time::timeout(self.timeout, open.send(request)).await {
            Ok(Ok(answer)) => {
                step.answered(started, &answer);
                self.conn = Some(open);
                return Ok(answer);
            }
            Ok(Err(ConnError::Closed | ConnError::Connect { .. })) => Failure::Connect,
            Ok(Err(ConnError::Http(_))) => Failure::Transport,
            Err(_) => Failure::Timeout,
        };
        step.failed(failure);
        Err(failure)
    }
}

/// A bearer `Authorization` header for `token`.
#[must_use]
pub fn bearer(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}")).ok()
}

/// The problem `code` of an error answer, if it has one.
#[must_use]
pub fn problem_code(answer: &Answer) -> Option<String> {
    serde_json::from_slice::<ProblemBody<'_>>(&answer.body)
        .ok()
        .and_then(|p| p.code)
        .map(Cow::into_owned)
}

/// Opens `n` connections before a timed window starts.
pub async fn open_all(target: &Target, n: usize) -> Result<Vec<Connection>, ConnError> {
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        connections.push(Connection::open(target).await?);
    }
    Ok(connections)
}

/// A timed window's shared bounds: at most `limit` units of work (requests,
/// purchases, polls), none started after `deadline`.
#[derive(Debug)]
pub struct Window {
    next: AtomicU64,
    limit: u64,
    deadline: Instant,
    /// Set when the scenario's work is done before the bounds are reached.
    closed: AtomicBool,
}

impl Window {
    #[must_use]
    pub const fn new(limit: u64, deadline: Instant) -> Self {
        Self {
            next: AtomicU64::new(0),
            limit,
            deadline,
            closed: AtomicBool::new(false),
        }
    }

    /// The next unit's number, or `None` once the count or time is up.
    pub fn claim(&self) -> Option<u64> {
        if self.closed.load(Ordering::Relaxed) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.limit && Instant::now() < self.deadline).then_some(i)
    }

    /// Whether time is up (claims aside).
    #[must_use]
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// No more claims.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &'static str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).expect("a status"),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn a_step_counts_statuses_and_problem_codes_and_merges() {
        let mut one = Step::new("hold").expect("a step");
        let started = Instant::now();
        one.answered(started, &answer(201, "{}"));
        one.answered(started, &answer(409, r#"{"code":"SOLD_OUT"}"#));
        one.answered(started, &answer(500, "not a problem body"));
        one.failed(Failure::Timeout);
        let mut two = Step::new("hold").expect("a step");
        two.answered(started, &answer(409, r#"{"code":"SOLD_OUT"}"#));
        two.failed(Failure::Connect);

        one.merge(&two).expect("merged");

        assert_eq!(
            one.statuses(),
            BTreeMap::from([(201, 1), (409, 2), (500, 1)])
        );
        assert_eq!(one.codes(), BTreeMap::from([("SOLD_OUT".to_owned(), 2)]));
        assert_eq!(one.answered_count(), 4);
        assert_eq!(one.latency.len(), 4);
        assert_eq!(one.errors.total(), 2);
        assert_eq!(one.errors.unanswered(), 1);
    }
}
