//! The invariants of a park rush, judged from the tool's records and the
//! line as the API lists it after each window. Nobody leaves and no call
//! expires during a run (the grace is minutes), so a call always takes the
//! first waiting parties: the parties called are exactly the head of the
//! line as it stood after the joins.

use std::collections::HashSet;

use http::StatusCode;
use uuid::Uuid;

use super::{Outcome, ReadBack};
use crate::api::{LineEntry, WaitBoard};
use crate::checks::Check;

/// What the API says about the line around the windows.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The board before anyone joined.
    pub before: WaitBoard,
    /// After the join window.
    pub joined: ReadBack,
    /// After the poll window.
    pub end: ReadBack,
    /// Every joined guest's `line/me` at the end, in the order of
    /// [`Outcome::joined`].
    pub finals: Vec<LineEntry>,
}

#[must_use]
pub fn checks(outcome: &Outcome, ledger: &Ledger) -> Vec<Check> {
    vec![
        joins_recorded(outcome, ledger),
        positions_contiguous(ledger),
        called_in_line_order(outcome, ledger),
        admitted_once(outcome, ledger),
        positions_never_go_back(outcome),
        counts_match(outcome, ledger),
        answers_expected(outcome),
    ]
}

/// Every join answered 201 is in the line, waiting, with its party size,
/// and nothing else is (beyond joins that got no answer).
fn joins_recorded(outcome: &Outcome, ledger: &Ledger) -> Check {
    let listing = &ledger.joined.listing;
    let missing = outcome
        .joined
        .iter()
        .filter(|j| {
            !listing
                .iter()
                .any(|e| e.id == j.entry && e.party_size == j.party_size && e.status == "WAITING")
        })
        .count();
    let unanswered = outcome.join.errors.unanswered();
    let extra = listing.len().saturating_sub(outcome.joined.len()) as u64;
    Check::new(
        "joins_recorded",
        missing == 0 && extra <= unanswered,
        format!(
            "{} joins answered 201, {} entries listed; {missing} answered ones missing, \
             {extra} listed beyond them ({unanswered} joins without an answer)",
            outcome.joined.len(),
            listing.len()
        ),
    )
}

/// 1, 2, …, n down the listing's waiting entries.
fn contiguous(listing: &[LineEntry]) -> bool {
    listing
        .iter()
        .filter(|e| e.status == "WAITING")
        .zip(1..)
        .all(|(e, n)| e.position == Some(n))
}

fn positions_contiguous(ledger: &Ledger) -> Check {
    let after_joins = contiguous(&ledger.joined.listing);
    let at_end = contiguous(&ledger.end.listing);
    let waiting = |l: &[LineEntry]| l.iter().filter(|e| e.status == "WAITING").count();
    Check::new(
        "positions_contiguous",
        after_joins && at_end,
        format!(
            "after the joins {} waiting at 1..={} {}; at the end {} waiting {}",
            waiting(&ledger.joined.listing),
            waiting(&ledger.joined.listing),
            verdict(after_joins),
            waiting(&ledger.end.listing),
            verdict(at_end),
        ),
    )
}

const fn verdict(ok: bool) -> &'static str {
    if ok { "in order" } else { "OUT OF ORDER" }
}

/// No entry called twice, and the parties called are the head of the line.
fn called_in_line_order(outcome: &Outcome, ledger: &Ledger) -> Check {
    let called: HashSet<Uuid> = outcome.called.iter().map(|c| c.entry).collect();
    let twice = outcome.called.len() - called.len();
    let head: HashSet<Uuid> = ledger
        .joined
        .listing
        .iter()
        .take(called.len())
        .map(|e| e.id)
        .collect();
    let out_of_turn = called.difference(&head).count();
    Check::new(
        "called_in_line_order",
        twice == 0 && out_of_turn == 0,
        format!(
            "{} parties called, {twice} of them twice; {out_of_turn} not among the first {} in line",
            outcome.called.len(),
            called.len()
        ),
    )
}

