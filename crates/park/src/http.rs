//! The park's routes: staff create and edit attractions, anyone reads
//! them and the wait board, signed-in guests join and leave lines, readers
//! see a whole line, staff call and admit.

use std::sync::Arc;

use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use kernel::auth::{Reader, Staff};
use kernel::http::{Created, Json, Path, Query};
use kernel::{IdempotentEffect, Page, PageQuery, Principal, Problem, ProblemDetails};
use platform::Idempotency;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::model::{
    Attraction, AttractionFilter, AttractionId, AttractionKind, AttractionPatch, AttractionStatus,
    HashtagCount, LineEntryId, LineEntryView, MAX_HASHTAGS, NewAttraction, WaitBoard,
    hashtag_prefix, hashtags,
};
use crate::service::ParkService;

/// The `/api/v1` routes of the park. Joining a line honours
/// `Idempotency-Key`.
pub fn router(service: Arc<ParkService>, idempotency: Idempotency) -> OpenApiRouter {
    let join = OpenApiRouter::new()
        .routes(routes!(join_line))
        .route_layer(from_fn_with_state(
            idempotency,
            platform::idempotency::layer,
        ));
    OpenApiRouter::new()
        .routes(routes!(create_attraction, list_attractions))
        .routes(routes!(get_attraction, update_attraction))
        .routes(routes!(wait_board))
        .routes(routes!(list_hashtags))
        .routes(routes!(read_line))
        .merge(join)
        .routes(routes!(my_entry, leave_line))
        .routes(routes!(call_next))
        .routes(routes!(admit_entry))
        .with_state(service)
}

type State = axum::extract::State<Arc<ParkService>>;

/// Filters of `GET /attractions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; read from the raw query string
struct AttractionQuery {
    kind: Option<AttractionKind>,
    status: Option<AttractionStatus>,
    /// Repeat for all of several tags (`?hashtag=a&hashtag=b`).
    hashtag: Option<Vec<String>>,
}

fn decode(raw: &str) -> Result<String, Problem> {
    let plus = raw.replace('+', " ");
    let bytes = plus.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = plus
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Problem::bad_request("a query value is not percent-encoded"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Problem::bad_request("a query value is not UTF-8"))
}

/// Reads `kind`, `status`, repeated `hashtag`, `limit` and `cursor`.
fn attraction_query(raw: Option<&str>) -> Result<(AttractionFilter, PageQuery), Problem> {
    let mut filter = AttractionFilter::default();
    let mut page = PageQuery::default();
    let mut tags = Vec::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(value)?;
        match key {
            "kind" => {
                filter.kind = Some(value.parse().map_err(
                    |e: kernel::lifecycle::UnknownValue| Problem::bad_request(format!("kind {e}")),
                )?);
            }
            "status" => {
                filter.status = Some(value.parse().map_err(
                    |e: kernel::lifecycle::UnknownValue| {
                        Problem::bad_request(format!("status {e}"))
                    },
                )?);
            }
            "hashtag" => tags.push(value),
            "limit" => {
                page.limit = Some(
                    value
                        .parse()
                        .map_err(|_| Problem::bad_request("limit must be a whole number"))?,
                );
            }
            "cursor" => page.cursor = Some(value),
            _ => {}
        }
    }
    if tags.len() > MAX_HASHTAGS {
        return Err(Problem::invalid_field(
            "hashtag",
            format!("at most {MAX_HASHTAGS}"),
        ));
    }
    filter.hashtags = hashtags(&tags).map_err(|e| Problem::invalid_field("hashtag", e))?;
    Ok((filter, page))
}

/// A JSON body that may be left out (empty is the default).
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request(format!("the body is not valid: {e}")))
}

