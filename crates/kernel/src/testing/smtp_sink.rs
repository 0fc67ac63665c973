//! A real SMTP server for tests: aiosmtpd (Debian `python3-aiosmtpd`) on a
//! free port, printing each message it takes. `.ci/run` sets
//! `STAMPEDE_TEST_SMTP=aiosmtpd`; without it a test says it skipped.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::UnboundedReceiver;

/// The environment variable that asks for the SMTP tests.
pub const SMTP_VAR: &str = "STAMPEDE_TEST_SMTP";

/// aiosmtpd on a free port, its stdout read line by line.
pub struct SmtpSink {
    child: tokio::process::Child,
    port: u16,
    lines: UnboundedReceiver<String>,
}

impl SmtpSink {
    /// Starts the sink; `None` (after saying so) unless [`SMTP_VAR`] asks
    /// for it. Asked for, a sink that cannot start fails the test.
    pub async fn start() -> Option<Self> {
        if std::env::var(SMTP_VAR).ok().as_deref() != Some("aiosmtpd") {
            eprintln!(
                "skipped: set {SMTP_VAR}=aiosmtpd (with python3-aiosmtpd installed) to send \
                 through a real SMTP server"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Debian's python, which has the package; unbuffered, so each
        // message shows as soon as it is taken.
        let python = if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = tokio::process::Command::new(python)
            .args(["-u", "-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("STAMPEDE_TEST_SMTP=aiosmtpd but python3 -m aiosmtpd cannot start");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("aiosmtpd exited at start ({status}): is python3-aiosmtpd installed?");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd does not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(Self { child, port, lines })
    }

    /// The port it listens on, for an `smtp://127.0.0.1:PORT` URL.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The next message the sink printed, header and body lines; fails the
    /// test if none comes within 10 s.
    pub async fn next_message(&mut self) -> Vec<String> {
        let read = async {
            let mut message = Vec::new();
            let mut inside = false;
            while let Some(line) = self.lines.recv().await {
                if line.contains("MESSAGE FOLLOWS") {
                    inside = true;
                } else if line.contains("END MESSAGE") {
                    return message;
                } else if inside {
                    message.push(line);
                }
            }
            panic!("aiosmtpd's output ended: {message:?}");
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("a message within 10 s")
    }

    /// Stops the server, so the next delivery finds nobody listening.
    pub async fn stop(&mut self) {
        self.child.kill().await.expect("stop the sink");
    }
}
