//! Request limits per client address and per signed-in user, on a
//! [`gate::RateLimiter`] (in memory, or shared through Redis).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gate::{Quota, RateLimiter};
use kernel::{Principal, Problem};

use crate::client::ClientIp;

/// What the request limiter enforces.
#[derive(Clone)]
pub struct RequestLimits {
    pub limiter: Arc<dyn RateLimiter>,
    pub per_address: Quota,
    pub per_user: Quota,
}

pub async fn limit_requests(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    let by_user = request
        .extensions()
        .get::<Principal>()
        .map(|p| (format!("user:{}", p.user_id), limits.per_user));
    let by_address = request
        .extensions()
        .get::<ClientIp>()
        .map(|ip| (format!("addr:{}", ip.0), limits.per_address));
    // A signed-in caller is limited as a user; an anonymous one by address.
    if let Some((key, quota)) = by_user.or(by_address)
        && let Err(limited) = limits.limiter.acquire(&key, quota).await
    {
        return Problem::rate_limited(limited.retry_after_secs()).into_response();
    }
    next.run(request).await
}
