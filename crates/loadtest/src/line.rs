//! `line`: the park rush. U guests join one ride's line (the join window),
//! then, in the poll window, staff call the line in batches and admit
//! every party called, while the other connections poll: each its own
//! share of the guests' `line/me`, and the public wait board in between.
//! The poll window ends when the line is empty (or at the bounds). The
//! line is read back after each window and the invariants judged
//! ([`checks`]).

pub mod checks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, StatusCode, Uri};
use hyper::body::Bytes;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{Api, TestUser};
use crate::cli::Options;
use crate::report::{Measured, Report, Setup, Subject};
use crate::rush::RushError;
use crate::scenario::{RunError, announce_rush, progress, run_name, settle, sign_in};
use crate::steps::{Caller, HistogramError, Step, Window, bearer, open_all};
use crate::target::Target;

/// Connections that call and admit; the rest poll.
const STAFF: usize = 2;

/// The party size guest `i` joins with: 1 to 4, so the line's guest
/// count differs from its party count.
#[must_use]
pub const fn party_size(guest: usize) -> u32 {
    (guest % 4) as u32 + 1
}

/// A guest of the run, with its header ready.
struct Guest {
    user_id: Uuid,
    authorization: HeaderValue,
}

/// A join answered 201.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// Index of the guest in the run.
    pub guest: usize,
    pub entry: Uuid,
    pub party_size: u32,
}

/// A party a call answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Called {
    pub entry: Uuid,
    pub party_size: u32,
}

/// Everything the two windows measured.
#[derive(Debug)]
pub struct Outcome {
    pub join_elapsed: Duration,
    pub poll_elapsed: Duration,
    pub join: Step,
    pub line_me: Step,
    pub board: Step,
    pub call: Step,
    pub admit: Step,
    pub joined: Vec<Joined>,
    /// Calls' answers, each staff connection's in its order.
    pub called: Vec<Called>,
    /// Entries whose admission was answered 200.
    pub admitted: Vec<Called>,
    /// `line/me` answers that were seen after an answer for the same
    /// guest with a lower position or a later status.
    pub went_back: u64,
    /// `line/me` answers compared that way.
    pub polls_compared: u64,
    /// 2xx bodies that were not what was asked for.
    pub foreign: u64,
}

/// What the API says about the line, read after each window.
#[derive(Debug, Clone)]
pub struct ReadBack {
    pub listing: Vec<crate::api::LineEntry>,
    pub board: crate::api::WaitBoard,
}

pub async fn run(options: &Options, target: Target) -> Result<Report, RunError> {
    if options.connections <= STAFF {
        return Err(RunError::Options(format!(
            "line needs more than {STAFF} connections: {STAFF} call and admit, the rest poll"
        )));
    }
    let mut api = Api::new(target.clone());
    let admin = sign_in(options, &mut api).await?;
    progress(format!("creating {} guests", options.users));
    let users = api.create_test_users(&admin, options.users).await?;
    let attraction = api.create_attraction(&admin, &run_name(options)).await?.id;
    settle(&mut api, Duration::from_secs(options.settle)).await?;
    let before = api.wait_board(attraction).await?;
    let guests = Arc::new(guests(&users)?);
    let staff = bearer(&admin).ok_or_else(|| RunError::Options("an unusable token".into()))?;

    announce_rush(options);
    let mut outcome = join_window(options, &target, attraction, guests.clone()).await?;
    progress("reading the line back".into());
    let joined = ReadBack {
        listing: api.line(&admin, attraction).await?,
        board: api.wait_board(attraction).await?,
    };
    progress("poll window: staff call and admit, guests poll".into());
    poll_window(options, &target, attraction, &guests, staff, &mut outcome).await?;
    progress("reading back".into());
    let end = ReadBack {
        listing: api.line(&admin, attraction).await?,
        board: api.wait_board(attraction).await?,
    };
    let mut finals = Vec::with_capacity(outcome.joined.len());
    for j in &outcome.joined {
        let entry = api
            .my_entry(&users[j.guest].access_token, attraction)
            .await?;
        finals.push(entry);
    }
    let ledger = checks::Ledger {
        before,
        joined,
        end,
        finals,
    };
    let checks = checks::checks(&outcome, &ledger);
    let setup = Setup {
        users: users.len(),
        subject: Subject::Attraction {
            attraction_id: attraction,
        },
    };
    let (join, poll) = (outcome.join_elapsed, outcome.poll_elapsed);
    let steps = [
        Measured {
            step: &outcome.join,
            window: join,
        },
        Measured {
            step: &outcome.line_me,
            window: poll,
        },
        Measured {
            step: &outcome.board,
            window: poll,
        },
        Measured {
            step: &outcome.call,
            window: poll,
        },
        Measured {
            step: &outcome.admit,
            window: poll,
        },
    ];
    Ok(Report::of_steps(options, setup, &steps, None, checks)?)
}

