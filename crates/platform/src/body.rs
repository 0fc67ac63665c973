//! Request bodies, bounded in size and in time before any handler reads
//! them: a declared `Content-Length` over the limit is 413 at once (so a
//! client sending `Expect: 100-continue` is answered before it sends the
//! body), and a body still arriving after `read_timeout` — a client
//! dribbling bytes to hold a connection — ends the request with 408.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use http_body::{Frame, SizeHint};
use kernel::Problem;
use tokio::time::Sleep;

/// The bounds on every request body.
#[derive(Debug, Clone, Copy)]
pub struct BodyBounds {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

/// Middleware: refuses a declared oversized body unread and bounds the time
/// spent receiving the rest.
pub async fn bound_body(
    State(bounds): State<BodyBounds>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > bounds.max_bytes as u64) {
        return closing(Problem::payload_too_large().into_response());
    }
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let request = request.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(bounds.read_timeout)),
            expired: Arc::clone(&expired),
        })
    });
    let response = next.run(request).await;
    if expired.load(Ordering::Acquire) {
        return closing(
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                "the request body did not arrive in time",
            )
            .into_response(),
        );
    }
    response
}

/// The connection is not worth keeping: what is left of the body is unread.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A body that fails once its deadline passes, and says so in `expired`.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::middleware::from_fn_with_state;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    fn app(read_timeout: Duration) -> Router {
        Router::new()
            .route(
                "/",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(from_fn_with_state(
                BodyBounds {
                    max_bytes: 16,
                    read_timeout,
                },
                bound_body,
            ))
    }

    #[tokio::test]
    async fn a_declared_oversized_body_is_refused_unread() {
        let (_sender, body) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, axum::Error>>(1);
        let never_sent = Body::new(http_body_util::StreamBody::new(tokio_stream_from(body)));
        let request = http::Request::post("/")
            .header(header::CONTENT_LENGTH, "17")
            .header(header::EXPECT, "100-continue")
            .body(never_sent)
            .expect("a request");
        let response = app(Duration::from_secs(5))
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_ends_in_408() {
        let (sender, body) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, axum::Error>>(1);
        sender
            .send(Ok(Frame::data(Bytes::from_static(b"abc"))))
            .await
            .expect("sent");
        let request = http::Request::post("/")
            .body(Body::new(http_body_util::StreamBody::new(
                tokio_stream_from(body),
            )))
            .expect("a request");
        let response = app(Duration::from_millis(100))
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        drop(sender);
    }

    #[tokio::test]
    async fn a_body_in_time_reaches_the_handler() {
        let request = http::Request::post("/")
            .body(Body::from("hello"))
            .expect("a request");
        let response = app(Duration::from_secs(5))
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 64)
            .await
            .expect("a body");
        assert_eq!(&body[..], b"5");
    }

    /// A stream over a channel's receiver, without another dependency.
    fn tokio_stream_from<T>(
        mut receiver: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> {
        futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
    }
}
