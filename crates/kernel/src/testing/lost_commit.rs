//! A TCP proxy in front of PostgreSQL that can lose the answer to a commit.
//!
//! Armed, it passes the next `COMMIT` a client sends on to the database (or
//! the next of a transaction that sent given bytes:
//! [`LostCommitProxy::arm_for`]), waits until the database has answered it,
//! and then closes the client's
//! socket without passing the answer on: the transaction is committed and
//! the client hears only that its connection broke. That is the case the
//! "may have committed" paths exist for, made with a real database and a
//! real socket instead of a store that pretends.
//!
//! The proxy reads the client's messages (PostgreSQL's frontend protocol,
//! so the connection must not use TLS: [`LostCommitProxy::url`] asks for
//! none) and passes the database's answers on untouched. sqlx commits with
//! a simple query, `COMMIT`.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The most a test waits for the database to answer a commit it passed on.
const COMMIT_ANSWER_WAIT: Duration = Duration::from_secs(10);

/// See the module's documentation.
pub struct LostCommitProxy {
    url: String,
    trap: Arc<Trap>,
    lost: Arc<AtomicUsize>,
    accepting: JoinHandle<()>,
}

impl LostCommitProxy {
    /// Starts a proxy on 127.0.0.1 for the PostgreSQL database at `url`.
    /// Panics when `url` is not a PostgreSQL URL or no port can be bound:
    /// a test cannot go on without it.
    pub async fn start(url: &str) -> Self {
        let mut through = url::Url::parse(url).expect("a PostgreSQL URL");
        let upstream = format!(
            "{}:{}",
            through.host_str().unwrap_or("127.0.0.1"),
            through.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        through
            .set_host(Some("127.0.0.1"))
            .expect("a URL with a host");
        through.set_port(Some(port)).expect("a URL with a port");
        through.query_pairs_mut().append_pair("sslmode", "disable");
        let (trap, lost) = (Arc::new(Trap::default()), Arc::new(AtomicUsize::new(0)));
        let accepting = tokio::spawn({
            let (trap, lost) = (Arc::clone(&trap), Arc::clone(&lost));
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (upstream, trap, lost) =
                        (upstream.clone(), Arc::clone(&trap), Arc::clone(&lost));
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        // The client's messages are passed on one write
                        // each: with Nagle's algorithm a pipelined message
                        // waited for the one before it to be acknowledged.
                        if client.set_nodelay(true).is_ok() && server.set_nodelay(true).is_ok() {
                            relay(client, server, &trap, &lost).await;
                        }
                    });
                }
            }
        });
        Self {
            url: through.into(),
            trap,
            lost,
            accepting,
        }
    }

    /// The database's URL through the proxy.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next `COMMIT` any client sends loses its answer.
    pub fn arm(&self) {
        self.arm_for(&[]);
    }

    /// The next `COMMIT` of a transaction whose messages carried `needle`
    /// (a parameter's bytes as the client sends them: a UUID's 16, say)
    /// loses its answer; other commits are answered.
    pub fn arm_for(&self, needle: &[u8]) {
        *self.trap.needle() = needle.to_vec();
        self.trap.armed.store(true, Ordering::SeqCst);
    }

    /// Commits whose answers were lost so far.
    #[must_use]
    pub fn answers_lost(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }
}

/// Which commit loses its answer.
#[derive(Default)]
struct Trap {
    armed: AtomicBool,
    /// What the transaction must have sent; empty for any.
    needle: Mutex<Vec<u8>>,
}

impl Trap {
    fn needle(&self) -> MutexGuard<'_, Vec<u8>> {
        self.needle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `message` carries what the trap waits for.
    fn matches(&self, message: &[u8]) -> bool {
        let needle = self.needle();
        needle.is_empty()
            || message
                .windows(needle.len())
                .any(|w| w == needle.as_slice())
    }

    /// Whether the commit now sent, of a transaction that `carried` what
    /// the trap waits for or not, is the one that loses its answer.
    fn springs(&self, carried: bool) -> bool {
        carried && self.armed.swap(false, Ordering::SeqCst)
    }
}

