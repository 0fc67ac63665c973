//! One run: set up outside the timed window (sign in, bulk users, the
//! campaign), rush, read back through the API, judge.

use std::time::Duration;

use http::HeaderValue;
use time::OffsetDateTime;

use crate::api::{Api, ApiError, Campaign, TestUser};
use crate::checks::{Ledger, healthz_checks, issue_checks};
use crate::cli::{Options, Scenario};
use crate::report::{Report, Setup, Subject};
use crate::rush::{IssuingUser, RushError, RushPlan, Shot, rush};
use crate::steps::HistogramError;
use crate::target::{Target, TargetError};

/// Drop defaults: a small stock, one coupon per user.
const DROP_STOCK: u64 = 100;
const DROP_PER_USER_LIMIT: u64 = 1;

/// Why a run could not be made (as opposed to a run whose checks failed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Rush(#[from] RushError),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
    #[error("a connection's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub async fn run(options: &Options) -> Result<Report, RunError> {
    let target = Target::parse(&options.url)?;
    match options.scenario {
        Scenario::Healthz => {
            announce_rush(options);
            let outcome = rush(plan(options, target, Shot::Healthz)).await?;
            let checks = healthz_checks(&outcome);
            Ok(Report::new(options, None, &outcome, checks))
        }
        Scenario::Drop | Scenario::Firehose => issue_run(options, target).await,
        Scenario::Tickets => crate::tickets::run(options, target).await,
        Scenario::Line => crate::line::run(options, target).await,
    }
}

/// Signs in as the admin the flags name; its access token.
pub(crate) async fn sign_in(options: &Options, api: &mut Api) -> Result<String, RunError> {
    let (Some(email), Some(password)) = (&options.admin_email, &options.admin_password) else {
        return Err(RunError::Options(format!(
            "{} needs --admin-email and --admin-password \
             (or STAMPEDE_ADMIN_EMAIL and STAMPEDE_ADMIN_PASSWORD)",
            options.scenario.as_str()
        )));
    };
    Ok(api.log_in(email, password).await?)
}

/// A name for what a run creates, unique enough across runs.
pub(crate) fn run_name(options: &Options) -> String {
    format!(
        "loadtest {} {}",
        options.scenario.as_str(),
        OffsetDateTime::now_utc().unix_timestamp()
    )
}

async fn issue_run(options: &Options, target: Target) -> Result<Report, RunError> {
    let mut api = Api::new(target.clone());
    let admin = sign_in(options, &mut api).await?;
    let taken = match options.campaign {
        Some(id) => Some(api.campaign(id).await?),
        None => None,
    };
    let (stock, per_user_limit) = taken.as_ref().map_or_else(
        || campaign_shape(options),
        |c| (c.remaining, c.per_user_limit),
    );
    check_feasible(options, stock, per_user_limit)?;

    progress(format!("creating {} users", options.users));
    let users = api.create_test_users(&admin, options.users).await?;
    let campaign = match taken {
        Some(campaign) => campaign,
        None => {
            api.create_campaign(&admin, &run_name(options), stock, per_user_limit)
                .await?
        }
    };
    settle(&mut api, Duration::from_secs(options.settle)).await?;
    // Read back rather than trusted: the server's view is what the checks compare with.
    let before = api.campaign(campaign.id).await?;
    let shot = Shot::Issue {
        campaign: campaign.id,
        users: issuing_users(&users)?,
    };
    announce_rush(options);
    let outcome = rush(plan(options, target, shot)).await?;

    progress("reading back".into());
    let after = api.campaign(campaign.id).await?;
    let mut read_back = Vec::new();
    for user in sample(users.len(), options.verify_users) {
        let coupons = api
            .coupons_of(&users[user].access_token, campaign.id)
            .await?;
        read_back.push((user, coupons.into_iter().map(|c| c.id).collect()));
    }
    let ledger = Ledger {
        per_user_limit: before.per_user_limit,
        remaining_before: before.remaining,
        remaining_after: after.remaining,
        read_back,
    };
    let checks = issue_checks(&outcome, &ledger);
    Ok(Report::new(
        options,
        Some(setup(&users, &before)),
        &outcome,
        checks,
    ))
}

/// Stock and per-user limit of a new campaign or product: the flags, else
/// the scenario's defaults.
pub(crate) fn campaign_shape(options: &Options) -> (u64, u64) {
    match options.scenario {
        Scenario::Firehose | Scenario::Tickets => (
            options.stock.unwrap_or(options.requests),
            options
                .per_user_limit
                .unwrap_or_else(|| options.requests.div_ceil(options.users as u64)),
        ),
        Scenario::Drop | Scenario::Line | Scenario::Healthz => (
            options.stock.unwrap_or(DROP_STOCK),
            options.per_user_limit.unwrap_or(DROP_PER_USER_LIMIT),
        ),
    }
}

