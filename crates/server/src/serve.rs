//! The accept loop: HTTP/1.1 connections with the bounds a public server
//! needs against slow and idle clients (slowloris), which `axum::serve`
//! does not set. Request bodies are bounded by `platform::body`.
//!
//! - `header_read_timeout`: a client gets this long to send a request's
//!   headers, counted from the connection's start or the previous answer —
//!   so it is also how long an idle keep-alive connection stays open;
//! - `max_connections`: at most this many served at once; more wait in the
//!   listen backlog until one closes, instead of costing a task each;
//! - shutdown stops accepting, lets in-flight requests finish and closes
//!   idle connections at once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The bounds on each connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then waits
/// for the open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = GracefulShutdown::new();
    // On a task of its own, as axum::serve does: polled at once and always,
    // not only when the accept loop's select happens to reach it (a signal
    // handler installed on first poll would otherwise miss an early signal).
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let shutdown = async move {
        // A dropped sender (the task ended without a word) also stops.
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
    };
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    wait_after_accept_error(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = router
            .clone()
            .map_request(move |mut request: http::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            });
        let connection = connections
            .watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            metrics::gauge!("http_connections_open").increment(1);
            if let Err(e) = connection.await {
                // Timeouts and clients that went away end up here: normal.
                tracing::debug!(error = %e, %remote, "connection closed with an error");
            }
            metrics::gauge!("http_connections_open").decrement(1);
            drop(permit);
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// Errors of one connection (reset before accept) are not the listener's;
/// others (out of file descriptors) would spin the loop, so wait a moment.
async fn wait_after_accept_error(e: &io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
