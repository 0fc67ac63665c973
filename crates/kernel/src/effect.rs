//! The effect an `Idempotency-Key` stands for. The key's record reserves the
//! id of the row its request creates (a coupon, a reward request, a
//! reservation) before the request runs, and keeps it when a retry takes
//! over a request that never answered. The service creates its row under
//! that id, so a retry after a crash at any point finds the first effect by
//! id instead of making a second one (docs/adr/0019).

use uuid::Uuid;

/// Handed by the idempotency middleware to the handler of a keyed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotentEffect {
    /// The id the created row must take.
    pub id: Uuid,
    /// An earlier request with this key may have made the effect (it died,
    /// or answered 5xx, without a recorded answer): look for it by `id`
    /// before doing the work.
    pub retry: bool,
}

/// `Option<IdempotentEffect>` in a handler: the effect of a keyed request,
/// `None` without a key.
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for IdempotentEffect {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().copied())
    }
}
