//! `tickets`: U users buy one limited product, each purchase three requests
//! in a row on one connection — hold one unit, order it, pay with the
//! `fake` provider (the server must run with `--fake-payments`). Purchase i
//! is made by user i mod U. Afterwards every user's reservations, orders
//! and tickets are read back and the sale's invariants judged
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
use crate::scenario::{
    RunError, announce_rush, campaign_shape, progress, run_name, settle, sign_in,
};
use crate::steps::{Caller, Failure, HistogramError, Step, Window, bearer, open_all, problem_code};
use crate::target::Target;

/// A user who buys, with its header ready.
struct Buyer {
    user_id: Uuid,
    authorization: HeaderValue,
}

/// How far one purchase got, as the tool saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purchase {
    /// Index of the user in the run.
    pub user: usize,
    /// The hold's 201.
    pub reservation: Option<Uuid>,
    /// The hold's refusal code (`SOLD_OUT`, `LIMIT_REACHED`, …).
    pub refused: Option<String>,
    /// The order's 201.
    pub order: Option<Uuid>,
    /// The payment's 200: the tickets its body carried.
    pub tickets: Option<Vec<Uuid>>,
    /// A request of this purchase got no answer after it was sent: the
    /// server may have done it.
    pub unanswered: bool,
    /// A 2xx body that was not what was asked for (another user's, another
    /// product's, or not `PAID`).
    pub foreign: bool,
}

/// Everything the purchases' window measured.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    pub hold: Step,
    pub order: Step,
    pub pay: Step,
    pub purchases: Vec<Purchase>,
}

impl Outcome {
    /// Purchases that ended with a 200 for their payment.
    #[must_use]
    pub fn completed(&self) -> u64 {
        self.purchases
            .iter()
            .filter(|p| p.tickets.is_some())
            .count() as u64
    }
}

pub async fn run(options: &Options, target: Target) -> Result<Report, RunError> {
    let mut api = Api::new(target.clone());
    let admin = sign_in(options, &mut api).await?;
    let (stock, per_user_limit) = campaign_shape(options);
    progress(format!("creating {} users", options.users));
    let users = api.create_test_users(&admin, options.users).await?;
    let product = api
        .create_product(&admin, &run_name(options), stock, per_user_limit)
        .await?;
    settle(&mut api, Duration::from_secs(options.settle)).await?;
    let before = api.product(product.id).await?;
    let buyers = buyers(&users)?;

    announce_rush(options);
    let outcome = purchase_window(options, &target, product.id, Arc::new(buyers)).await?;

    progress("reading back".into());
    let after = api.product(product.id).await?;
    let mut holdings = Vec::with_capacity(users.len());
    for user in &users {
        holdings.push(api.holdings(&user.access_token, product.id).await?);
    }
    let ledger = checks::Ledger {
        stock: before.remaining.unwrap_or(stock),
        per_user_limit: before.per_user_limit.unwrap_or(per_user_limit),
        remaining_after: after.remaining,
        holdings,
    };
    let checks = checks::checks(&outcome, &ledger);
    let setup = Setup {
        users: users.len(),
        subject: Subject::Product {
            product_id: product.id,
            stock: ledger.stock,
            per_user_limit: ledger.per_user_limit,
        },
    };
    let window = outcome.elapsed;
    let steps = [&outcome.hold, &outcome.order, &outcome.pay].map(|step| Measured { step, window });
    Ok(Report::of_steps(
        options,
        setup,
        &steps,
        Some(outcome.completed()),
        checks,
    )?)
}

fn buyers(users: &[TestUser]) -> Result<Vec<Buyer>, RunError> {
    users
        .iter()
        .map(|u| {
            Ok(Buyer {
                user_id: u.user_id,
                authorization: bearer(&u.access_token)
                    .ok_or_else(|| RunError::Options("the server sent an unusable token".into()))?,
            })
        })
        .collect()
}

