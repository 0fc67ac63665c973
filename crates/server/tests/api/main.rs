//! The HTTP API over real sockets, on SQLite by default and on PostgreSQL
//! when `STAMPEDE_TEST_DATABASE_URL` is set. One binary for the crate.

mod access;
mod admin;
mod admin_commerce;
mod admin_events;
mod admin_park;
mod analytics;
mod broker;
mod control_characters;
mod coupons;
mod helpers;
mod identity;
mod notify;
mod order_events;
mod orders;
mod outages;
mod park;
mod platform;
mod products;
mod relay;
mod reservations;
mod reward_requests;
mod rewards;
mod slow_clients;
mod stock;
mod test_users;
mod tickets;
mod tokens;
mod waiting_list;
mod webhooks;
