//! Shared building blocks every Stampede module stands on: ids, time, errors
//! as problem+json, request extractors, keyset pagination, the authenticated
//! principal with its roles, money, the database handle, micro-batching of hot
//! writes and the control-character check every text passes.
#![forbid(unsafe_code)]

pub mod auth;
pub mod batch;
pub mod clock;
pub mod crash;
pub mod db;
pub mod effect;
pub mod error;
pub mod http;
pub mod id;
pub mod lifecycle;
pub mod money;
pub mod openapi;
pub mod page;
pub mod period;
pub mod secret;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod timestamp;

pub use auth::{Principal, Role, Roles};
pub use clock::{Clock, SharedClock, SystemClock};
pub use db::{Backend, Db};
pub use effect::IdempotentEffect;
pub use error::{FieldError, Problem, ProblemDetails, Violations};
pub use id::UserId;
pub use lifecycle::Lifecycle;
pub use money::{Currency, Money};
pub use page::{Page, PageQuery, PageRequest};
pub use period::{Bucket, Period, PeriodQuery};
pub use secret::Secret;
pub use timestamp::Timestamp;
