//! Commerce's figures for readers (`GET /analytics/commerce`) and what needs
//! an operator (unknown payments, pending refunds): read-only aggregates
//! over commerce's own tables — coupons, orders and their items, products.
//! `model` holds the answers, `store` the SQL (SQLite and PostgreSQL),
//! `service` the periods, `http` the route.

pub mod http;
pub mod model;
pub mod service;
pub mod store;

pub use model::{CommerceAnalytics, OpenIssues, OpenOrder, OrderDayCount, ProductSales, TimeCount};
pub use service::CommerceAnalyticsService;
pub use store::{AnalyticsStore, SqlAnalyticsStore};
