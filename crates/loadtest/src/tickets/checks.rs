//! The invariants of a ticket sale, judged from the tool's records and every
//! user's reservations, orders and tickets as the API lists them
//! afterwards. Nothing gives units back during the run (holds last the
//! product's `hold_seconds`, the fake provider approves), so the server's
//! counts at the end are exact; a request sent without an answer widens a
//! check to the range it allows.

use std::collections::{HashMap, HashSet};

use http::StatusCode;
use uuid::Uuid;

use super::Outcome;
use crate::api::Holdings;
use crate::checks::Check;
use crate::rush::{LIMIT_REACHED, SOLD_OUT};

/// What the server says about the sale.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// `remaining` when the window opened.
    pub stock: u64,
    pub per_user_limit: u64,
    /// `remaining` afterwards (null would be an unlimited product).
    pub remaining_after: Option<u64>,
    /// Per user, in run order: what they hold of the product.
    pub holdings: Vec<Holdings>,
}

/// Units per state, over every user.
struct Totals {
    /// `SOLD` reservations.
    paid: u64,
    /// `HELD` and `ORDERED` reservations.
    held: u64,
    /// Units of `PAID` orders.
    paid_orders: u64,
    /// `VALID` tickets.
    tickets: u64,
}

fn units(holdings: &Holdings, statuses: &[&str]) -> u64 {
    holdings
        .reservations
        .iter()
        .filter(|r| statuses.contains(&r.status.as_str()))
        .map(|r| r.quantity)
        .sum()
}

const HELD: [&str; 2] = ["HELD", "ORDERED"];
const TAKEN: [&str; 3] = ["HELD", "ORDERED", "SOLD"];

impl Totals {
    fn of(ledger: &Ledger) -> Self {
        let mut totals = Self {
            paid: 0,
            held: 0,
            paid_orders: 0,
            tickets: 0,
        };
        for h in &ledger.holdings {
            totals.paid += units(h, &["SOLD"]);
            totals.held += units(h, &HELD);
            totals.paid_orders += h
                .orders
                .iter()
                .filter(|o| o.status == "PAID")
                .flat_map(|o| &o.items)
                .map(|i| i.quantity)
                .sum::<u64>();
            totals.tickets += h.tickets.iter().filter(|t| t.status == "VALID").count() as u64;
        }
        totals
    }
}

#[must_use]
pub fn checks(outcome: &Outcome, ledger: &Ledger) -> Vec<Check> {
    let totals = Totals::of(ledger);
    vec![
        within_stock(&totals, ledger),
        tickets_match_paid(&totals, ledger),
        within_per_user_limit(outcome, ledger),
        paid_have_tickets(outcome, ledger),
        remaining_consistent(&totals, ledger),
        refusals_justified(outcome, &totals, ledger),
        answers_expected(outcome),
    ]
}

fn within_stock(totals: &Totals, ledger: &Ledger) -> Check {
    Check::new(
        "within_stock",
        totals.paid + totals.held <= ledger.stock,
        format!(
            "{} paid + {} held units of {} in stock",
            totals.paid, totals.held, ledger.stock
        ),
    )
}

fn tickets_match_paid(totals: &Totals, ledger: &Ledger) -> Check {
    let mut orders_off = 0;
    for h in &ledger.holdings {
        let mut per_order: HashMap<Uuid, u64> = HashMap::new();
        for t in h.tickets.iter().filter(|t| t.status == "VALID") {
            *per_order.entry(t.order_id).or_default() += 1;
        }
        for order in h.orders.iter().filter(|o| o.status == "PAID") {
            let ordered: u64 = order.items.iter().map(|i| i.quantity).sum();
            if per_order.get(&order.id).copied().unwrap_or(0) != ordered {
                orders_off += 1;
            }
        }
    }
    Check::new(
        "tickets_match_paid",
        totals.tickets == totals.paid && totals.paid_orders == totals.paid && orders_off == 0,
        format!(
            "{} valid tickets, {} units sold, {} units in paid orders; \
             {orders_off} paid orders without one ticket per unit",
            totals.tickets, totals.paid, totals.paid_orders
        ),
    )
}

