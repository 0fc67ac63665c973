//! One keep-alive HTTP/1.1 connection to the target. Requests go out one at
//! a time; the rush opens `--connections` of these, so the number of sockets
//! the server sees is exactly that. The connection is driven by the task
//! that sends on it rather than a task of its own: one wake-up per answer
//! instead of three.

use std::pin::Pin;

use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::target::Target;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The connection was closed before the request went out.
    #[error("the connection is closed")]
    Closed,
    /// The request may have reached the server; no answer came back.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
}

/// A request body; empty for most.
pub type Body = Full<Bytes>;

/// An answer: status and the whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

pub struct Connection {
    sender: SendRequest<Body>,
    /// Reads and writes the socket whenever a request is awaited.
    driver: Pin<Box<http1::Connection<TokioIo<TcpStream>, Body>>>,
    host: HeaderValue,
}

impl Connection {
    pub async fn open(target: &Target) -> Result<Self, ConnError> {
        let connect = |source| ConnError::Connect {
            addr: target.addr,
            source,
        };
        let stream = TcpStream::connect(target.addr).await.map_err(connect)?;
        stream.set_nodelay(true).map_err(connect)?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Self {
            sender,
            driver: Box::pin(driver),
            host: target.host_header.clone(),
        })
    }

    /// A request for `uri` (a path) with `Host` set; the caller adds what
    /// else it needs.
    #[must_use]
    pub fn request(&self, method: Method, uri: Uri, body: Body) -> Request<Body> {
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        request
            .headers_mut()
            .insert(header::HOST, self.host.clone());
        request
    }

    /// Sends and reads the whole answer. After an error the connection is
    /// spent: drop it.
    pub async fn send(&mut self, request: Request<Body>) -> Result<Answer, ConnError> {
        let sender = &mut self.sender;
        let exchange = async move {
            sender.ready().await.map_err(|_| ConnError::Closed)?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok(Answer { status, body })
        };
        tokio::select! {
            biased;
            answer = exchange => answer,
            ended = self.driver.as_mut() => Err(ended.map_or_else(ConnError::Http, |()| ConnError::Closed)),
        }
    }
}
