//! Coupon campaigns: staff create them; everyone who gets in watches each
//! campaign's live `remaining` and its issues per minute during a drop. The
//! table refreshes itself every few seconds (htmx), and each refresh
//! carries the previous reading, so the rate needs no state on the server.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use axum::routing::get;
use commerce::model::{CouponCampaign, DiscountSpec, NewCampaign};
use http::StatusCode;
use kernel::{PageRequest, Problem};

use crate::Admin;
use crate::form::{moment, whole};
use crate::page::{self, Chrome};
use crate::session::{Fields, Signed};

const LIST_LENGTH: u32 = 50;
/// Seconds between refreshes of the live table.
const REFRESH_SECONDS: u32 = 2;

struct Row {
    campaign: CouponCampaign,
    discount: String,
    /// Coupons issued per minute since the previous reading, when known.
    per_minute: Option<u64>,
}

#[derive(Template)]
#[template(path = "campaigns.html")]
struct CampaignsPage {
    chrome: Chrome,
    live: Live,
}

/// The live table alone: what each refresh swaps in.
#[derive(Template)]
#[template(path = "campaigns_live.html")]
struct Live {
    rows: Vec<Row>,
    /// `id:remaining,…` now, for the next refresh to compare with.
    sample: String,
    at_millis: i64,
    refresh_seconds: u32,
}

/// The previous reading a refresh brings back.
#[derive(serde::Deserialize, Default)]
struct Previous {
    sample: Option<String>,
    at: Option<i64>,
}

impl Previous {
    fn remaining(&self) -> HashMap<&str, u32> {
        self.sample
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter_map(|pair| pair.split_once(':'))
            .filter_map(|(id, n)| Some((id, n.parse().ok()?)))
            .collect()
    }
}

fn describe(discount: &DiscountSpec) -> String {
    match discount.kind.as_str() {
        "PERCENT" => format!("{}% off", discount.value),
        _ => format!(
            "{} {} off",
            discount.value,
            discount.currency.as_deref().unwrap_or("KRW")
        ),
    }
}

async fn live_table(admin: &Admin, previous: &Previous) -> Result<Live, Problem> {
    let campaigns = admin
        .coupons
        .list_campaigns(PageRequest {
            limit: LIST_LENGTH,
            after: None,
        })
        .await
        .map_err(Problem::from)?
        .items;
    let now = time::OffsetDateTime::now_utc();
    let at_millis = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let elapsed_millis = previous
        .at
        .map(|then| at_millis - then)
        .filter(|ms| *ms > 0);
    let before = previous.remaining();
    let sample = campaigns
        .iter()
        .map(|c| format!("{}:{}", c.campaign.id, c.remaining))
        .collect::<Vec<_>>()
        .join(",");
    let rows = campaigns
        .into_iter()
        .map(|campaign| {
            let per_minute = before
                .get(campaign.campaign.id.to_string().as_str())
                .zip(elapsed_millis)
                .map(|(then, ms)| {
                    let issued = i64::from(then.saturating_sub(campaign.remaining));
                    // Rounded: a reading a few ms late must not drop a coupon.
                    u64::try_from((issued.saturating_mul(60_000) + ms / 2) / ms).unwrap_or_default()
                });
            Row {
                discount: describe(&DiscountSpec::from(campaign.campaign.discount)),
                per_minute,
                campaign,
            }
        })
        .collect();
    Ok(Live {
        rows,
        sample,
        at_millis,
        refresh_seconds: REFRESH_SECONDS,
    })
}

async fn list(State(admin): State<Admin>, Extension(signed): Extension<Signed>) -> Response {
    match live_table(&admin, &Previous::default()).await {
        Ok(live) => page::render(
            StatusCode::OK,
            &CampaignsPage {
                chrome: Chrome::of(&signed, "/admin/campaigns"),
                live,
            },
        ),
        Err(problem) => page::problem(problem),
    }
}

async fn live(State(admin): State<Admin>, Query(previous): Query<Previous>) -> Response {
    match live_table(&admin, &previous).await {
        Ok(live) => page::render(StatusCode::OK, &live),
        Err(problem) => page::problem(problem),
    }
}

fn new_campaign(fields: &Fields) -> Result<NewCampaign, Problem> {
    let kind = fields.get("kind").unwrap_or_default().to_owned();
    Ok(NewCampaign {
        name: fields.get("name").unwrap_or_default().to_owned(),
        discount: DiscountSpec {
            currency: (kind == "FIXED").then(|| "KRW".to_owned()),
            kind,
            value: whole(fields, "value")?,
        },
        total_quantity: whole(fields, "total_quantity")?,
        per_user_limit: Some(whole(fields, "per_user_limit")?),
        issue_starts_at: moment(fields, "issue_starts_at")?,
        issue_ends_at: moment(fields, "issue_ends_at")?,
        valid_until: moment(fields, "valid_until")?,
    })
}

async fn create(
    State(admin): State<Admin>,
    Extension(signed): Extension<Signed>,
    Extension(fields): Extension<Fields>,
) -> Response {
    let Some(staff) = signed.staff else {
        return page::refused("Auditors watch the campaigns; only staff create them.");
    };
    let request = match new_campaign(&fields) {
        Ok(request) => request,
        Err(problem) => return page::problem(problem),
    };
    match admin.coupons.create_campaign(&staff, &request).await {
        Ok(_) => page::see_other("/admin/campaigns"),
        Err(e) => page::problem(e.into()),
    }
}

pub fn routes() -> Router<Admin> {
    Router::new()
        .route("/admin/campaigns", get(list).post(create))
        .route("/admin/campaigns/live", get(live))
}