/// Every admission names a called party, none twice; at the end every
/// admitted guest's entry is `ADMITTED`, every called one not admitted
/// `CALLED`, everyone else `WAITING`.
fn admitted_once(outcome: &Outcome, ledger: &Ledger) -> Check {
    let called: HashSet<Uuid> = outcome.called.iter().map(|c| c.entry).collect();
    let admitted: HashSet<Uuid> = outcome.admitted.iter().map(|c| c.entry).collect();
    let twice = outcome.admitted.len() - admitted.len();
    let uncalled = admitted.difference(&called).count();
    let mut wrong = 0;
    for (joined, last) in outcome.joined.iter().zip(&ledger.finals) {
        let expected = if admitted.contains(&joined.entry) {
            "ADMITTED"
        } else if called.contains(&joined.entry) {
            "CALLED"
        } else {
            "WAITING"
        };
        wrong += usize::from(last.id != joined.entry || last.status != expected);
    }
    let unread = outcome.joined.len().saturating_sub(ledger.finals.len());
    Check::new(
        "admitted_once",
        twice == 0 && uncalled == 0 && wrong == 0 && unread == 0,
        format!(
            "{} admitted ({twice} twice, {uncalled} never called); {} guests read back, \
             {wrong} not in the state the run left them in",
            outcome.admitted.len(),
            ledger.finals.len()
        ),
    )
}

fn positions_never_go_back(outcome: &Outcome) -> Check {
    Check::new(
        "positions_never_go_back",
        outcome.went_back == 0,
        format!(
            "{} polls compared with the same guest's previous one; {} further back",
            outcome.polls_compared, outcome.went_back
        ),
    )
}

/// The board agrees with the listing and with what the staff did.
fn counts_match(outcome: &Outcome, ledger: &Ledger) -> Check {
    let waiting = |l: &[LineEntry]| l.iter().filter(|e| e.status == "WAITING").count() as u64;
    let joined_len = waiting(&ledger.joined.listing);
    let end_len = waiting(&ledger.end.listing);
    let called = outcome.called.len() as u64;
    let guests_admitted: u64 = outcome
        .admitted
        .iter()
        .map(|c| u64::from(c.party_size))
        .sum();
    let board_admitted = ledger
        .end
        .board
        .admitted_last_hour
        .saturating_sub(ledger.before.admitted_last_hour);
    let passed = ledger.joined.board.line_length == joined_len
        && ledger.end.board.line_length == end_len
        && end_len + called == joined_len
        && board_admitted == guests_admitted;
    Check::new(
        "counts_match",
        passed,
        format!(
            "board {} waiting after the joins (listed {joined_len}), {} at the end (listed \
             {end_len}, {called} called); {board_admitted} guests admitted by the board, \
             {guests_admitted} by the staff's answers",
            ledger.joined.board.line_length, ledger.end.board.line_length
        ),
    )
}