impl Drop for LostCommitProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Passes one connection's bytes both ways until either side closes it, or
/// until an armed proxy has lost a commit's answer.
async fn relay(client: TcpStream, server: TcpStream, trap: &Trap, lost: &AtomicUsize) {
    let (mut from_client, to_client) = client.into_split();
    let (from_server, mut to_server) = server.into_split();
    let (stop, stopped) = oneshot::channel();
    let answers = tokio::spawn(pass_answers(from_server, to_client, stopped));
    if let Ok(Some(commit)) = pass_requests(&mut from_client, &mut to_server, trap).await {
        // The client sent its commit only after reading every answer before
        // it, so stopping the answers now loses none of those.
        let _ = stop.send(());
        if let Ok((mut from_server, to_client)) = answers.await {
            let committed = async {
                to_server.write_all(&commit).await?;
                read_until_ready(&mut from_server).await
            };
            if matches!(
                tokio::time::timeout(COMMIT_ANSWER_WAIT, committed).await,
                Ok(Ok(()))
            ) {
                lost.fetch_add(1, Ordering::SeqCst);
            }
            drop(to_client);
        }
    }
}

/// The database's answers, passed on until `stopped` fires or a side
/// closes; gives its halves back for the lost commit.
async fn pass_answers(
    mut from_server: OwnedReadHalf,
    mut to_client: OwnedWriteHalf,
    stopped: oneshot::Receiver<()>,
) -> (OwnedReadHalf, OwnedWriteHalf) {
    let mut buffer = vec![0u8; 16 * 1024];
    let copy = async {
        loop {
            let read = from_server.read(&mut buffer).await?;
            if read == 0 {
                return Ok::<(), io::Error>(());
            }
            to_client.write_all(&buffer[..read]).await?;
        }
    };
    tokio::select! {
        biased;
        _ = stopped => {}
        _ = copy => {}
    }
    (from_server, to_client)
}

/// The client's messages, passed on one by one. Answers the `COMMIT` that
/// springs the trap, not passed on; `None` when a side closed first.
async fn pass_requests(
    from_client: &mut OwnedReadHalf,
    to_server: &mut OwnedWriteHalf,
    trap: &Trap,
) -> io::Result<Option<Vec<u8>>> {
    // The startup message has no type byte. No request for encryption
    // comes before it: the proxy's URL asks for none.
    let Some(startup) = read_untyped(from_client).await? else {
        return Ok(None);
    };
    to_server.write_all(&startup).await?;
    // Whether the transaction so far carried what the trap waits for.
    let mut carried = false;
    loop {
        let Some(message) = read_typed(from_client).await? else {
            return Ok(None);
        };
        match simple_query(&message) {
            Some(query) if query.eq_ignore_ascii_case("commit") => {
                if trap.springs(carried) {
                    return Ok(Some(message));
                }
                carried = false;
            }
            Some(query) if query.eq_ignore_ascii_case("rollback") => carried = false,
            _ if !carried && trap.armed.load(Ordering::SeqCst) => {
                carried = trap.matches(&message);
            }
            _ => {}
        }
        to_server.write_all(&message).await?;
    }
}

/// The text of a simple query (`COMMIT`, `ROLLBACK`, …), trimmed.
fn simple_query(message: &[u8]) -> Option<&str> {
    if message.first() != Some(&b'Q') {
        return None;
    }
    let text = message.get(5..)?;
    let text = std::str::from_utf8(text.strip_suffix(&[0]).unwrap_or(text)).ok()?;
    Some(text.trim().trim_end_matches(';'))
}

/// A message without a type byte: its length (counting itself), then the
/// rest. `None` at a clean end of the stream.
async fn read_untyped(from: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 4];
    if !read_or_end(from, &mut length).await? {
        return Ok(None);
    }
    let mut message = length.to_vec();
    read_body(from, &mut message, u32::from_be_bytes(length)).await?;
    Ok(Some(message))
}

/// A message with a type byte, then its length (counting itself but not
/// the type), then the rest. `None` at a clean end of the stream.
async fn read_typed(from: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 5];
    if !read_or_end(from, &mut head).await? {
        return Ok(None);
    }
    let mut message = head.to_vec();
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    read_body(from, &mut message, length).await?;
    Ok(Some(message))
}

/// The database's answers up to and including its next `ReadyForQuery`.
async fn read_until_ready(from: &mut (impl AsyncRead + Unpin)) -> io::Result<()> {
    loop {
        match read_typed(from).await? {
            Some(message) if message.first() == Some(&b'Z') => return Ok(()),
            Some(_) => {}
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

/// Fills `buffer`; false if the stream ended before its first byte.
async fn read_or_end(from: &mut (impl AsyncRead + Unpin), buffer: &mut [u8]) -> io::Result<bool> {
    match from.read_exact(buffer).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Appends the `length - 4` bytes after a length field to `message`.
async fn read_body(
    from: &mut (impl AsyncRead + Unpin),
    message: &mut Vec<u8>,
    length: u32,
) -> io::Result<()> {
    let body = usize::try_from(length.saturating_sub(4))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    let start = message.len();
    message.resize(start + body, 0);
    from.read_exact(&mut message[start..]).await?;
    Ok(())
}