fn within_per_user_limit(outcome: &Outcome, ledger: &Ledger) -> Check {
    let most_listed = ledger
        .holdings
        .iter()
        .map(|h| units(h, &TAKEN))
        .max()
        .unwrap_or(0);
    let mut held_seen: HashMap<usize, u64> = HashMap::new();
    for p in outcome.purchases.iter().filter(|p| p.reservation.is_some()) {
        *held_seen.entry(p.user).or_default() += 1;
    }
    let most_seen = held_seen.values().copied().max().unwrap_or(0);
    Check::new(
        "within_per_user_limit",
        most_listed <= ledger.per_user_limit && most_seen <= ledger.per_user_limit,
        format!(
            "most to one user: {most_seen} holds answered 201, {most_listed} units held, \
             ordered or sold as the API lists them; limit {}",
            ledger.per_user_limit
        ),
    )
}

/// Every payment the tool saw answered 200 is a `PAID` order of its user
/// with the tickets the answer carried, one per unit; and no user has more
/// paid orders than the tool was answered (and left unanswered).
fn paid_have_tickets(outcome: &Outcome, ledger: &Ledger) -> Check {
    let mut failures = Vec::new();
    let mut acknowledged = 0;
    let mut per_user: HashMap<usize, (u64, u64)> = HashMap::new();
    for p in &outcome.purchases {
        let seen = per_user.entry(p.user).or_default();
        if p.unanswered {
            seen.1 += 1;
        }
        let (Some(order), Some(tickets)) = (p.order, &p.tickets) else {
            continue;
        };
        seen.0 += 1;
        acknowledged += 1;
        let Some(h) = ledger.holdings.get(p.user) else {
            failures.push(format!("user #{} was not read back", p.user));
            continue;
        };
        let paid = h.orders.iter().any(|o| o.id == order && o.status == "PAID");
        let listed: HashSet<Uuid> = h
            .tickets
            .iter()
            .filter(|t| t.order_id == order && t.status == "VALID")
            .map(|t| t.id)
            .collect();
        if !paid || tickets.len() != 1 || !tickets.iter().all(|t| listed.contains(t)) {
            failures.push(format!(
                "order {order}: listed paid {paid}, {} tickets answered, {} listed",
                tickets.len(),
                listed.len()
            ));
        }
    }
    for (user, h) in ledger.holdings.iter().enumerate() {
        let listed = h.orders.iter().filter(|o| o.status == "PAID").count() as u64;
        let (answered, unanswered) = per_user.get(&user).copied().unwrap_or_default();
        if listed > answered + unanswered {
            failures.push(format!(
                "user #{user}: {listed} paid orders listed, {answered} payments answered 200"
            ));
        }
    }
    let detail = if failures.is_empty() {
        format!("all {acknowledged} payments answered 200 are paid orders with their tickets")
    } else {
        let n = failures.len();
        failures.truncate(5);
        format!("{n} failures: {}", failures.join("; "))
    };
    Check::new("paid_have_tickets", failures.is_empty(), detail)
}

fn remaining_consistent(totals: &Totals, ledger: &Ledger) -> Check {
    let expected = i128::from(ledger.stock) - i128::from(totals.paid) - i128::from(totals.held);
    Check::new(
        "remaining_consistent",
        ledger.remaining_after.map(i128::from) == Some(expected),
        format!(
            "remaining {} → {}, expected stock − paid − held = {expected}",
            ledger.stock,
            ledger
                .remaining_after
                .map_or_else(|| "null".to_owned(), |r| r.to_string()),
        ),
    )
}

