//! Which addresses huddle advertises in its ICE candidates, and the start-up self-check that
//! says so and warns when they cannot work: loopback advertised on a public bind, a private
//! address and no public one.
//!
//! The candidate addresses are, in order: every `--public-ip`; the bind address itself; for a
//! bind of `0.0.0.0`, every IPv4 address of the host's interfaces, for `[::]` (dual-stack)
//! every IPv4 and IPv6 one (loopback and IPv6 link-local left out; public before private).
//! Each address is one host candidate on the worker's port.

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

/// One advertised address and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub ip: IpAddr,
    /// `--public-ip`, `the bind address`, `interface eth0`.
    pub source: String,
}

/// What the self-check found for the media sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertised {
    /// The addresses in the candidates (never empty).
    pub addresses: Vec<Address>,
    /// Why clients may not reach them.
    pub warnings: Vec<String>,
}

impl Advertised {
    /// The advertised addresses on `port`.
    pub fn on_port(&self, port: u16) -> Vec<SocketAddr> {
        self.addresses
            .iter()
            .map(|a| SocketAddr::new(a.ip, port))
            .collect()
    }
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

/// Chooses the advertised addresses for sockets bound to `bind`.
pub fn choose(
    bind: IpAddr,
    public_ip: &[IpAddr],
    interfaces: &[Interface],
) -> Result<Advertised, NoAddress> {
    let addresses: Vec<Address> = if !public_ip.is_empty() {
        public_ip
            .iter()
            .map(|&ip| Address {
                ip,
                source: "--public-ip".to_owned(),
            })
            .collect()
    } else if !bind.is_unspecified() {
        vec![Address {
            ip: bind,
            source: "the bind address".to_owned(),
        }]
    } else {
        // A [::] socket is dual-stack: both families, IPv6 first.
        let family = |ip: &IpAddr| ip.is_ipv4() == bind.is_ipv4();
        let mut usable: Vec<&Interface> = interfaces
            .iter()
            .filter(|i| !i.ip.is_loopback() && !i.ip.is_unspecified())
            .filter(|i| !is_link_local_v6(i.ip))
            .filter(|i| bind.is_ipv6() || i.ip.is_ipv4())
            .collect();
        usable.sort_by_key(|i| (!family(&i.ip), is_private(i.ip)));
        usable.dedup_by_key(|i| i.ip);
        usable
            .into_iter()
            .map(|i| Address {
                ip: i.ip,
                source: format!("interface {}", i.name),
            })
            .collect()
    };
    if addresses.is_empty() {
        return Err(NoAddress(bind, if bind.is_ipv4() { "IPv4" } else { "IP" }));
    }
    let mut warnings = Vec::new();
    for a in addresses.iter().filter(|a| a.ip.is_loopback()) {
        if !bind.is_loopback() {
            warnings.push(format!(
                "{} is loopback but the socket listens on {bind}: only this host can reach it; \
                 set --public-ip to the address clients see",
                a.ip
            ));
        }
    }
    let public = addresses
        .iter()
        .any(|a| !is_private(a.ip) && !a.ip.is_loopback());
    if !public {
        for a in addresses.iter().filter(|a| is_private(a.ip)) {
            warnings.push(format!(
                "{} is a private address and no public one is advertised: clients outside this \
                 network connect only through TURN (--turn) or with --public-ip behind 1:1 NAT",
                a.ip
            ));
        }
    }
    Ok(Advertised {
        addresses,
        warnings,
    })
}

/// The self-check's lines for sockets `bound` and advertised as `advertised`: one line per
/// candidate, then the warnings.
pub fn report(bound: &[SocketAddr], advertised: &Advertised, ice_tcp: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut tcp = Vec::new();
    for bound in bound {
        for a in &advertised.addresses {
            let addr = SocketAddr::new(a.ip, bound.port());
            lines.push(format!(
                "candidate: udp {addr} typ host (socket {bound}; address from {})",
                a.source
            ));
            if ice_tcp {
                tcp.push(format!(
                    "candidate: tcp {addr} typ host tcptype passive (listener {bound}; address from {})",
                    a.source
                ));
            }
        }
    }
    // The UDP candidates first, then the passive TCP ones.
    lines.append(&mut tcp);
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

    fn ips(a: &Advertised) -> Vec<IpAddr> {
        a.addresses.iter().map(|a| a.ip).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_loopback_bind_advertises_itself_without_warnings() {
        let a = choose(ip("127.0.0.1"), &[], &ifs()).unwrap();
        assert_eq!(ips(&a), [ip("127.0.0.1")]);
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn an_unspecified_bind_advertises_every_interface_but_loopback() {
        let a = choose(ip("0.0.0.0"), &[], &ifs()).unwrap();
        assert_eq!(ips(&a), [ip("203.0.113.9"), ip("192.168.1.20")]);
        assert_eq!(a.addresses[0].source, "interface eth1");
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        let a = choose(ip("::"), &[], &ifs()).unwrap();
        assert_eq!(
            ips(&a),
            [ip("2001:db8::9"), ip("203.0.113.9"), ip("192.168.1.20")],
            "dual-stack: both families, link-local left out"
        );
        let lines = report(&["[::]:5000".parse().unwrap()], &a, false);
        assert_eq!(
            lines,
            [
                "candidate: udp [2001:db8::9]:5000 typ host (socket [::]:5000; address from interface eth0)",
                "candidate: udp 203.0.113.9:5000 typ host (socket [::]:5000; address from interface eth1)",
                "candidate: udp 192.168.1.20:5000 typ host (socket [::]:5000; address from interface eth0)",
            ]
        );
        let lines = report(&["[::]:5000".parse().unwrap()], &a, true);
        assert_eq!(lines.len(), 6);
        assert_eq!(
            lines[3],
            "candidate: tcp [2001:db8::9]:5000 typ host tcptype passive (listener [::]:5000; address from interface eth0)"
        );
    }

    #[test]
    fn every_public_ip_is_advertised() {
        let a = choose(ip("::"), &[ip("203.0.113.7"), ip("2001:db8::7")], &ifs()).unwrap();
        assert_eq!(ips(&a), [ip("203.0.113.7"), ip("2001:db8::7")]);
        assert!(a.addresses.iter().all(|a| a.source == "--public-ip"));
        assert_eq!(
            a.on_port(9),
            [
                "203.0.113.7:9".parse::<SocketAddr>().unwrap(),
                "[2001:db8::7]:9".parse().unwrap()
            ]
        );
    }

    #[test]
    fn warnings_for_addresses_that_cannot_work() {
        let private = &ifs()[..2];
        let a = choose(ip("0.0.0.0"), &[], private).unwrap();
        assert_eq!(ips(&a), [ip("192.168.1.20")]);
        assert!(
            a.warnings.iter().any(|w| w.contains("private address")),
            "{:?}",
            a.warnings
        );
        let a = choose(ip("0.0.0.0"), &[ip("127.0.0.1")], private).unwrap();
        assert!(
            a.warnings.iter().any(|w| w.contains("is loopback")),
            "{:?}",
            a.warnings
        );
        assert!(choose(ip("0.0.0.0"), &[], &ifs()[..1]).is_err());
        assert!(is_private(ip("100.64.0.1")));
        assert!(is_private(ip("fd00::1")));
        assert!(!is_private(ip("8.8.8.8")));
    }
}
