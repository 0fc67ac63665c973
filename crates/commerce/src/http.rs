//! The coupon routes. Handlers parse, authorise (by extractor type), call the
//! service and map the result; nothing else.

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use kernel::auth::Staff;
use kernel::http::{Created, Json, Path, Query};
use kernel::{IdempotentEffect, Page, PageQuery, Principal, Problem, ProblemDetails};
use platform::Idempotency;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::model::{Coupon, CouponCampaign, CouponCampaignId, NewCampaign};
use crate::service::CouponService;

/// The `/api/v1` routes of coupons. Issuing honours `Idempotency-Key`.
pub fn router(service: Arc<CouponService>, idempotency: Idempotency) -> OpenApiRouter {
    let issue = OpenApiRouter::new()
        .routes(routes!(issue))
        .route_layer(from_fn_with_state(
            idempotency,
            platform::idempotency::layer,
        ));
    OpenApiRouter::new()
        .routes(routes!(create_campaign, list_campaigns))
        .routes(routes!(get_campaign))
        .routes(routes!(my_coupons))
        .merge(issue)
        .with_state(service)
}

type State = axum::extract::State<Arc<CouponService>>;

/// Create a coupon campaign (staff).
#[utoipa::path(post, path = "/coupon-campaigns", tag = "coupons", security(("bearer" = [])),
    request_body = NewCampaign,
    responses(
        (status = 201, description = "Created, with its whole stock remaining", body = CouponCampaign),
        (status = 400, description = "Malformed JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Bad name, discount, quantity or limit, or not `issue_starts_at < issue_ends_at <= valid_until`", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn create_campaign(
    axum::extract::State(s): State,
    staff: Staff,
    Json(body): Json<NewCampaign>,
) -> Result<Created<CouponCampaign>, Problem> {
    Ok(Created(s.create_campaign(&staff, &body).await?))
}

/// List coupon campaigns, each with its live `remaining`.
#[utoipa::path(get, path = "/coupon-campaigns", tag = "coupons",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of campaigns", body = Page<CouponCampaign>),
        (status = 503, description = "The stock gate cannot answer", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::Paged,
    ))]
async fn list_campaigns(
    axum::extract::State(s): State,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<CouponCampaign>>, Problem> {
    let page = q.parse("coupon-campaigns")?;
    Ok(Json(s.list_campaigns(page).await?))
}

/// One coupon campaign with its live `remaining`.
#[utoipa::path(get, path = "/coupon-campaigns/{id}", tag = "coupons",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The campaign", body = CouponCampaign),
        (status = 404, description = "No such campaign", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The stock gate cannot answer", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ById,
    ))]
async fn get_campaign(
    axum::extract::State(s): State,
    Path(id): Path<CouponCampaignId>,
) -> Result<Json<CouponCampaign>, Problem> {
    Ok(Json(s.campaign(id).await?))
}

/// Get a coupon of the campaign: first come, first served. Send an
/// `Idempotency-Key` to retry safely: the same key replays the first answer.
#[utoipa::path(post, path = "/coupon-campaigns/{id}/issue", tag = "coupons", security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters; the same key within 24 h replays the first answer"),
    ),
    responses(
        (status = 201, description = "Issued", body = Coupon),
        (status = 404, description = "No such campaign", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`NOT_OPEN` outside the issue window, `SOLD_OUT`, `LIMIT_REACHED`, or `REQUEST_IN_PROGRESS` for a key still being answered", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`, or a malformed key", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The stock gate cannot answer", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn issue(
    axum::extract::State(s): State,
    principal: Principal,
    effect: Option<IdempotentEffect>,
    Path(id): Path<CouponCampaignId>,
) -> Result<Created<Coupon>, Problem> {
    Ok(Created(s.issue(principal.user_id, id, effect).await?))
}

/// The caller's coupons, oldest first; past `expires_at` an unused one reads
/// `EXPIRED`.
#[utoipa::path(get, path = "/coupons/mine", tag = "coupons", security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the caller's coupons", body = Page<Coupon>),
        kernel::openapi::SignedIn,
        kernel::openapi::Paged,
    ))]
async fn my_coupons(
    axum::extract::State(s): State,
    principal: Principal,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<Coupon>>, Problem> {
    let page = q.parse("coupons")?;
    Ok(Json(s.mine(principal.user_id, page).await?))
}