/// Units only go out during the run: a `SOLD_OUT` means none are left at
/// the end, a `LIMIT_REACHED` that its user holds the limit at the end.
fn refusals_justified(outcome: &Outcome, totals: &Totals, ledger: &Ledger) -> Check {
    let sold_out = outcome.hold.code(SOLD_OUT);
    let gone = totals.paid + totals.held >= ledger.stock;
    let early_limit: HashSet<usize> = outcome
        .purchases
        .iter()
        .filter(|p| p.refused.as_deref() == Some(LIMIT_REACHED))
        .filter(|p| {
            ledger
                .holdings
                .get(p.user)
                .is_none_or(|h| units(h, &TAKEN) < ledger.per_user_limit)
        })
        .map(|p| p.user)
        .collect();
    Check::new(
        "refusals_justified",
        (sold_out == 0 || gone) && early_limit.is_empty(),
        format!(
            "{sold_out} {SOLD_OUT}{}; {} users refused {LIMIT_REACHED} below the limit",
            if sold_out > 0 && !gone {
                " while units remained"
            } else {
                ""
            },
            early_limit.len()
        ),
    )
}

fn answers_expected(outcome: &Outcome) -> Check {
    let (hold, order, pay) = (&outcome.hold, &outcome.order, &outcome.pay);
    let refusals = hold.code(SOLD_OUT) + hold.code(LIMIT_REACHED);
    let holds_ok = hold.count(StatusCode::CREATED) + refusals == hold.sent
        && hold.count(StatusCode::CONFLICT) == refusals;
    let orders_ok = order.count(StatusCode::CREATED) == order.sent;
    let pays_ok = pay.count(StatusCode::OK) == pay.sent;
    let foreign = outcome.purchases.iter().filter(|p| p.foreign).count();
    let errors = hold.errors.total() + order.errors.total() + pay.errors.total();
    Check::new(
        "answers_expected",
        holds_ok && orders_ok && pays_ok && foreign == 0 && errors == 0,
        format!(
            "holds {} of {} answered 201 or 409 {SOLD_OUT}/{LIMIT_REACHED}; orders {} of {} 201; \
             payments {} of {} 200; {foreign} answers not of the caller's purchase; \
             {errors} without an answer",
            hold.count(StatusCode::CREATED) + refusals,
            hold.sent,
            order.count(StatusCode::CREATED),
            order.sent,
            pay.count(StatusCode::OK),
            pay.sent,
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::{Order, OrderItem, Reservation, Ticket};
    use crate::checks::failing;
    use crate::conn::Answer;
    use crate::steps::Step;
    use crate::tickets::Purchase;

    const PRODUCT: Uuid = Uuid::from_u128(7);

    fn answer(status: u16, body: &'static str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).expect("a status"),
            body: hyper::body::Bytes::from_static(body.as_bytes()),
        }
    }

    fn step(name: &'static str, answers: &[(u16, &'static str, u64)]) -> Step {
        let mut step = Step::new(name).expect("a step");
        for (status, body, n) in answers {
            for _ in 0..*n {
                step.sent += 1;
                step.answered(std::time::Instant::now(), &answer(*status, body));
            }
        }
        step
    }

    /// A user who bought one unit, with everything the API lists for it.
    fn bought(user: usize) -> (Purchase, Holdings) {
        let (reservation, order, ticket) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let purchase = Purchase {
            user,
            reservation: Some(reservation),
            order: Some(order),
            tickets: Some(vec![ticket]),
            ..Purchase::default()
        };
        let holdings = Holdings {
            reservations: vec![Reservation {
                id: reservation,
                product_id: PRODUCT,
                quantity: 1,
                status: "SOLD".into(),
            }],
            orders: vec![Order {
                id: order,
                status: "PAID".into(),
                items: vec![OrderItem {
                    product_id: PRODUCT,
                    quantity: 1,
                }],
                tickets: Vec::new(),
            }],
            tickets: vec![Ticket {
                id: ticket,
                order_id: order,
                product_id: PRODUCT,
                status: "VALID".into(),
            }],
        };
        (purchase, holdings)
    }

    /// Stock 2, limit 1, three users: two bought, the third was refused.
    fn sale() -> (Outcome, Ledger) {
        let (first, first_holds) = bought(0);
        let (second, second_holds) = bought(1);
        let refused = Purchase {
            user: 2,
            refused: Some(SOLD_OUT.into()),
            ..Purchase::default()
        };
        let outcome = Outcome {
            elapsed: Duration::from_secs(1),
            hold: step(
                "hold",
                &[(201, "{}", 2), (409, r#"{"code":"SOLD_OUT"}"#, 1)],
            ),
            order: step("order", &[(201, "{}", 2)]),
            pay: step("pay", &[(200, "{}", 2)]),
            purchases: vec![first, second, refused],
        };
        let ledger = Ledger {
            stock: 2,
            per_user_limit: 1,
            remaining_after: Some(0),
            holdings: vec![first_holds, second_holds, Holdings::default()],
        };
        (outcome, ledger)
    }

    fn failed(outcome: &Outcome, ledger: &Ledger) -> Vec<&'static str> {
        failing(checks(outcome, ledger))
    }

    #[test]
    fn a_clean_sale_passes_every_check() {
        let (outcome, ledger) = sale();
        assert_eq!(failed(&outcome, &ledger), Vec::<&str>::new());
    }

    #[test]
    fn an_oversold_product_fails() {
        let (outcome, mut ledger) = sale();
        ledger.stock = 1;
        ledger.remaining_after = Some(0);
        let failures = failed(&outcome, &ledger);
        assert!(failures.contains(&"within_stock"), "{failures:?}");
        assert!(failures.contains(&"remaining_consistent"), "{failures:?}");
    }

    #[test]
    fn a_paid_order_without_its_ticket_fails() {
        let (outcome, mut ledger) = sale();
        ledger.holdings[1].tickets.clear();
        let failures = failed(&outcome, &ledger);
        assert!(failures.contains(&"tickets_match_paid"), "{failures:?}");
        assert!(failures.contains(&"paid_have_tickets"), "{failures:?}");
    }

    #[test]
    fn a_payment_answered_200_but_not_recorded_fails() {
        let (outcome, mut ledger) = sale();
        ledger.holdings[0].orders[0].status = "PENDING_PAYMENT".into();
        ledger.holdings[0].reservations[0].status = "ORDERED".into();
        ledger.holdings[0].tickets.clear();
        assert_eq!(failed(&outcome, &ledger), vec!["paid_have_tickets"]);
    }

    #[test]
    fn a_user_over_the_limit_fails() {
        let (outcome, mut ledger) = sale();
        let extra = ledger.holdings[0].reservations[0].clone();
        ledger.holdings[0].reservations.push(Reservation {
            id: Uuid::now_v7(),
            status: "HELD".into(),
            ..extra
        });
        ledger.stock = 3;
        let failures = failed(&outcome, &ledger);
        assert!(failures.contains(&"within_per_user_limit"), "{failures:?}");
    }

    #[test]
    fn a_remaining_that_disagrees_fails() {
        let (outcome, mut ledger) = sale();
        ledger.remaining_after = Some(1);
        assert_eq!(failed(&outcome, &ledger), vec!["remaining_consistent"]);
    }

    #[test]
    fn sold_out_while_units_remained_fails() {
        let (outcome, mut ledger) = sale();
        ledger.stock = 3;
        ledger.remaining_after = Some(1);
        assert_eq!(failed(&outcome, &ledger), vec!["refusals_justified"]);
    }

    #[test]
    fn a_payment_refused_fails_the_run() {
        let (mut outcome, ledger) = sale();
        outcome.pay = step(
            "pay",
            &[(200, "{}", 1), (422, r#"{"code":"VALIDATION_FAILED"}"#, 1)],
        );
        let failures = failed(&outcome, &ledger);
        assert!(failures.contains(&"answers_expected"), "{failures:?}");
    }
}
