//! A TCP proxy in front of a dependency (PostgreSQL, Redis) that can take it
//! away: [`OutageProxy::cut`] resets every open connection and refuses new
//! ones, as a database that went down does; [`OutageProxy::restore`] lets
//! connections through again. Tests of what clients get during an outage
//! and of recovery without a restart use it with the real service behind.

use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// See the module's documentation.
pub struct OutageProxy {
    addr: String,
    down: Arc<watch::Sender<bool>>,
    accepting: JoinHandle<()>,
}

impl OutageProxy {
    /// Starts a proxy on 127.0.0.1 for `upstream` (`HOST:PORT`). Panics when
    /// no port can be bound: a test cannot go on without it.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the proxy");
        let addr = listener
            .local_addr()
            .expect("the proxy's address")
            .to_string();
        let down = Arc::new(watch::channel(false).0);
        let upstream = upstream.to_owned();
        let accepting = tokio::spawn({
            let down = Arc::clone(&down);
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if *down.borrow() {
                        // Dropped at once: the client sees its connection reset.
                        continue;
                    }
                    let (upstream, mut went_down) = (upstream.clone(), down.subscribe());
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = copy_bidirectional(&mut client, &mut server) => {}
                            _ = went_down.wait_for(|down| *down) => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            down,
            accepting,
        }
    }

    /// `url` (a PostgreSQL or Redis URL) with its host and port replaced
    /// by the proxy's, so that a client of it goes through the proxy.
    #[must_use]
    pub fn route(&self, url: &str) -> String {
        let mut through = url::Url::parse(url).expect("a service URL");
        let (host, port) = self.addr.rsplit_once(':').expect("HOST:PORT");
        through.set_host(Some(host)).expect("a URL with a host");
        through
            .set_port(Some(port.parse().expect("a port")))
            .expect("a URL with a port");
        through.into()
    }

    /// `HOST:PORT` of the service at `url`, for [`OutageProxy::start`].
    #[must_use]
    pub fn upstream_of(url: &str) -> String {
        let url = url::Url::parse(url).expect("a service URL");
        format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default().unwrap_or(5432)
        )
    }

    /// `HOST:PORT` of the proxy.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The dependency goes away: open connections end, new ones are refused.
    pub fn cut(&self) {
        self.down.send_replace(true);
    }

    /// The dependency is back.
    pub fn restore(&self) {
        self.down.send_replace(false);
    }
}

impl Drop for OutageProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}
