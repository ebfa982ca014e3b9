//! Which address huddle advertises in its ICE candidates, and the start-up self-check that
//! says so and warns when it cannot work: loopback advertised on a public bind, a private
//! address and no public one.
//!
//! The candidate address is, in order: `--public-ip`; the bind address itself; for a bind of
//! `0.0.0.0`/`[::]`, an address of the host's interfaces (loopback left out, public before
//! private; the others are listed, to pick with `--public-ip`).

use std::net::{IpAddr, SocketAddr};

/// An address the host has on one of its interfaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub ip: IpAddr,
}

/// The host's interface addresses (none if they cannot be read).
pub fn interfaces() -> Vec<Interface> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list
            .into_iter()
            .map(|i| Interface {
                ip: i.ip(),
                name: i.name,
            })
            .collect(),
        Err(e) => {
            tracing::warn!("cannot list the network interfaces: {e}");
            Vec::new()
        }
    }
}

/// What the self-check found for one media socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertised {
    /// The address in the candidates.
    pub ip: IpAddr,
    /// Where it came from: `--public-ip`, `bind address`, `interface eth0`.
    pub source: String,
    /// Why clients may not reach it.
    pub warnings: Vec<String>,
}

/// Why no address can be advertised.
#[derive(Debug, thiserror::Error)]
#[error(
    "UDP bound to {0}, and the host has no non-loopback {1} address to advertise; pass --public-ip"
)]
pub struct NoAddress(pub IpAddr, pub &'static str);

/// Not reachable from the Internet: RFC 1918, unique-local, link-local, CGNAT (RFC 6598).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private() || v4.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments().first().copied().unwrap_or(0);
            (first & 0xfe00) == 0xfc00 || is_link_local_v6(ip)
        }
    }
}

fn is_link_local_v6(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments().first().is_some_and(|s| (s & 0xffc0) == 0xfe80))
}

/// Chooses the advertised address for a socket bound to `bind`.
pub fn choose(
    bind: IpAddr,
    public_ip: Option<IpAddr>,
    interfaces: &[Interface],
) -> Result<Advertised, NoAddress> {
    let (ip, source, others) = if let Some(ip) = public_ip {
        (ip, "--public-ip".to_owned(), Vec::new())
    } else if !bind.is_unspecified() {
        (bind, "the bind address".to_owned(), Vec::new())
    } else {
        let family = |ip: &IpAddr| ip.is_ipv4() == bind.is_ipv4();
        // A [::] socket is dual-stack: IPv6 first, IPv4 if there is none.
        let mut usable: Vec<&Interface> = interfaces
            .iter()
            .filter(|i| !i.ip.is_loopback() && !i.ip.is_unspecified())
            .filter(|i| !is_link_local_v6(i.ip))
            .collect();
        usable.sort_by_key(|i| (!family(&i.ip), is_private(i.ip)));
        if bind.is_ipv4() {
            usable.retain(|i| i.ip.is_ipv4());
        }
        let Some(first) = usable.first() else {
            return Err(NoAddress(bind, if bind.is_ipv4() { "IPv4" } else { "IP" }));
        };
        let others = usable
            .iter()
            .skip(1)
            .map(|i| format!("{} ({})", i.ip, i.name))
            .collect();
        (first.ip, format!("interface {}", first.name), others)
    };
    let mut warnings = Vec::new();
    if ip.is_loopback() && !bind.is_loopback() {
        warnings.push(format!(
            "{ip} is loopback but the socket listens on {bind}: only this host can reach it; \
             set --public-ip to the address clients see"
        ));
    }
    if is_private(ip) {
        warnings.push(format!(
            "{ip} is a private address and no public one is advertised: clients outside this \
             network connect only through TURN (--turn) or with --public-ip behind 1:1 NAT"
        ));
    }
    if !others.is_empty() {
        warnings.push(format!(
            "also on this host, not advertised: {} (choose with --public-ip)",
            others.join(", ")
        ));
    }
    Ok(Advertised {
        ip,
        source,
        warnings,
    })
}

/// The self-check's lines for sockets `bound` and advertised as `advertised`.
pub fn report(bound: &[SocketAddr], advertised: &Advertised) -> Vec<String> {
    let mut lines = Vec::new();
    for bound in bound {
        lines.push(format!(
            "candidate: udp {} typ host (socket {bound}; address from {})",
            SocketAddr::new(advertised.ip, bound.port()),
            advertised.source
        ));
    }
    for w in &advertised.warnings {
        lines.push(format!("warning: {w}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifs() -> Vec<Interface> {
        [
            ("lo", "127.0.0.1"),
            ("eth0", "192.168.1.20"),
            ("eth1", "203.0.113.9"),
            ("eth0", "fe80::1"),
            ("eth0", "2001:db8::9"),
        ]
        .into_iter()
        .map(|(n, ip)| Interface {
            name: n.into(),
            ip: ip.parse().unwrap(),
        })
        .collect()
    }

    #[test]
    fn a_loopback_bind_advertises_itself_without_warnings() {
        let a = choose("127.0.0.1".parse().unwrap(), None, &ifs()).unwrap();
        assert_eq!(a.ip, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn an_unspecified_bind_prefers_a_public_interface_and_leaves_loopback_out() {
        let a = choose("0.0.0.0".parse().unwrap(), None, &ifs()).unwrap();
        assert_eq!(a.ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(a.source, "interface eth1");
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
        assert!(a.warnings[0].contains("192.168.1.20 (eth0)"));
        assert!(!a.warnings[0].contains("127.0.0.1"));
        let a = choose("::".parse().unwrap(), None, &ifs()).unwrap();
        assert_eq!(a.ip, "2001:db8::9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn warnings_for_addresses_that_cannot_work() {
        let private = &ifs()[..2];
        let a = choose("0.0.0.0".parse().unwrap(), None, private).unwrap();
        assert_eq!(a.ip, "192.168.1.20".parse::<IpAddr>().unwrap());
        assert!(
            a.warnings.iter().any(|w| w.contains("private address")),
            "{:?}",
            a.warnings
        );
        let a = choose(
            "0.0.0.0".parse().unwrap(),
            Some("127.0.0.1".parse().unwrap()),
            private,
        )
        .unwrap();
        assert!(
            a.warnings.iter().any(|w| w.contains("is loopback")),
            "{:?}",
            a.warnings
        );
        assert!(choose("0.0.0.0".parse().unwrap(), None, &ifs()[..1]).is_err());
        assert!(is_private("100.64.0.1".parse().unwrap()));
        assert!(is_private("fd00::1".parse().unwrap()));
        assert!(!is_private("8.8.8.8".parse().unwrap()));
    }
}