fn answers_expected(outcome: &Outcome) -> Check {
    let steps = [
        (&outcome.join, StatusCode::CREATED),
        (&outcome.line_me, StatusCode::OK),
        (&outcome.board, StatusCode::OK),
        (&outcome.call, StatusCode::OK),
        (&outcome.admit, StatusCode::OK),
    ];
    let mut off = Vec::new();
    for (step, expected) in steps {
        let good = step.count(expected);
        if good != step.sent {
            off.push(format!(
                "{} {good} of {} answered {}",
                step.name,
                step.sent,
                expected.as_u16()
            ));
        }
    }
    let passed = off.is_empty() && outcome.foreign == 0;
    let detail = if passed {
        "every join 201, every poll, call and admission 200".to_owned()
    } else {
        format!(
            "{}; {} answers not about the caller's entry",
            off.join("; "),
            outcome.foreign
        )
    };
    Check::new("answers_expected", passed, detail)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::checks::failing;
    use crate::conn::Answer;
    use crate::line::{Called, Joined};
    use crate::steps::Step;

    fn step(name: &'static str, status: u16, n: u64) -> Step {
        let mut step = Step::new(name).expect("a step");
        for _ in 0..n {
            step.sent += 1;
            step.answered(
                std::time::Instant::now(),
                &Answer {
                    status: StatusCode::from_u16(status).expect("a status"),
                    body: hyper::body::Bytes::new(),
                },
            );
        }
        step
    }

    fn entry(joined: &Joined, status: &str, position: Option<u64>) -> LineEntry {
        LineEntry {
            id: joined.entry,
            user_id: Uuid::from_u128(joined.guest as u128),
            party_size: joined.party_size,
            status: status.into(),
            position,
        }
    }

    /// Four guests joined; the staff called and admitted the first two.
    fn rush() -> (Outcome, Ledger) {
        let joined: Vec<Joined> = (0..4)
            .map(|guest| Joined {
                guest,
                entry: Uuid::now_v7(),
                party_size: crate::line::party_size(guest),
            })
            .collect();
        let called: Vec<Called> = joined[..2]
            .iter()
            .map(|j| Called {
                entry: j.entry,
                party_size: j.party_size,
            })
            .collect();
        let outcome = Outcome {
            join_elapsed: Duration::from_secs(1),
            poll_elapsed: Duration::from_secs(1),
            join: step("join", 201, 4),
            line_me: step("line_me", 200, 10),
            board: step("wait_board", 200, 10),
            call: step("call", 200, 2),
            admit: step("admit", 200, 2),
            joined: joined.clone(),
            called: called.clone(),
            admitted: called,
            went_back: 0,
            polls_compared: 8,
            foreign: 0,
        };
        let board = |line_length, admitted_last_hour| WaitBoard {
            line_length,
            admitted_last_hour,
        };
        let ledger = Ledger {
            before: board(0, 0),
            joined: ReadBack {
                listing: joined
                    .iter()
                    .zip(1..)
                    .map(|(j, p)| entry(j, "WAITING", Some(p)))
                    .collect(),
                board: board(4, 0),
            },
            end: ReadBack {
                listing: vec![
                    entry(&joined[2], "WAITING", Some(1)),
                    entry(&joined[3], "WAITING", Some(2)),
                ],
                board: board(2, 3),
            },
            finals: vec![
                entry(&joined[0], "ADMITTED", None),
                entry(&joined[1], "ADMITTED", None),
                entry(&joined[2], "WAITING", Some(1)),
                entry(&joined[3], "WAITING", Some(2)),
            ],
        };
        (outcome, ledger)
    }

    fn failed(outcome: &Outcome, ledger: &Ledger) -> Vec<&'static str> {
        failing(checks(outcome, ledger))
    }

    #[test]
    fn a_clean_rush_passes_every_check() {
        let (outcome, ledger) = rush();
        assert_eq!(failed(&outcome, &ledger), Vec::<&str>::new());
    }

    #[test]
    fn a_lost_join_fails() {
        let (outcome, mut ledger) = rush();
        ledger.joined.listing.remove(3);
        ledger.joined.board.line_length = 3;
        let failures = failed(&outcome, &ledger);
        assert!(failures.contains(&"joins_recorded"), "{failures:?}");
    }

    #[test]
    fn a_repeated_or_skipped_position_fails() {
        let (outcome, mut ledger) = rush();
        ledger.joined.listing[2].position = Some(2);
        assert_eq!(failed(&outcome, &ledger), vec!["positions_contiguous"]);
    }

    #[test]
    fn an_entry_called_twice_or_out_of_turn_fails() {
        let (mut outcome, ledger) = rush();
        outcome.called[1] = outcome.called[0];
        assert!(failed(&outcome, &ledger).contains(&"called_in_line_order"));
        let (mut outcome, ledger) = rush();
        outcome.called[1].entry = outcome.joined[3].entry;
        assert!(failed(&outcome, &ledger).contains(&"called_in_line_order"));
    }

    #[test]
    fn an_admission_twice_or_not_recorded_fails() {
        let (mut outcome, ledger) = rush();
        outcome.admitted.push(outcome.admitted[0]);
        assert!(failed(&outcome, &ledger).contains(&"admitted_once"));
        let (outcome, mut ledger) = rush();
        ledger.finals[1].status = "CALLED".into();
        assert_eq!(failed(&outcome, &ledger), vec!["admitted_once"]);
    }

    #[test]
    fn a_guest_sent_back_in_line_fails() {
        let (mut outcome, ledger) = rush();
        outcome.went_back = 1;
        assert_eq!(failed(&outcome, &ledger), vec!["positions_never_go_back"]);
    }

    #[test]
    fn a_board_that_disagrees_fails() {
        let (outcome, mut ledger) = rush();
        ledger.end.board.admitted_last_hour = 2;
        assert_eq!(failed(&outcome, &ledger), vec!["counts_match"]);
        let (outcome, mut ledger) = rush();
        ledger.joined.board.line_length = 5;
        assert_eq!(failed(&outcome, &ledger), vec!["counts_match"]);
    }

    #[test]
    fn an_unexpected_answer_fails() {
        let (mut outcome, ledger) = rush();
        outcome.admit = step("admit", 409, 2);
        assert!(failed(&outcome, &ledger).contains(&"answers_expected"));
    }
}
