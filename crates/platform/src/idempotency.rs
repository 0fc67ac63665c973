//! `Idempotency-Key` on POSTs that create something for a user: the same key
//! from the same user within 24 hours replays the first response (status and
//! body) without doing the work again; the key on a different request is a
//! 422 `IDEMPOTENCY_KEY_REUSED`; while the first is still running, a 409
//! `REQUEST_IN_PROGRESS`. 429 and 5xx answers are not kept.
//!
//! Crash-safe by the effect id (docs/adr/0019): the key's record reserves
//! the id of the row the request creates ([`IdempotentEffect`], handed to
//! the handler), and a retry that takes over a request that never recorded
//! an answer — its process died, or it answered 5xx — keeps that id and is
//! told to look for the effect first, so it answers with the first
//! request's coupon or request instead of making a second one.
//!
//! A module opts a route in with
//! `route_layer(from_fn_with_state(idempotency, platform::idempotency::layer))`.

use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use kernel::crash::CrashPoint;
use kernel::db::{Db, Migrations};
use kernel::{IdempotentEffect, Principal, Problem, SharedClock, Timestamp, UserId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;

/// The idempotency tables of this crate.
#[must_use]
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// The idempotency store and its settings.
#[derive(Clone, Debug)]
pub struct Idempotency {
    db: Db,
    clock: SharedClock,
    /// How long a key is remembered.
    pub retention: Duration,
    /// A claim older than this whose request never finished (the process
    /// died) may be taken over by a retry. Longer than any request runs, and
    /// than a dead claim's stock lease takes to be swept, so the takeover
    /// finds every effect of the first request settled.
    pub abandon_after: Duration,
    /// Largest request body read for fingerprinting.
    pub max_body: usize,
}

impl Idempotency {
    #[must_use]
    pub fn new(db: Db, clock: SharedClock, max_body: usize) -> Self {
        Self {
            db,
            clock,
            retention: Duration::from_secs(24 * 3600),
            abandon_after: Duration::from_secs(120),
            max_body,
        }
    }

    /// Deletes records past their retention; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        let cutoff = self.clock.now() - self.retention;
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query("delete from idempotency_keys where created_at < $1")
                .bind(cutoff)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())
        })
    }

    /// Claims a free key with a fresh effect id; when owned, returns the
    /// claim's `created_at`, which identifies this claim to `complete` and
    /// `release`.
    async fn claim(
        &self,
        user: UserId,
        key: &str,
        fingerprint: &[u8],
        effect: Uuid,
    ) -> Result<Option<Timestamp>, sqlx::Error> {
        let (key, fingerprint, now) = (key.to_owned(), fingerprint.to_vec(), self.clock.now());
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "insert into idempotency_keys \
                 (user_id, idem_key, fingerprint, state, created_at, effect_id) \
                 values ($1, $2, $3, 'IN_PROGRESS', $4, $5) \
                 on conflict (user_id, idem_key) do nothing",
            )
            .bind(user)
            .bind(key)
            .bind(fingerprint)
            .bind(now)
            .bind(effect)
            .execute(&mut *conn)
            .await
            .map(|r| (r.rows_affected() == 1).then_some(now))
        })
    }

    async fn load(&self, user: UserId, key: &str) -> Result<Option<Record>, sqlx::Error> {
        kernel::read!(&self.db, |pool| {
            sqlx::query_as::<_, Record>(
                "select fingerprint, state, response_status, content_type, location, body, \
                 created_at, effect_id, released \
                 from idempotency_keys where user_id = $1 and idem_key = $2",
            )
            .bind(user)
            .bind(key)
            .fetch_optional(pool)
            .await
        })
    }

    /// Replaces a stale record (expired, or an abandoned claim) with a fresh
    /// claim for `effect`, if nobody else did first; returns it as `claim`
    /// does.
    async fn replace(
        &self,
        user: UserId,
        key: &str,
        fingerprint: &[u8],
        stale_created_at: Timestamp,
        effect: Uuid,
    ) -> Result<Option<Timestamp>, sqlx::Error> {
        let (key, fingerprint, now) = (key.to_owned(), fingerprint.to_vec(), self.clock.now());
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update idempotency_keys set fingerprint = $3, state = 'IN_PROGRESS', \
                 response_status = null, content_type = null, location = null, body = null, \
                 created_at = $4, effect_id = $6, released = false \
                 where user_id = $1 and idem_key = $2 and created_at = $5",
            )
            .bind(user)
            .bind(key)
            .bind(fingerprint)
            .bind(now)
            .bind(stale_created_at)
            .bind(effect)
            .execute(&mut *conn)
            .await
            .map(|r| (r.rows_affected() == 1).then_some(now))
        })
    }

    /// Records the answer, unless the claim was taken over meanwhile (a retry
    /// after `abandon_after` owns the key now).
    async fn complete(
        &self,
        user: UserId,
        key: &str,
        claimed_at: Timestamp,
        response: &Stored,
    ) -> Result<(), sqlx::Error> {
        let key = key.to_owned();
        let Stored {
            status,
            content_type,
            location,
            body,
        } = response.clone();
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update idempotency_keys set state = 'DONE', response_status = $3, \
                 content_type = $4, location = $5, body = $6 \
                 where user_id = $1 and idem_key = $2 and created_at = $7",
            )
            .bind(user)
            .bind(key)
            .bind(i32::from(status))
            .bind(content_type)
            .bind(location)
            .bind(body.to_vec())
            .bind(claimed_at)
            .execute(&mut *conn)
            .await
            .map(drop)
        })
    }

    /// Marks the claim as one a retry takes over at once, keeping its effect
    /// id: its request answered 5xx, which may have come after its effect
    /// (a write whose answer was lost).
    async fn mark_released(
        &self,
        user: UserId,
        key: &str,
        claimed_at: Timestamp,
    ) -> Result<(), sqlx::Error> {
        let key = key.to_owned();
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "update idempotency_keys set released = true \
                 where user_id = $1 and idem_key = $2 and state = 'IN_PROGRESS' \
                 and created_at = $3",
            )
            .bind(user)
            .bind(key)
            .bind(claimed_at)
            .execute(&mut *conn)
            .await
            .map(drop)
        })
    }

    /// Frees the key, unless the claim was taken over meanwhile.
    async fn release(
        &self,
        user: UserId,
        key: &str,
        claimed_at: Timestamp,
    ) -> Result<(), sqlx::Error> {
        let key = key.to_owned();
        kernel::write_tx!(&self.db, |conn| {
            sqlx::query(
                "delete from idempotency_keys \
                 where user_id = $1 and idem_key = $2 and state = 'IN_PROGRESS' \
                 and created_at = $3",
            )
            .bind(user)
            .bind(key)
            .bind(claimed_at)
            .execute(&mut *conn)
            .await
            .map(drop)
        })
    }

    fn age(&self, created_at: Timestamp) -> Duration {
        Duration::try_from(self.clock.now() - created_at).unwrap_or_default()
    }
}