fn guests(users: &[TestUser]) -> Result<Vec<Guest>, RunError> {
    users
        .iter()
        .map(|u| {
            Ok(Guest {
                user_id: u.user_id,
                authorization: bearer(&u.access_token)
                    .ok_or_else(|| RunError::Options("the server sent an unusable token".into()))?,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct EntryBody {
    id: Uuid,
    user_id: Uuid,
    party_size: u32,
    status: String,
    position: Option<u64>,
}

/// Every guest joins once, over all connections.
async fn join_window(
    options: &Options,
    target: &Target,
    attraction: Uuid,
    guests: Arc<Vec<Guest>>,
) -> Result<Outcome, RunError> {
    let connections = open_all(target, options.connections)
        .await
        .map_err(RushError::from)?;
    let uri =
        Uri::try_from(format!("/api/v1/attractions/{attraction}/line")).map_err(RushError::from)?;
    let started = Instant::now();
    let window = Arc::new(Window::new(
        guests.len() as u64,
        started + Duration::from_secs(options.duration),
    ));
    let timeout = Duration::from_secs(options.timeout);
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|conn| {
            let (window, guests, uri) = (window.clone(), guests.clone(), uri.clone());
            let mut caller = Caller::new(target.clone(), timeout, Some(conn));
            tokio::spawn(async move {
                let mut step = Step::new("join")?;
                let (mut joined, mut foreign) = (Vec::new(), 0);
                while let Some(i) = window.claim() {
                    let guest = i as usize;
                    let party_size = party_size(guest);
                    let body = Bytes::from(format!(r#"{{"party_size":{party_size}}}"#));
                    let who = &guests[guest];
                    let Ok(answer) = caller
                        .call(
                            &mut step,
                            Method::POST,
                            uri.clone(),
                            Some(&who.authorization),
                            Some(body),
                        )
                        .await
                    else {
                        continue;
                    };
                    if answer.status != StatusCode::CREATED {
                        continue;
                    }
                    match serde_json::from_slice::<EntryBody>(&answer.body) {
                        Ok(e) if e.user_id == who.user_id && e.party_size == party_size => {
                            joined.push(Joined {
                                guest,
                                entry: e.id,
                                party_size,
                            });
                        }
                        _ => foreign += 1,
                    }
                }
                Ok::<_, HistogramError>((step, joined, foreign))
            })
        })
        .collect();
    let mut outcome = Outcome {
        join_elapsed: Duration::ZERO,
        poll_elapsed: Duration::ZERO,
        join: Step::new("join")?,
        line_me: Step::new("line_me")?,
        board: Step::new("wait_board")?,
        call: Step::new("call")?,
        admit: Step::new("admit")?,
        joined: Vec::new(),
        called: Vec::new(),
        admitted: Vec::new(),
        went_back: 0,
        polls_compared: 0,
        foreign: 0,
    };
    for task in tasks {
        let (step, joined, foreign) = task.await??;
        outcome.join.merge(&step)?;
        outcome.joined.extend(joined);
        outcome.foreign += foreign;
    }
    outcome.join_elapsed = started.elapsed();
    outcome.joined.sort_by_key(|j| j.guest);
    Ok(outcome)
}

/// Staff call and admit until the line is empty; the other connections
/// poll meanwhile, each its own guests in turn with the board between.
async fn poll_window(
    options: &Options,
    target: &Target,
    attraction: Uuid,
    guests: &Arc<Vec<Guest>>,
    staff: HeaderValue,
    outcome: &mut Outcome,
) -> Result<(), RunError> {
    let connections = open_all(target, options.connections)
        .await
        .map_err(RushError::from)?;
    let started = Instant::now();
    let window = Arc::new(Window::new(
        options.requests,
        started + Duration::from_secs(options.duration),
    ));
    let timeout = Duration::from_secs(options.timeout);
    let pollers = options.connections - STAFF;
    let mut connections = connections.into_iter();
    let gate = Arc::new(Gate {
        attraction,
        call_uri: Uri::try_from(format!("/api/v1/attractions/{attraction}/line/call"))
            .map_err(RushError::from)?,
        call_body: Bytes::from(format!(r#"{{"count":{}}}"#, options.call_batch)),
        admit_body: Bytes::from(format!(r#"{{"attraction_id":"{attraction}"}}"#)),
        authorization: staff,
        window: window.clone(),
    });
    let staff_tasks: Vec<_> = connections
        .by_ref()
        .take(STAFF)
        .map(|conn| {
            let gate = gate.clone();
            let caller = Caller::new(target.clone(), timeout, Some(conn));
            tokio::spawn(async move { gate.work(caller).await })
        })
        .collect();
    let me_uri = Uri::try_from(format!("/api/v1/attractions/{attraction}/line/me"))
        .map_err(RushError::from)?;
    let board_uri =
        Uri::try_from(format!("/api/v1/attractions/{attraction}/wait")).map_err(RushError::from)?;
    let poll_tasks: Vec<_> = connections
        .enumerate()
        .map(|(k, conn)| {
            let mine: Vec<Joined> = outcome
                .joined
                .iter()
                .skip(k)
                .step_by(pollers)
                .copied()
                .collect();
            let poller = Poller {
                caller: Caller::new(target.clone(), timeout, Some(conn)),
                guests: guests.clone(),
                mine,
                me_uri: me_uri.clone(),
                board_uri: board_uri.clone(),
                window: window.clone(),
            };
            tokio::spawn(poller.run())
        })
        .collect();
    for task in staff_tasks {
        let work = task.await??;
        outcome.call.merge(&work.call)?;
        outcome.admit.merge(&work.admit)?;
        outcome.called.extend(work.called);
        outcome.admitted.extend(work.admitted);
        outcome.foreign += work.foreign;
    }
    // The line is empty (or time is up): the polls stop too.
    window.close();
    for task in poll_tasks {
        let polls = task.await??;
        outcome.line_me.merge(&polls.line_me)?;
        outcome.board.merge(&polls.board)?;
        outcome.went_back += polls.went_back;
        outcome.polls_compared += polls.compared;
        outcome.foreign += polls.foreign;
    }
    outcome.poll_elapsed = started.elapsed();
    Ok(())
}

/// The staff side of the poll window.
struct Gate {
    attraction: Uuid,
    call_uri: Uri,
    call_body: Bytes,
    admit_body: Bytes,
    authorization: HeaderValue,
    window: Arc<Window>,
}

struct GateWork {
    call: Step,
    admit: Step,
    called: Vec<Called>,
    admitted: Vec<Called>,
    foreign: u64,
}

#[derive(Deserialize)]
struct CalledBody {
    id: Uuid,
    attraction_id: Uuid,
    party_size: u32,
    status: String,
}

impl Gate {
    /// Calls a batch, admits each party called, again, until a call finds
    /// nobody (or time is up, or a call fails).
    async fn work(&self, mut caller: Caller) -> Result<GateWork, HistogramError> {
        let mut work = GateWork {
            call: Step::new("call")?,
            admit: Step::new("admit")?,
            called: Vec::new(),
            admitted: Vec::new(),
            foreign: 0,
        };
        while !self.window.expired() {
            let answer = caller
                .call(
                    &mut work.call,
                    Method::POST,
                    self.call_uri.clone(),
                    Some(&self.authorization),
                    Some(self.call_body.clone()),
                )
                .await;
            let batch = match answer {
                Ok(answer) if answer.status == StatusCode::OK => {
                    serde_json::from_slice::<Vec<CalledBody>>(&answer.body)
                }
                _ => break,
            };
            let Ok(batch) = batch else {
                work.foreign += 1;
                break;
            };
            if batch.is_empty() {
                break;
            }
            for entry in batch {
                if entry.attraction_id != self.attraction || entry.status != "CALLED" {
                    work.foreign += 1;
                }
                let called = Called {
                    entry: entry.id,
                    party_size: entry.party_size,
                };
                work.called.push(called);
                let Ok(uri) = Uri::try_from(format!("/api/v1/line-entries/{}/admit", entry.id))
                else {
                    continue;
                };
                let answer = caller
                    .call(
                        &mut work.admit,
                        Method::POST,
                        uri,
                        Some(&self.authorization),
                        Some(self.admit_body.clone()),
                    )
                    .await;
                if let Ok(answer) = answer
                    && answer.status == StatusCode::OK
                {
                    match serde_json::from_slice::<CalledBody>(&answer.body) {
                        Ok(e) if e.id == entry.id && e.status == "ADMITTED" => {
                            work.admitted.push(called);
                        }
                        _ => work.foreign += 1,
                    }
                }
            }
        }
        Ok(work)
    }
}

/// One polling connection: its guests' `line/me` in turn, the board
/// after each.
struct Poller {
    caller: Caller,
    guests: Arc<Vec<Guest>>,
    mine: Vec<Joined>,
    me_uri: Uri,
    board_uri: Uri,
    window: Arc<Window>,
}

struct Polls {
    line_me: Step,
    board: Step,
    went_back: u64,
    compared: u64,
    foreign: u64,
}

/// Where a guest was last seen: status order (WAITING, CALLED, ADMITTED)
/// and position while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    status: u8,
    /// Parties ahead counted down: a lower `ahead` is further along.
    ahead: std::cmp::Reverse<u64>,
}

fn status_order(status: &str) -> u8 {
    match status {
        "WAITING" => 0,
        "CALLED" => 1,
        "ADMITTED" => 2,
        _ => 3,
    }
}

impl Poller {
    async fn run(mut self) -> Result<Polls, HistogramError> {
        let mut polls = Polls {
            line_me: Step::new("line_me")?,
            board: Step::new("wait_board")?,
            went_back: 0,
            compared: 0,
            foreign: 0,
        };
        let mut seen: Vec<Option<Seen>> = vec![None; self.mine.len()];
        let mut next = 0;
        let mut board_turn = self.mine.is_empty();
        while self.window.claim().is_some() {
            if board_turn {
                let _ = self
                    .caller
                    .call(
                        &mut polls.board,
                        Method::GET,
                        self.board_uri.clone(),
                        None,
                        None,
                    )
                    .await;
            } else {
                let joined = self.mine[next];
                let guest = &self.guests[joined.guest];
                let answer = self
                    .caller
                    .call(
                        &mut polls.line_me,
                        Method::GET,
                        self.me_uri.clone(),
                        Some(&guest.authorization),
                        None,
                    )
                    .await;
                if let Ok(answer) = answer
                    && answer.status == StatusCode::OK
                {
                    match serde_json::from_slice::<EntryBody>(&answer.body) {
                        Ok(e) if e.id == joined.entry => {
                            let now = Seen {
                                status: status_order(&e.status),
                                ahead: std::cmp::Reverse(e.position.unwrap_or(0)),
                            };
                            if let Some(before) = seen[next] {
                                polls.compared += 1;
                                polls.went_back += u64::from(now < before);
                            }
                            seen[next] = Some(now);
                        }
                        _ => polls.foreign += 1,
                    }
                }
                next = (next + 1) % self.mine.len();
            }
            board_turn = self.mine.is_empty() || !board_turn;
        }
        Ok(polls)
    }
}