/// A firehose must be able to grant every request.
fn check_feasible(options: &Options, stock: u64, per_user_limit: u64) -> Result<(), RunError> {
    let demand = options.requests;
    let per_users = (options.users as u64).saturating_mul(per_user_limit);
    if options.scenario == Scenario::Firehose && (stock < demand || per_users < demand) {
        return Err(RunError::Options(format!(
            "firehose needs stock ({stock}) and users × per-user limit ({per_users}) \
             of at least --requests ({demand})"
        )));
    }
    Ok(())
}

fn issuing_users(users: &[TestUser]) -> Result<Vec<IssuingUser>, RunError> {
    users
        .iter()
        .map(|u| {
            let authorization = HeaderValue::from_str(&format!("Bearer {}", u.access_token))
                .map_err(|_| RunError::Options("the server sent an unusable token".into()))?;
            Ok(IssuingUser {
                user_id: u.user_id,
                authorization,
            })
        })
        .collect()
}

/// `wanted` user indices spread evenly over `0..users` (all when fewer).
fn sample(users: usize, wanted: usize) -> Vec<usize> {
    if wanted >= users {
        return (0..users).collect();
    }
    (0..wanted).map(|k| k * users / wanted).collect()
}

fn setup(users: &[TestUser], campaign: &Campaign) -> Setup {
    Setup {
        users: users.len(),
        subject: Subject::Campaign {
            campaign_id: campaign.id,
            stock: campaign.remaining,
            per_user_limit: campaign.per_user_limit,
        },
    }
}

fn plan(options: &Options, target: Target, shot: Shot) -> RushPlan {
    RushPlan {
        target,
        shot,
        requests: options.requests,
        duration: Duration::from_secs(options.duration),
        connections: options.connections,
        timeout: Duration::from_secs(options.timeout),
    }
}

/// Setup steps, on stderr so `--json` output stays clean.
/// Waits, up to `patience`, for the server's message backlog to drain, so
/// the timed window measures the rush and not the setup's aftermath.
pub(crate) async fn settle(api: &mut Api, patience: Duration) -> Result<(), ApiError> {
    if patience.is_zero() {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + patience;
    let mut told = false;
    loop {
        match api.backlog().await? {
            None | Some(0) => return Ok(()),
            Some(left) if std::time::Instant::now() >= deadline => {
                progress(format!(
                    "{left} messages still pending on the server; rushing anyway"
                ));
                return Ok(());
            }
            Some(left) => {
                if !told {
                    progress(format!("waiting for the server's {left} pending messages"));
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Says the timed window starts now (`bench/lib.sh` samples CPU from it).
pub(crate) fn announce_rush(options: &Options) {
    progress(format!(
        "rush: {} requests at most, {} s at most, {} connections",
        options.requests, options.duration, options.connections
    ));
}

pub(crate) fn progress(step: String) {
    eprintln!("stampede-loadtest: {step}");
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn options(args: &[&str]) -> Options {
        let mut all = vec!["stampede-loadtest"];
        all.extend_from_slice(args);
        Options::try_parse_from(all).expect("valid flags")
    }

    #[test]
    fn a_drop_defaults_to_a_small_stock_and_one_per_user() {
        assert_eq!(campaign_shape(&options(&["drop"])), (100, 1));
        assert_eq!(
            campaign_shape(&options(&["drop", "--stock", "7", "--per-user-limit", "2"])),
            (7, 2)
        );
    }

    #[test]
    fn a_firehose_defaults_to_stock_and_limits_for_every_request() {
        let o = options(&["firehose", "--requests", "1001", "--users", "100"]);
        assert_eq!(campaign_shape(&o), (1001, 11));
        assert!(check_feasible(&o, 1001, 11).is_ok());
        assert!(check_feasible(&o, 1000, 11).is_err());
        assert!(check_feasible(&o, 1001, 10).is_err());
        let d = options(&["drop", "--requests", "1001", "--users", "100"]);
        assert!(check_feasible(&d, 1, 1).is_ok());
    }

    #[test]
    fn read_back_samples_spread_over_every_user() {
        assert_eq!(sample(3, 200), vec![0, 1, 2]);
        assert_eq!(sample(10, 5), vec![0, 2, 4, 6, 8]);
        assert_eq!(sample(1000, 200).len(), 200);
        assert_eq!(sample(1000, 0), Vec::<usize>::new());
    }
}
