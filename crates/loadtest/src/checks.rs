//! The invariants a rush must leave intact, judged from the tool's own
//! records and what the API says afterwards. A request that was sent but
//! never answered may or may not have issued a coupon; where such requests
//! exist, a check accepts the range they allow instead of one number.

use std::collections::{HashMap, HashSet};

use http::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use crate::rush::{LIMIT_REACHED, Outcome, SOLD_OUT};

/// One invariant's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    pub(crate) const fn new(name: &'static str, passed: bool, detail: String) -> Self {
        Self {
            name,
            passed,
            detail,
        }
    }
}

/// The names of the checks that failed, for tests to assert on.
#[cfg(test)]
pub(crate) fn failing(checks: Vec<Check>) -> Vec<&'static str> {
    checks
        .into_iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect()
}

/// What the server says about the campaign around the rush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub per_user_limit: u64,
    /// `remaining` just before the timed window.
    pub remaining_before: u64,
    /// `remaining` after it.
    pub remaining_after: u64,
    /// Users (by index in the plan) whose `GET /coupons/mine` was read,
    /// with the ids of their coupons of this campaign.
    pub read_back: Vec<(usize, Vec<Uuid>)>,
}

/// A healthz rush passes when every request got a 200.
#[must_use]
pub fn healthz_checks(outcome: &Outcome) -> Vec<Check> {
    let ok = outcome.count(StatusCode::OK);
    let passed = outcome.errors.total() == 0 && ok == outcome.sent && ok == outcome.answered();
    vec![Check::new(
        "answers_expected",
        passed,
        format!(
            "{ok} of {} requests answered 200; {} without an answer",
            outcome.sent,
            outcome.errors.total()
        ),
    )]
}

/// The invariants of a coupon rush.
#[must_use]
pub fn issue_checks(outcome: &Outcome, ledger: &Ledger) -> Vec<Check> {
    let facts = Facts::of(outcome);
    vec![
        within_stock(&facts, ledger),
        within_per_user_limit(outcome, ledger),
        remaining_consistent(&facts, ledger),
        acknowledged_durable(outcome, ledger),
        coupons_unique(outcome, &facts),
        refusals_justified(outcome, &facts, ledger),
        answers_expected(outcome, &facts),
    ]
}

/// Totals several checks share.
struct Facts {
    issued: u64,
    /// Sent without an answer: each may have issued a coupon.
    unanswered: u64,
}

impl Facts {
    fn of(outcome: &Outcome) -> Self {
        Self {
            issued: outcome.count(StatusCode::CREATED),
            unanswered: outcome.users.iter().map(|u| u.unanswered).sum(),
        }
    }
}

fn within_stock(facts: &Facts, ledger: &Ledger) -> Check {
    Check::new(
        "within_stock",
        facts.issued <= ledger.remaining_before,
        format!(
            "{} issued of {} available",
            facts.issued, ledger.remaining_before
        ),
    )
}

fn within_per_user_limit(outcome: &Outcome, ledger: &Ledger) -> Check {
    let most_seen = outcome.users.iter().map(|u| u.issued).max().unwrap_or(0);
    let most_listed = ledger
        .read_back
        .iter()
        .map(|(_, ids)| ids.len() as u64)
        .max()
        .unwrap_or(0);
    Check::new(
        "within_per_user_limit",
        most_seen <= ledger.per_user_limit && most_listed <= ledger.per_user_limit,
        format!(
            "most to one user: {most_seen} answered 201, {most_listed} listed by the API \
             ({} users read back); limit {}",
            ledger.read_back.len(),
            ledger.per_user_limit
        ),
    )
}

fn remaining_consistent(facts: &Facts, ledger: &Ledger) -> Check {
    // Signed: an oversold campaign would need a negative remaining.
    let most = i128::from(ledger.remaining_before) - i128::from(facts.issued);
    let least = most - i128::from(facts.unanswered);
    let passed = (least..=most).contains(&i128::from(ledger.remaining_after));
    let expected = if least == most {
        format!("{most}")
    } else {
        format!("{least}..={most}")
    };
    Check::new(
        "remaining_consistent",
        passed,
        format!(
            "remaining {} → {}, expected {expected}",
            ledger.remaining_before, ledger.remaining_after
        ),
    )
}

