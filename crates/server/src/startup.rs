//! Start-up and shutdown. [`Application::build`] binds the listener (port 0
//! in tests), starts the modules and returns; [`Application::run_until`]
//! serves until a shutdown signal, lets in-flight requests finish, stops
//! background work and closes the pool.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;
use crate::modules::Modules;
use crate::workers::{spawn_background, stopped};

/// Why the server could not start. Each says what to fix in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Database(#[from] kernel::db::DbError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the JWT key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("identity: {0}")]
    Identity(String),
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
    #[error("stock gate: {0}")]
    StockGate(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("webhooks: {0}")]
    Webhooks(String),
    #[error("park: {0}")]
    Park(String),
}

impl From<identity::IdentityError> for StartError {
    fn from(e: identity::IdentityError) -> Self {
        match e {
            identity::IdentityError::Invalid(errors) => Self::Identity(
                errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => Self::Identity(other.to_string()),
        }
    }
}

/// A built server, bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// `/metrics` on a listener of its own, when `metrics_listen` is set.
    metrics: Option<(TcpListener, Router)>,
    modules: Modules,
    grace: Duration,
    limits: crate::serve::ConnectionLimits,
    /// Age at which the sweeper checks a stock gate's lease.
    lease_age: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        // Bind first: a taken port is reported before any other work.
        let listener = bind(settings.listen_addr()?).await?;
        let metrics_listener = match settings.metrics_addr()? {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let modules = Modules::start(&settings).await?;
        if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password)
            && modules
                .identity
                .ensure_admin(email, password.expose())
                .await?
        {
            tracing::info!(email = %email, "created the first admin");
        }
        let router = crate::router::router(&settings, &modules);
        let metrics =
            metrics_listener.map(|listener| (listener, crate::ops::metrics_router(&modules)));
        Ok(Self {
            listener,
            router,
            metrics,
            modules,
            grace: Duration::from_secs(settings.shutdown_grace_seconds),
            limits: crate::serve::ConnectionLimits {
                header_read_timeout: Duration::from_secs(settings.header_read_timeout_seconds),
                max_connections: settings.max_connections,
            },
            lease_age: Duration::from_secs(settings.stock_lease_seconds),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The metrics listener's address, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.metrics.as_ref().map(|(l, _)| l.local_addr())
    }

    /// Serves until `shutdown` completes, then drains and closes.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let background = spawn_background(&self.modules, self.lease_age, stop_rx.clone());
        let metrics = self.metrics.map(|(listener, router)| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stopped(&mut stop).await })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the metrics listener failed");
                }
            })
        });
        let mut drained = stop_rx.clone();
        let server = crate::serve::serve(self.listener, self.router, self.limits, async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
        });
        let grace = self.grace;
        let served = tokio::select! {
            r = server => r,
            () = async move {
                stopped(&mut drained).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("in-flight requests did not finish within the grace period");
                Ok(())
            }
        };
        for task in background.into_iter().chain(metrics) {
            let _ = task.await;
        }
        self.modules.db.close().await;
        tracing::info!("stopped");
        served
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}
