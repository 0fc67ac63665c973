//! The operator dashboard at `/admin`: server-rendered pages (askama) with
//! htmx and Chart.js, all embedded in the binary, over the same services and rules as
//! the API — a page never reaches a store (ADR 0020).
//!
//! Adding a module's pages: a file under `pages/` with its handlers and a
//! `routes()`, its templates under `templates/`, a line in [`pages::NAV`]
//! and a service in [`Admin`]. Every route behind [`session::guard`] gets the
//! signed-in reader, CSRF checks and the parsed form for free.
#![forbid(unsafe_code)]

mod assets;
mod form;
mod page;
mod pages;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use bus::Dispatcher;
use commerce::CouponService;
use commerce::analytics::CommerceAnalyticsService;
use commerce::orders::OrderService;
use commerce::products::ProductService;
use commerce::waitlist::WaitlistService;
use identity::IdentityService;
use park::ParkService;
use rewards::RewardsService;
use webhooks::WebhookService;

pub use assets::HTMX_URL;

/// What the dashboard calls: each module's public service.
#[derive(Clone)]
pub struct Admin {
    pub identity: Arc<IdentityService>,
    pub rewards: Arc<RewardsService>,
    pub coupons: Arc<CouponService>,
    /// Commerce's figures and the orders needing an operator.
    pub commerce_analytics: Arc<CommerceAnalyticsService>,
    /// Products on sale, their orders and waiting lists.
    pub products: Arc<ProductService>,
    pub orders: Arc<OrderService>,
    pub waitlist: Arc<WaitlistService>,
    /// Rides and their lines (the ones `DOWN` need attention).
    pub park: Arc<ParkService>,
    /// Outbound webhook endpoints and their delivery log (ADMIN).
    pub webhooks: Arc<WebhookService>,
    pub dispatcher: Arc<Dispatcher>,
    /// Mark the session cookie `Secure` (serve over HTTPS).
    pub secure_cookie: bool,
}

/// `/admin…`: the sign-in pages and assets, and every page behind the guard.
pub fn router(admin: Admin) -> Router {
    let guarded = pages::routes()
        .route("/admin/logout", axum::routing::post(session::log_out))
        .layer(from_fn_with_state(admin.clone(), session::guard));
    Router::new()
        .route(
            "/admin/login",
            axum::routing::get(session::login_page).post(session::log_in),
        )
        .route(
            "/admin/assets/{hash}/{name}",
            axum::routing::get(assets::serve),
        )
        .merge(guarded)
        .with_state(admin)
        .layer(from_fn(page::content_policy))
}
