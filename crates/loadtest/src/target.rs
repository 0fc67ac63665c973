//! The server under test. Only loopback addresses are accepted: a load test
//! from this tool never leaves the machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::HeaderValue;

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("--url {0:?} is not a URL")]
    Malformed(String),
    #[error("--url must be plain http:// (got {0}://)")]
    Scheme(String),
    #[error("--url must name only a host and port, like http://127.0.0.1:8080 (got {0:?})")]
    Extra(String),
    #[error(
        "--url host {0:?} is not loopback; only 127.0.0.0/8, [::1] and localhost may be load-tested"
    )]
    NotLoopback(String),
}

/// A loopback HTTP server: where to connect and what to send as `Host`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host_header: HeaderValue,
    /// As given, for the report.
    pub url: String,
}

impl Target {
    /// Accepts `http://HOST[:PORT][/]` where HOST is loopback. `localhost`
    /// is taken as 127.0.0.1 without asking a resolver, so no name lookup
    /// can point the tool elsewhere.
    pub fn parse(raw: &str) -> Result<Self, TargetError> {
        let url = url::Url::parse(raw).map_err(|_| TargetError::Malformed(raw.to_owned()))?;
        if url.scheme() != "http" {
            return Err(TargetError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(TargetError::Extra(raw.to_owned()));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
            Some(other) => return Err(TargetError::NotLoopback(other.to_string())),
            None => return Err(TargetError::Malformed(raw.to_owned())),
        };
        if !ip.is_loopback() {
            return Err(TargetError::NotLoopback(ip.to_string()));
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let host_header = HeaderValue::from_str(&authority)
            .map_err(|_| TargetError::Malformed(raw.to_owned()))?;
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            host_header,
            url: raw.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_accepted() {
        for (raw, addr) in [
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("http://127.3.4.5:9/", "127.3.4.5:9"),
            ("http://localhost:8080", "127.0.0.1:8080"),
            ("http://LOCALHOST", "127.0.0.1:80"),
            ("http://[::1]:8080", "[::1]:8080"),
        ] {
            let target = Target::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(target.addr.to_string(), addr, "{raw}");
        }
        let target = Target::parse("http://[::1]:8080").expect("loopback");
        assert_eq!(target.host_header, "[::1]:8080");
    }

    #[test]
    fn anything_off_the_machine_is_refused() {
        for raw in [
            "http://10.0.0.1:8080",
            "http://192.168.1.10",
            "http://8.8.8.8",
            "http://0.0.0.0:8080",
            "http://[::]:8080",
            "http://[2001:db8::1]:8080",
            "http://example.com",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
        ] {
            assert!(
                matches!(Target::parse(raw), Err(TargetError::NotLoopback(_))),
                "{raw}"
            );
        }
    }

    #[test]
    fn only_plain_http_to_a_bare_host_is_accepted() {
        assert!(matches!(
            Target::parse("https://127.0.0.1"),
            Err(TargetError::Scheme(_))
        ));
        for raw in [
            "http://127.0.0.1/api",
            "http://u:p@127.0.0.1",
            "http://127.0.0.1/?x=1",
        ] {
            assert!(
                matches!(Target::parse(raw), Err(TargetError::Extra(_))),
                "{raw}"
            );
        }
        assert!(matches!(
            Target::parse("not a url"),
            Err(TargetError::Malformed(_))
        ));
    }
}