#[derive(sqlx::FromRow)]
struct Record {
    fingerprint: Vec<u8>,
    state: String,
    response_status: Option<i32>,
    content_type: Option<String>,
    location: Option<String>,
    body: Option<Vec<u8>>,
    created_at: Timestamp,
    effect_id: Option<Uuid>,
    released: bool,
}

/// The parts of a response that a replay gives back.
#[derive(Clone)]
struct Stored {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: Bytes,
}

impl Stored {
    fn into_response(self, replayed: bool) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        let values = [
            (header::CONTENT_TYPE, self.content_type),
            (header::LOCATION, self.location),
        ];
        for (name, value) in values {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(name, v);
            }
        }
        if replayed {
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        }
        response
    }
}

/// What a claim attempt found.
enum Claim {
    /// This request owns the key, claimed at this time: do the work, whose
    /// effect takes this id.
    Owned(Timestamp, IdempotentEffect),
    /// Answer at once (a replay, or a refusal).
    Answer(Response),
}

/// The middleware. Requests without the header, or without a signed-in
/// caller (the handler will answer 401), pass straight through.
pub async fn layer(State(idem): State<Idempotency>, request: Request, next: Next) -> Response {
    let Some(raw_key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    // Authentication answers first: an anonymous caller learns nothing
    // about its key, and the handler refuses it as it would without one.
    let Some(principal) = request.extensions().get::<Principal>().copied() else {
        return next.run(request).await;
    };
    let key = match raw_key.to_str() {
        Ok(k) if (1..=MAX_KEY_LEN).contains(&k.len()) => k.to_owned(),
        _ => {
            return Problem::invalid_field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into_response();
        }
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, idem.max_body).await else {
        return Problem::payload_too_large().into_response();
    };
    let fingerprint = fingerprint(&parts.method, &parts.uri, &body);
    let user = principal.user_id;

    let (claimed_at, effect) = match claim(&idem, user, &key, &fingerprint).await {
        Ok(Claim::Owned(claimed_at, effect)) => (claimed_at, effect),
        Ok(Claim::Answer(response)) => return response,
        Err(e) => return Problem::database(&e).into_response(),
    };

    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(effect);
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        let _ = idem.release(user, &key, claimed_at).await;
        return Problem::internal(&"could not buffer the response").into_response();
    };
    let status = parts.status;
    if status == StatusCode::TOO_MANY_REQUESTS {
        if let Err(e) = idem.release(user, &key, claimed_at).await {
            tracing::error!(error = %e, "could not release an idempotency key");
        }
    } else if status.is_server_error() {
        if let Err(e) = idem.mark_released(user, &key, claimed_at).await {
            tracing::error!(error = %e, "could not release an idempotency key");
        }
    } else {
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let stored = Stored {
            status: status.as_u16(),
            content_type: header(header::CONTENT_TYPE),
            location: header(header::LOCATION),
            body: body.clone(),
        };
        kernel::crash::reached(CrashPoint::AfterWrite);
        if let Err(e) = idem.complete(user, &key, claimed_at, &stored).await {
            tracing::error!(error = %e, "could not record an idempotent response");
        }
        kernel::crash::reached(CrashPoint::AfterAnswer);
    }
    Response::from_parts(parts, Body::from(body))
}