fn acknowledged_durable(outcome: &Outcome, ledger: &Ledger) -> Check {
    let mut acknowledged: HashMap<usize, HashSet<Uuid>> = HashMap::new();
    for coupon in &outcome.coupons {
        acknowledged
            .entry(coupon.user)
            .or_default()
            .insert(coupon.id);
    }
    let mut listed_total = 0;
    let mut acknowledged_total = 0;
    let mut failures = Vec::new();
    for (user, ids) in &ledger.read_back {
        let listed: HashSet<Uuid> = ids.iter().copied().collect();
        let mine = acknowledged.get(user).cloned().unwrap_or_default();
        let unanswered = outcome.users.get(*user).map_or(0, |u| u.unanswered);
        listed_total += listed.len();
        acknowledged_total += mine.len();
        let missing = mine.difference(&listed).count();
        let extra = listed.len().saturating_sub(mine.len()) as u64;
        if missing > 0 || extra > unanswered {
            failures.push(format!(
                "user #{user}: {missing} acknowledged coupons missing, {} listed",
                listed.len()
            ));
        }
    }
    let detail = if failures.is_empty() {
        format!(
            "{} users read back: {listed_total} coupons listed, all {acknowledged_total} \
             acknowledged ones among them",
            ledger.read_back.len()
        )
    } else {
        failures.truncate(5);
        failures.join("; ")
    };
    Check::new("acknowledged_durable", failures.is_empty(), detail)
}

fn coupons_unique(outcome: &Outcome, facts: &Facts) -> Check {
    let ids: HashSet<Uuid> = outcome.coupons.iter().map(|c| c.id).collect();
    let codes: HashSet<&str> = outcome.coupons.iter().map(|c| c.code.as_str()).collect();
    let coupons = outcome.coupons.len();
    let passed = ids.len() == coupons
        && codes.len() == coupons
        && outcome.foreign_coupons == 0
        && coupons as u64 == facts.issued;
    Check::new(
        "coupons_unique",
        passed,
        format!(
            "{coupons} coupons: {} distinct ids, {} distinct codes; {} answers not a coupon \
             of this campaign for the caller",
            ids.len(),
            codes.len(),
            outcome.foreign_coupons
        ),
    )
}

fn refusals_justified(outcome: &Outcome, facts: &Facts, ledger: &Ledger) -> Check {
    let limit = ledger.per_user_limit;
    let sold_out = outcome.code(SOLD_OUT);
    let stock_gone = facts.issued + facts.unanswered >= ledger.remaining_before;
    let early_limit = outcome
        .users
        .iter()
        .filter(|u| u.limit_refused && u.issued + u.unanswered < limit)
        .count();
    // Each user is owed min(answers, limit) coupons and the stock caps the total;
    // any refusal beyond that was wrong.
    let owed = outcome
        .users
        .iter()
        .map(|u| u.answered.min(limit))
        .sum::<u64>()
        .min(ledger.remaining_before);
    let passed = (sold_out == 0 || stock_gone)
        && early_limit == 0
        && facts.issued <= owed
        && facts.issued + facts.unanswered >= owed;
    Check::new(
        "refusals_justified",
        passed,
        format!(
            "{} issued, {owed} owed (min of stock and each user's answers up to the limit); \
             {sold_out} SOLD_OUT{}; {early_limit} users refused LIMIT_REACHED below the limit",
            facts.issued,
            if sold_out > 0 && !stock_gone {
                " while units remained"
            } else {
                ""
            },
        ),
    )
}