/// The timed window: `--connections` connections, each buying one
/// purchase after another until `--requests` purchases were claimed or
/// `--duration` passed.
async fn purchase_window(
    options: &Options,
    target: &Target,
    product: Uuid,
    buyers: Arc<Vec<Buyer>>,
) -> Result<Outcome, RunError> {
    if buyers.is_empty() {
        return Err(RunError::Options("tickets needs at least one user".into()));
    }
    let connections = open_all(target, options.connections)
        .await
        .map_err(crate::rush::RushError::from)?;
    let hold_uri = Uri::try_from(format!("/api/v1/products/{product}/reservations"))
        .map_err(crate::rush::RushError::from)?;
    let started = Instant::now();
    let window = Arc::new(Window::new(
        options.requests,
        started + Duration::from_secs(options.duration),
    ));
    let timeout = Duration::from_secs(options.timeout);
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|conn| {
            let shopper = Shopper {
                caller: Caller::new(target.clone(), timeout, Some(conn)),
                product,
                hold_uri: hold_uri.clone(),
                buyers: buyers.clone(),
                window: window.clone(),
            };
            tokio::spawn(shopper.run())
        })
        .collect();
    let mut outcome = Outcome {
        elapsed: Duration::ZERO,
        hold: Step::new("hold")?,
        order: Step::new("order")?,
        pay: Step::new("pay")?,
        purchases: Vec::new(),
    };
    for task in tasks {
        let part = task.await??;
        outcome.hold.merge(&part.hold)?;
        outcome.order.merge(&part.order)?;
        outcome.pay.merge(&part.pay)?;
        outcome.purchases.extend(part.purchases);
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// One connection's purchases.
struct Shopper {
    caller: Caller,
    product: Uuid,
    hold_uri: Uri,
    buyers: Arc<Vec<Buyer>>,
    window: Arc<Window>,
}

#[derive(Deserialize)]
struct Held {
    id: Uuid,
    product_id: Uuid,
    user_id: Uuid,
}

#[derive(Deserialize)]
struct Placed {
    id: Uuid,
    user_id: Uuid,
}

#[derive(Deserialize)]
struct PaidOrder {
    id: Uuid,
    status: String,
    tickets: Vec<PaidTicket>,
}

#[derive(Deserialize)]
struct PaidTicket {
    id: Uuid,
}

const HOLD_ONE: &[u8] = br#"{"quantity":1}"#;
const PAY_FAKE: &[u8] = br#"{"provider":"fake"}"#;

impl Shopper {
    async fn run(mut self) -> Result<Outcome, HistogramError> {
        let mut mine = Outcome {
            elapsed: Duration::ZERO,
            hold: Step::new("hold")?,
            order: Step::new("order")?,
            pay: Step::new("pay")?,
            purchases: Vec::new(),
        };
        while let Some(i) = self.window.claim() {
            let user = (i % self.buyers.len() as u64) as usize;
            let purchase = self.buy(&mut mine, user).await;
            mine.purchases.push(purchase);
        }
        Ok(mine)
    }

    /// One purchase, as far as it gets.
    async fn buy(&mut self, steps: &mut Outcome, user: usize) -> Purchase {
        let buyer = &self.buyers[user];
        let mut purchase = Purchase {
            user,
            ..Purchase::default()
        };
        let answer = self
            .caller
            .call(
                &mut steps.hold,
                Method::POST,
                self.hold_uri.clone(),
                Some(&buyer.authorization),
                Some(Bytes::from_static(HOLD_ONE)),
            )
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(failure) => return unanswered(purchase, failure),
        };
        if answer.status != StatusCode::CREATED {
            purchase.refused = problem_code(&answer).or_else(|| Some(answer.status.to_string()));
            return purchase;
        }
        let reservation = match serde_json::from_slice::<Held>(&answer.body) {
            Ok(held) if held.product_id == self.product && held.user_id == buyer.user_id => held.id,
            _ => {
                purchase.foreign = true;
                return purchase;
            }
        };
        purchase.reservation = Some(reservation);

        let body = format!(r#"{{"reservation_ids":["{reservation}"]}}"#);
        let answer = self
            .caller
            .call(
                &mut steps.order,
                Method::POST,
                Uri::from_static("/api/v1/orders"),
                Some(&buyer.authorization),
                Some(Bytes::from(body)),
            )
            .await;
        let answer = match answer {
            Ok(answer) if answer.status == StatusCode::CREATED => answer,
            Ok(_) => return purchase,
            Err(failure) => return unanswered(purchase, failure),
        };
        let order = match serde_json::from_slice::<Placed>(&answer.body) {
            Ok(placed) if placed.user_id == buyer.user_id => placed.id,
            _ => {
                purchase.foreign = true;
                return purchase;
            }
        };
        purchase.order = Some(order);

        let Ok(pay_uri) = Uri::try_from(format!("/api/v1/orders/{order}/payments")) else {
            return purchase;
        };
        let answer = self
            .caller
            .call(
                &mut steps.pay,
                Method::POST,
                pay_uri,
                Some(&buyer.authorization),
                Some(Bytes::from_static(PAY_FAKE)),
            )
            .await;
        match answer {
            Ok(answer) if answer.status == StatusCode::OK => {
                match serde_json::from_slice::<PaidOrder>(&answer.body) {
                    Ok(paid) if paid.id == order && paid.status == "PAID" => {
                        purchase.tickets = Some(paid.tickets.into_iter().map(|t| t.id).collect());
                    }
                    _ => purchase.foreign = true,
                }
                purchase
            }
            Ok(_) => purchase,
            Err(failure) => unanswered(purchase, failure),
        }
    }
}

fn unanswered(mut purchase: Purchase, failure: Failure) -> Purchase {
    purchase.unanswered = failure.maybe_done();
    purchase
}
