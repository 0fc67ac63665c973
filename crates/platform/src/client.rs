//! The client's address, decided once per request: the socket peer, or the
//! first `X-Forwarded-For` hop when the server is told it sits behind a proxy.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::request::Parts;
use kernel::Problem;

/// The address a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Whether to believe `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustForwardedFor(pub bool);

pub async fn resolve_client_ip(
    State(trust): State<TrustForwardedFor>,
    mut request: Request,
    next: Next,
) -> Response {
    let forwarded = trust
        .0
        .then(|| {
            request
                .headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|first| first.trim().parse::<IpAddr>().ok())
        })
        .flatten();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = forwarded
        .or(peer)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Self>()
            .copied()
            .unwrap_or(Self(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}