async fn claim(
    idem: &Idempotency,
    user: UserId,
    key: &str,
    fingerprint: &[u8],
) -> Result<Claim, sqlx::Error> {
    // A record can vanish or turn stale between our reads; a few rounds settle it.
    for _ in 0..3 {
        let fresh = IdempotentEffect {
            id: Uuid::now_v7(),
            retry: false,
        };
        if let Some(claimed_at) = idem.claim(user, key, fingerprint, fresh.id).await? {
            return Ok(Claim::Owned(claimed_at, fresh));
        }
        let Some(record) = idem.load(user, key).await? else {
            continue;
        };
        let age = idem.age(record.created_at);
        let expired = age >= idem.retention;
        if !expired && record.fingerprint != fingerprint {
            return Ok(Claim::Answer(
                Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "IDEMPOTENCY_KEY_REUSED",
                    "this Idempotency-Key was used for a different request",
                )
                .into_response(),
            ));
        }
        let unanswered = record.state == "IN_PROGRESS";
        let abandoned = unanswered && (record.released || age >= idem.abandon_after);
        if expired || abandoned {
            // A takeover of an unanswered claim continues its effect.
            let effect = match record.effect_id {
                Some(id) if !expired => IdempotentEffect { id, retry: true },
                _ => fresh,
            };
            if let Some(claimed_at) = idem
                .replace(user, key, fingerprint, record.created_at, effect.id)
                .await?
            {
                return Ok(Claim::Owned(claimed_at, effect));
            }
            continue;
        }
        if unanswered {
            return Ok(Claim::Answer(in_progress()));
        }
        let stored = Stored {
            status: record
                .response_status
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200),
            content_type: record.content_type,
            location: record.location,
            body: Bytes::from(record.body.unwrap_or_default()),
        };
        return Ok(Claim::Answer(stored.into_response(true)));
    }
    Ok(Claim::Answer(in_progress()))
}

fn in_progress() -> Response {
    Problem::conflict(
        "REQUEST_IN_PROGRESS",
        "a request with this Idempotency-Key is still being processed",
    )
    .into_response()
}

fn fingerprint(method: &http::Method, uri: &http::Uri, body: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update(method.as_str())
        .chain_update([0])
        .chain_update(uri.path_and_query().map_or("", |p| p.as_str()))
        .chain_update([0])
        .chain_update(body)
        .finalize()
        .to_vec()
}
