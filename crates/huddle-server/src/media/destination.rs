//! Which of a worker's advertised addresses a received datagram was sent to: the core (and
//! str0m's ICE agent) match a datagram's destination against the host candidates, so it must
//! be the candidate the peer actually used.
//!
//! The choice is by the source's address family (sources are canonical, see
//! [`crate::udp::canonical`]): an IPv4 source reached the first advertised IPv4 address, an
//! IPv6 source the first advertised IPv6 one. With several addresses of one family (a host
//! with several interfaces, or several `--public-ip` of a family) datagrams sent to the
//! others are attributed to the first (the kernel's `IP_PKTINFO` would tell them apart, but
//! only for addresses on this host, not behind 1:1 NAT). Replies leave from the address the
//! kernel routes from, so such peers usually still connect; their selected pair and their
//! diagnosis name the first address.

use std::net::SocketAddr;

/// A worker's advertised addresses, by family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Destinations {
    first: SocketAddr,
    v4: Option<SocketAddr>,
    v6: Option<SocketAddr>,
}

impl Destinations {
    /// None when nothing is advertised.
    pub(crate) fn new(advertised: &[SocketAddr]) -> Option<Self> {
        Some(Destinations {
            first: *advertised.first()?,
            v4: advertised.iter().copied().find(SocketAddr::is_ipv4),
            v6: advertised.iter().copied().find(SocketAddr::is_ipv6),
        })
    }

    /// The advertised address a datagram from `source` was sent to (the first advertised
    /// when none is of its family: the core then finds no candidate for it and drops it).
    pub(crate) fn for_source(&self, source: SocketAddr) -> SocketAddr {
        let family = if source.is_ipv4() { self.v4 } else { self.v6 };
        family.unwrap_or(self.first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_destination_is_the_advertised_address_of_the_source_family() {
        let d = Destinations::new(&[
            a("[2001:db8::7]:5000"),
            a("203.0.113.7:5000"),
            a("198.51.100.7:5000"),
        ])
        .unwrap();
        assert_eq!(d.for_source(a("192.0.2.1:40000")), a("203.0.113.7:5000"));
        assert_eq!(
            d.for_source(a("[2001:db8::1]:40000")),
            a("[2001:db8::7]:5000")
        );
        let v4_only = Destinations::new(&[a("127.0.0.1:5000")]).unwrap();
        assert_eq!(v4_only.for_source(a("[::1]:40000")), a("127.0.0.1:5000"));
        assert!(Destinations::new(&[]).is_none());
    }
}
