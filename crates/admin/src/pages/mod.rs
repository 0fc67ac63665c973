//! The dashboard's pages, one file per area; [`NAV`] is the menu.

mod overview;
mod requests;

use axum::Router;

use crate::Admin;

/// `(path, label, ADMIN only)`, in menu order.
pub const NAV: &[(&str, &str, bool)] = &[
    ("/admin", "Overview", false),
    ("/admin/requests", "Reward requests", false),
];

pub fn routes() -> Router<Admin> {
    overview::routes().merge(requests::routes())
}
