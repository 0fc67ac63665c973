//! The SSRF guard: webhooks go to public addresses only (unless the
//! deployment allows private ones). Names are resolved here, and the
//! delivery client connects only to the addresses this resolver returned,
//! so a name that resolves to a public address when checked and to a
//! private one when connecting (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is one a webhook may reach without
/// `webhook_allow_private`: not loopback, link-local (cloud metadata
/// 169.254.169.254 included), private (RFC 1918, ULA fc00::/7), shared,
/// unspecified, broadcast, multicast or reserved.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT
        || (a == 100 && (b & 0xc0) == 64)
        // 192.0.0.0/24, protocol assignments
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15, benchmarking
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4, reserved
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) and IPv4-compatible (::/96) carry an IPv4 address.
    if (segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0; 4])
        || segments[..6] == [0; 6]
    {
        let [.., x, y] = segments;
        let embedded = Ipv4Addr::new((x >> 8) as u8, x as u8, (y >> 8) as u8, y as u8);
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(embedded);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7, unique local
        || (segments[0] & 0xfe00) == 0xfc00
        // fe80::/10, link-local
        || (segments[0] & 0xffc0) == 0xfe80
        // fec0::/10, the old site-local
        || (segments[0] & 0xffc0) == 0xfec0
        // 2001:db8::/32, documentation
        || (segments[0] == 0x2001 && segments[1] == 0x0db8))
}

/// Why a host may not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{host} resolves to {ip}, a loopback, private or link-local address")]
    Private { host: String, ip: IpAddr },
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

/// Resolves hosts and refuses what is not public, unless allowed.
#[derive(Debug, Clone, Copy)]
pub struct AddressGuard {
    pub allow_private: bool,
}

impl AddressGuard {
    /// The addresses `host` may be reached at; an error if it does not
    /// resolve, or if any address it resolves to is not public (a name
    /// that mixes public and private answers is refused as a whole).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = if let Ok(ip) = bare.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else {
            tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| Refused::Unresolved {
                    host: host.to_owned(),
                    reason: e.to_string(),
                })?
                .collect()
        };
        if addrs.is_empty() {
            return Err(Refused::Unresolved {
                host: host.to_owned(),
                reason: "no addresses".into(),
            });
        }
        if !self.allow_private
            && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            return Err(Refused::Private {
                host: host.to_owned(),
                ip: bad.ip(),
            });
        }
        Ok(addrs)
    }

    /// Checks a URL's host (and port) as delivery will see it.
    pub async fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(443);
        self.resolve(host, port).await.map(drop)
    }

    /// This guard as the delivery client's resolver.
    #[must_use]
    pub fn resolver(self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver(self))
    }
}

/// The delivery client's DNS: resolves through the guard, so the client
/// connects only to addresses that passed it.
#[derive(Debug)]
pub struct GuardedResolver(AddressGuard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The connector sets the port; 0 here is replaced.
            let addrs = guard.resolve(&host, 0).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip(s)), "{s}");
        }
        for s in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(s)), "{s}");
        }
    }

    #[tokio::test]
    async fn the_guard_refuses_loopback_unless_allowed() {
        let strict = AddressGuard {
            allow_private: false,
        };
        assert!(matches!(
            strict.resolve("127.0.0.1", 80).await,
            Err(Refused::Private { .. })
        ));
        assert!(matches!(
            strict.resolve("localhost", 80).await,
            Err(Refused::Private { .. })
        ));
        assert!(matches!(
            strict.resolve("[::1]", 80).await,
            Err(Refused::Private { .. })
        ));
        let open = AddressGuard {
            allow_private: true,
        };
        assert_eq!(
            open.resolve("127.0.0.1", 80).await,
            Ok(vec!["127.0.0.1:80".parse().expect("addr")])
        );
    }
}