fn answers_expected(outcome: &Outcome, facts: &Facts) -> Check {
    let refusals = outcome.code(SOLD_OUT) + outcome.code(LIMIT_REACHED);
    let conflicts = outcome.count(StatusCode::CONFLICT);
    let expected = facts.issued + refusals;
    let passed = outcome.errors.total() == 0
        && conflicts == refusals
        && expected == outcome.answered()
        && expected == outcome.sent;
    Check::new(
        "answers_expected",
        passed,
        format!(
            "{expected} of {} requests answered 201 or 409 {SOLD_OUT}/{LIMIT_REACHED}; \
             {} other answers, {} without an answer",
            outcome.sent,
            outcome.answered() - expected.min(outcome.answered()),
            outcome.errors.total()
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::*;
    use crate::rush::{Errors, IssuedCoupon, UserTally};

    /// A drop: 4 users, limit 1, stock 2; each user asked twice.
    fn drop_outcome() -> (Outcome, Ledger) {
        let coupons: Vec<IssuedCoupon> = (0..2)
            .map(|user| IssuedCoupon {
                user,
                id: Uuid::now_v7(),
                code: format!("CODE-{user}"),
            })
            .collect();
        let tally = |issued, limit_refused| UserTally {
            issued,
            answered: 2,
            unanswered: 0,
            limit_refused,
        };
        let outcome = Outcome {
            elapsed: Duration::from_secs(1),
            sent: 8,
            latency: Histogram::new(3).expect("a histogram"),
            statuses: BTreeMap::from([(201, 2), (409, 6)]),
            codes: BTreeMap::from([(LIMIT_REACHED.into(), 2), (SOLD_OUT.into(), 4)]),
            errors: Errors::default(),
            users: vec![
                tally(1, true),
                tally(1, true),
                tally(0, false),
                tally(0, false),
            ],
            coupons: coupons.clone(),
            foreign_coupons: 0,
        };
        let ledger = Ledger {
            per_user_limit: 1,
            remaining_before: 2,
            remaining_after: 0,
            read_back: vec![(0, vec![coupons[0].id]), (2, vec![])],
        };
        (outcome, ledger)
    }

    fn failed(outcome: &Outcome, ledger: &Ledger) -> Vec<&'static str> {
        failing(issue_checks(outcome, ledger))
    }

    #[test]
    fn a_clean_drop_passes_every_check() {
        let (outcome, ledger) = drop_outcome();
        assert_eq!(failed(&outcome, &ledger), Vec::<&str>::new());
    }

    #[test]
    fn an_oversold_campaign_fails() {
        let (outcome, mut ledger) = drop_outcome();
        ledger.remaining_before = 1;
        let failures = failed(&outcome, &ledger);
        assert!(failures.contains(&"within_stock"), "{failures:?}");
        assert!(failures.contains(&"remaining_consistent"), "{failures:?}");
    }

    #[test]
    fn a_user_over_the_limit_fails_whether_seen_or_listed() {
        let (mut outcome, ledger) = drop_outcome();
        outcome.users[0].issued = 2;
        assert!(failed(&outcome, &ledger).contains(&"within_per_user_limit"));
        let (outcome, mut ledger) = drop_outcome();
        ledger.read_back[1].1 = vec![Uuid::now_v7(), Uuid::now_v7()];
        let failures = failed(&outcome, &ledger);
        assert!(failures.contains(&"within_per_user_limit"), "{failures:?}");
        assert!(failures.contains(&"acknowledged_durable"), "{failures:?}");
    }

    #[test]
    fn remaining_that_does_not_match_the_201s_fails() {
        let (outcome, mut ledger) = drop_outcome();
        ledger.remaining_after = 1;
        assert_eq!(failed(&outcome, &ledger), vec!["remaining_consistent"]);
    }

    #[test]
    fn an_unanswered_request_widens_what_remaining_may_be() {
        let (mut outcome, mut ledger) = drop_outcome();
        ledger.remaining_before = 3;
        ledger.remaining_after = 0;
        outcome.users[3].unanswered = 1;
        outcome.users[3].answered = 1;
        outcome.sent = 9;
        outcome.errors.timeout = 1;
        let failures = failed(&outcome, &ledger);
        assert!(!failures.contains(&"remaining_consistent"), "{failures:?}");
        assert!(failures.contains(&"answers_expected"), "{failures:?}");
    }

    #[test]
    fn a_lost_acknowledged_coupon_fails() {
        let (outcome, mut ledger) = drop_outcome();
        ledger.read_back[0].1.clear();
        assert_eq!(failed(&outcome, &ledger), vec!["acknowledged_durable"]);
    }

    #[test]
    fn a_repeated_code_or_id_fails() {
        let (mut outcome, ledger) = drop_outcome();
        outcome.coupons[1].code = outcome.coupons[0].code.clone();
        assert_eq!(failed(&outcome, &ledger), vec!["coupons_unique"]);
        let (mut outcome, ledger) = drop_outcome();
        outcome.coupons[1].id = outcome.coupons[0].id;
        assert_eq!(failed(&outcome, &ledger), vec!["coupons_unique"]);
    }

    #[test]
    fn sold_out_while_units_remained_fails() {
        let (outcome, mut ledger) = drop_outcome();
        ledger.remaining_before = 3;
        ledger.remaining_after = 1;
        assert_eq!(failed(&outcome, &ledger), vec!["refusals_justified"]);
    }

    #[test]
    fn limit_reached_below_the_limit_fails() {
        let (mut outcome, ledger) = drop_outcome();
        outcome.users[2].limit_refused = true;
        assert_eq!(failed(&outcome, &ledger), vec!["refusals_justified"]);
    }

    #[test]
    fn an_unexpected_answer_fails() {
        let (mut outcome, ledger) = drop_outcome();
        outcome.statuses.insert(500, 1);
        outcome.sent += 1;
        let failures = failed(&outcome, &ledger);
        assert!(failures.contains(&"answers_expected"), "{failures:?}");
    }

    #[test]
    fn healthz_passes_only_when_every_request_got_200() {
        let (mut outcome, _) = drop_outcome();
        outcome.statuses = BTreeMap::from([(200, 8)]);
        assert!(healthz_checks(&outcome)[0].passed);
        outcome.errors.transport = 1;
        outcome.sent = 9;
        assert!(!healthz_checks(&outcome)[0].passed);
    }
}
