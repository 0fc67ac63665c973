//! Slow and idle clients over real sockets: the server cuts off a client
//! that does not finish its headers or body in time, closes idle keep-alive
//! connections, answers an oversized `Expect: 100-continue` at once, and
//! serves no more than `max_connections` at a time.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use crate::helpers::TestApp;

/// Longer than any bound below: a socket not closed by then never will be.
const PATIENCE: Duration = Duration::from_secs(10);

async fn short_bounds() -> TestApp {
    TestApp::spawn_with(|s| {
        s.header_read_timeout_seconds = 1;
        s.body_read_timeout_seconds = 1;
        s.body_limit_bytes = 1024;
    })
    .await
}

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connects")
}

/// Reads until the server closes the connection; what it sent on the way.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        match timeout(PATIENCE, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {PATIENCE:?}; it sent {:?}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let app = short_bounds().await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    let seen = read_until_closed(&mut stream).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed too soon"
    );
    assert!(!seen.contains("200 OK"), "{seen}");
    app.stop().await;
}

#[tokio::test]
async fn headers_dribbled_byte_by_byte_are_cut_off() {
    let app = short_bounds().await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("writes");
    let dribble = async {
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            sleep(Duration::from_millis(200)).await;
        }
    };
    // The dribble alone would take 10 s; the server ends it after about 1 s.
    let _ = timeout(Duration::from_secs(4), dribble).await;
    let seen = read_until_closed(&mut stream).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "not cut off in time"
    );
    assert!(!seen.contains("200 OK"), "{seen}");
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_answer() {
    let app = short_bounds().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("writes");
    let seen = read_until_closed(&mut stream).await;
    assert!(
        seen.starts_with("HTTP/1.1 200"),
        "the request was served: {seen}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_a_closed_connection() {
    let app = short_bounds().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"email\":",
        )
        .await
        .expect("writes");
    let seen = read_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("REQUEST_TIMEOUT"), "{seen}");
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_expect_continue_is_refused_before_the_body() {
    let app = short_bounds().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            b"POST /api/v1/auth/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .expect("writes");
    let mut buffer = [0_u8; 4096];
    let n = timeout(Duration::from_secs(2), stream.read(&mut buffer))
        .await
        .expect("answered at once, without waiting for the body")
        .expect("reads");
    let answer = String::from_utf8_lossy(&buffer[..n]);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "no 100 Continue first: {answer}"
    );
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with(|s| {
        s.max_connections = 2;
        s.header_read_timeout_seconds = 30;
    })
    .await;
    let first = connect(&app).await;
    let second = connect(&app).await;
    // Let the server accept both before the third arrives.
    sleep(Duration::from_millis(200)).await;
    let mut third = connect(&app).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let mut buffer = [0_u8; 1024];
    assert!(
        timeout(Duration::from_millis(700), third.read(&mut buffer))
            .await
            .is_err(),
        "a third connection was served while two were open"
    );
    drop(first);
    let n = timeout(PATIENCE, third.read(&mut buffer))
        .await
        .expect("served once a connection closed")
        .expect("reads");
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    drop(second);
    app.stop().await;
}
