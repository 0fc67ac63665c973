//! The connection to Redis that the Redis stock gate and rate limiter share.
//!
//! On the hot path a slow answer is worse than a refusal, so every command
//! gives up after [`RESPONSE_TIMEOUT`], and a lost connection is retried
//! briefly in the background rather than making callers wait out a long
//! backoff: while Redis is away, calls fail within about a second.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::stock::Unavailable;

/// How long a command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long opening a connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// A multiplexed, self-reconnecting connection to one Redis server: cheap to
/// clone, and meant to be shared by everything in a process that uses Redis.
#[derive(Clone)]
pub struct RedisConnection(ConnectionManager);

impl RedisConnection {
    /// Connects to `url` (`redis://[:password@]host[:port][/db]`), failing
    /// with [`Unavailable`] if the server cannot be reached now.
    pub async fn connect(url: &str) -> Result<Self, Unavailable> {
        let client = redis::Client::open(connection_info(url)?).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        ConnectionManager::new_with_config(client, config)
            .await
            .map(Self)
            .map_err(unavailable)
    }

    /// Whether Redis answers now (for readiness checks).
    pub async fn ping(&self) -> Result<(), Unavailable> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.handle())
            .await
            .map(drop)
            .map_err(unavailable)
    }

    /// A handle to send commands through; clones share the connection.
    pub(crate) fn handle(&self) -> ConnectionManager {
        self.0.clone()
    }
}

/// Where and how to connect. `TCP_NODELAY` is on: the connection is
/// multiplexed, so a command is often written while the one before it is
/// still unanswered, and Nagle's algorithm would then hold it back until
/// that answer came. redis-rs leaves it off by default. On, the scaled
/// firehose sold 6 % more (docs/BENCHMARKS.md, session 9).
fn connection_info(url: &str) -> Result<redis::ConnectionInfo, Unavailable> {
    let info = redis::IntoConnectionInfo::into_connection_info(url).map_err(unavailable)?;
    Ok(info.set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true)))
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection").finish_non_exhaustive()
    }
}

/// Any Redis failure, as the gates report it.
pub(crate) fn unavailable(e: redis::RedisError) -> Unavailable {
    Unavailable(format!("redis: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_sent_without_waiting_for_the_answers_before_them() {
        let info = connection_info("redis://127.0.0.1:6379/2").expect("a Redis URL");
        assert!(info.tcp_settings().nodelay());
        assert_eq!(info.redis_settings().db(), 2, "the rest of the URL is kept");
    }

    #[test]
    fn a_malformed_url_is_unavailable_with_the_reason() {
        let err = connection_info("http://nowhere").expect_err("not a Redis URL");
        assert!(err.0.starts_with("redis: "), "{err:?}");
    }
}