/// Create an attraction (staff).
#[utoipa::path(post, path = "/attractions", tag = "park", security(("bearer" = [])),
    request_body = NewAttraction,
    responses(
        (status = 201, description = "Created", body = Attraction),
        (status = 400, description = "Malformed JSON or wrong types", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn create_attraction(
    axum::extract::State(s): State,
    staff: Staff,
    Json(body): Json<NewAttraction>,
) -> Result<Created<Attraction>, Problem> {
    Ok(Created(s.create(&staff, &body).await?))
}

/// List attractions in id order; repeated `hashtag` means all of them.
#[utoipa::path(get, path = "/attractions", tag = "park",
    params(PageQuery, AttractionQuery),
    responses(
        (status = 200, description = "A page of attractions", body = Page<Attraction>),
        (status = 400, description = "Bad cursor, kind or status", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range or a bad hashtag", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn list_attractions(
    axum::extract::State(s): State,
    RawQuery(raw): RawQuery,
) -> Result<Json<Page<Attraction>>, Problem> {
    let (filter, page) = attraction_query(raw.as_deref())?;
    let page = page.parse("attractions")?;
    Ok(Json(s.list(&filter, page).await?))
}

/// One attraction.
#[utoipa::path(get, path = "/attractions/{id}", tag = "park",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The attraction", body = Attraction),
        (status = 404, description = "No such attraction", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ById,
    ))]
async fn get_attraction(
    axum::extract::State(s): State,
    Path(id): Path<AttractionId>,
) -> Result<Json<Attraction>, Problem> {
    Ok(Json(s.attraction(id).await?))
}

/// Change an attraction (staff); `status` `DOWN` pauses its line.
#[utoipa::path(patch, path = "/attractions/{id}", tag = "park", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = AttractionPatch,
    responses(
        (status = 200, description = "The changed attraction", body = Attraction),
        (status = 400, description = "Malformed id or body", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such attraction", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
    ))]
async fn update_attraction(
    axum::extract::State(s): State,
    staff: Staff,
    Path(id): Path<AttractionId>,
    Json(body): Json<AttractionPatch>,
) -> Result<Json<Attraction>, Problem> {
    Ok(Json(s.update(&staff, id, &body).await?))
}

/// The public wait board of one attraction.
#[utoipa::path(get, path = "/attractions/{id}/wait", tag = "park",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Status, line length, estimate, admitted in the last hour", body = WaitBoard),
        (status = 404, description = "No such attraction", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ById,
    ))]
