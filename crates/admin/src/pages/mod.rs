//! The dashboard's pages, one file per area; [`NAV`] is the menu.

mod attention;
mod attractions;
mod campaigns;
mod charts;
mod dead_letters;
mod events;
mod orders;
mod overview;
mod products;
mod requests;
mod users;
mod webhooks;

use axum::Router;

use crate::Admin;

/// `(path, label, ADMIN only)`, in menu order.
pub const NAV: &[(&str, &str, bool)] = &[
    ("/admin", "Overview", false),
    ("/admin/events", "Events", false),
    ("/admin/requests", "Reward requests", false),
    ("/admin/campaigns", "Coupon campaigns", false),
    ("/admin/products", "Products", false),
    ("/admin/orders", "Orders", false),
    ("/admin/attractions", "Attractions", false),
    ("/admin/dead-letters", "Dead letters", false),
    ("/admin/webhooks", "Webhooks", true),
    ("/admin/users", "Users", true),
];

pub fn routes() -> Router<Admin> {
    overview::routes()
        .merge(events::routes())
        .merge(attention::routes())
        .merge(charts::routes())
        .merge(requests::routes())
        .merge(campaigns::routes())
        .merge(products::routes())
        .merge(orders::routes())
        .merge(dead_letters::routes())
        .merge(users::routes())
        .merge(attractions::routes())
        .merge(webhooks::routes())
}
