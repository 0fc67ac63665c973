//! One keep-alive HTTP/1.1 connection to the target. Requests go out one at
//! a time; the rush opens `--connections` of these, so the number of sockets
//! the server sees is exactly that.

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
    #[error("the connection is closed: {0}")]
    Closed(hyper::Error),
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
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // The connection task ends when the sender is dropped or the socket closes.
        tokio::spawn(connection);
        Ok(Self {
            sender,
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

    /// Sends and reads the whole answer.
    pub async fn send(&mut self, request: Request<Body>) -> Result<Answer, ConnError> {
        self.sender.ready().await.map_err(ConnError::Closed)?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer { status, body })
    }
}