async fn wait_board(
    axum::extract::State(s): State,
    Path(id): Path<AttractionId>,
) -> Result<Json<WaitBoard>, Problem> {
    Ok(Json(s.wait(id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HashtagQuery {
    /// Tags starting with this (normalised like a tag; `#` optional).
    prefix: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// Hashtags, most used first, with how many attractions carry each.
#[utoipa::path(get, path = "/hashtags", tag = "park",
    params(HashtagQuery),
    responses(
        (status = 200, description = "Tags and counts", body = Vec<HashtagCount>),
        (status = 422, description = "A bad prefix or limit", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
async fn list_hashtags(
    axum::extract::State(s): State,
    Query(q): Query<HashtagQuery>,
) -> Result<Json<Vec<HashtagCount>>, Problem> {
    let prefix = hashtag_prefix(q.prefix.as_deref().unwrap_or(""))
        .map_err(|e| Problem::invalid_field("prefix", e.to_string()))?;
    let limit = q.limit.unwrap_or(20);
    let limit = u32::try_from(limit)
        .ok()
        .filter(|n| (1..=100).contains(n))
        .ok_or_else(|| Problem::invalid_field("limit", "must be between 1 and 100"))?;
    Ok(Json(s.hashtags(&prefix, limit).await?))
}

/// The body of `POST /attractions/{id}/line`.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct JoinBody {
    /// Guests in the party; default 1.
    party_size: Option<i64>,
}

/// Join an attraction's line (signed in). Send an `Idempotency-Key` to
/// retry safely: the same key replays the first answer.
#[utoipa::path(post, path = "/attractions/{id}/line", tag = "park", security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 characters; the same key within 24 h replays the first answer"),
    ),
    request_body(content = JoinBody, description = "May be omitted"),
    responses(
        (status = 201, description = "Joined", body = LineEntryView),
        (status = 404, description = "No such attraction", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`ALREADY_IN_LINE`, `LINE_LIMIT_REACHED` or `ATTRACTION_NOT_OPERATING`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`party_size` out of range, `IDEMPOTENCY_KEY_REUSED`, or a malformed key", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn join_line(
    axum::extract::State(s): State,
    who: Principal,
    effect: Option<IdempotentEffect>,
    Path(id): Path<AttractionId>,
    body: axum::body::Bytes,
) -> Result<Created<LineEntryView>, Problem> {
    let party = optional_body::<JoinBody>(&body)?.party_size;
    Ok(Created(s.join(&who, id, party, effect).await?))
}

/// The whole line in order (readers).
#[utoipa::path(get, path = "/attractions/{id}/line", tag = "park", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid), PageQuery),
    responses(
        (status = 200, description = "Active entries in join order", body = Page<LineEntryView>),
        (status = 404, description = "No such attraction", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::ReadersOnly,
        kernel::openapi::ById,
    ))]
async fn read_line(
    axum::extract::State(s): State,
    _: Reader,
    Path(id): Path<AttractionId>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Page<LineEntryView>>, Problem> {
    let page = q.parse("line")?;
    Ok(Json(s.line(id, page).await?))
}

/// My entry in this line, with its live position and estimate.
#[utoipa::path(get, path = "/attractions/{id}/line/me", tag = "park", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "My newest entry", body = LineEntryView),
        (status = 404, description = "Not in this line", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn my_entry(
    axum::extract::State(s): State,
    who: Principal,
    Path(id): Path<AttractionId>,
) -> Result<Json<LineEntryView>, Problem> {
    Ok(Json(s.mine(&who, id).await?))
}

/// Leave this line.
#[utoipa::path(delete, path = "/attractions/{id}/line/me", tag = "park", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Left"),
        (status = 404, description = "Not in this line", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::SignedIn,
        kernel::openapi::ById,
    ))]
async fn leave_line(
    axum::extract::State(s): State,
    who: Principal,
    Path(id): Path<AttractionId>,
) -> Result<StatusCode, Problem> {
    s.leave(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /attractions/{id}/line/call`.
#[derive(Debug, Deserialize, ToSchema)]
struct CallBody {
    /// How many parties, 1 to 500.
    count: i64,
}

/// Call the next parties (staff).
#[utoipa::path(post, path = "/attractions/{id}/line/call", tag = "park", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body = CallBody,
    responses(
        (status = 200, description = "The entries called, first in line first", body = Vec<LineEntryView>),
        (status = 404, description = "No such attraction", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`ATTRACTION_NOT_OPERATING`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`count` out of range", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
        kernel::openapi::ById,
    ))]
async fn call_next(
    axum::extract::State(s): State,
    staff: Staff,
    Path(id): Path<AttractionId>,
    Json(body): Json<CallBody>,
) -> Result<Json<Vec<LineEntryView>>, Problem> {
    Ok(Json(s.call(&staff, id, body.count).await?))
}

/// The optional body of `POST /line-entries/{id}/admit`.
#[derive(Debug, Default, Deserialize, ToSchema)]
struct AdmitBody {
    /// The gate's attraction; an entry of another is refused.
    attraction_id: Option<AttractionId>,
}

/// Admit a called entry at the gate (staff).
#[utoipa::path(post, path = "/line-entries/{id}/admit", tag = "park", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    request_body(content = AdmitBody, description = "May be omitted"),
    responses(
        (status = 200, description = "Admitted", body = LineEntryView),
        (status = 404, description = "No such entry", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`NOT_CALLED`, `EXPIRED` or `WRONG_ATTRACTION`", body = ProblemDetails, content_type = "application/problem+json"),
        kernel::openapi::StaffOnly,
        kernel::openapi::ById,
    ))]
async fn admit_entry(
    axum::extract::State(s): State,
    staff: Staff,
    Path(id): Path<LineEntryId>,
    body: axum::body::Bytes,
) -> Result<Json<LineEntryView>, Problem> {
    let attraction = optional_body::<AdmitBody>(&body)?.attraction_id;
    Ok(Json(s.admit(&staff, id, attraction).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_hashtags_are_all_read_and_normalised() {
        let (filter, page) = attraction_query(Some(
            "hashtag=%23Thrill&hashtag=%EB%A1%A4&kind=RIDE&limit=5",
        ))
        .expect("valid");
        let tags: Vec<&str> = filter.hashtags.iter().map(|t| t.as_str()).collect();
        assert_eq!(tags, ["thrill", "롤"]);
        assert_eq!(filter.kind, Some(AttractionKind::Ride));
        assert_eq!(page.limit, Some(5));
        assert!(attraction_query(Some("kind=BOAT")).is_err());
        assert!(attraction_query(Some("hashtag=a%2")).is_err());
        assert!(attraction_query(Some("hashtag=two+words")).is_err());
    }
}
