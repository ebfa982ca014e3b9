//! Connectivity diagnosis: what happened while one peer connection came up (or did not),
//! kept per participant in a small bounded record, so that an operator can read why a
//! connection failed or was slow without a packet capture.
//!
//! The core records what it sees with the instants it is handed: the candidates each side
//! offered, the STUN, DTLS and media datagrams that came and went, str0m's ICE state changes,
//! the pair media was sent on, and the error that ended it. [`Diagnosis::failure`] turns that
//! into the most likely reason, in words.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::{Candidate, IceConnectionState};

use crate::{LeaveReason, Transport};

/// At most this many candidates, state changes and pair changes are kept per participant.
const MAX_CANDIDATES: usize = 16;
const MAX_STATES: usize = 16;
const MAX_PAIRS: usize = 4;
/// Longest error text kept.
const MAX_ERROR_CHARS: usize = 200;

/// One ICE candidate, as offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateNote {
    pub addr: SocketAddr,
    /// `host`, `srflx`, `prflx` or `relay`.
    pub kind: String,
    /// `udp`, `tcp`, …
    pub protocol: String,
}

impl CandidateNote {
    pub(crate) fn of(c: &Candidate) -> Self {
        CandidateNote {
            addr: c.addr(),
            kind: c.kind().to_string(),
            protocol: c.proto().to_string(),
        }
    }
}

/// The pair media (DTLS, SRTP) went out on: the server's address and the peer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// UDP, or TCP (ICE-TCP).
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The kind of the remote candidate it matches; `prflx` when the peer never offered that
    /// address (it was learned from its STUN checks).
    pub remote_kind: String,
    /// Since the participant was created.
    pub at: Duration,
}

impl Pair {
    /// Through a TURN server (the peer's relay candidate), or straight to the peer.
    pub fn relayed(&self) -> bool {
        self.remote_kind == "relay"
    }
}

/// What kind of datagram a first byte announces (RFC 7983 demultiplexing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Stun,
    Dtls,
    Media,
    Other,
}

impl Kind {
    pub(crate) fn of(contents: &[u8]) -> Kind {
        match contents.first() {
            Some(0..=3) => Kind::Stun,
            Some(20..=63) => Kind::Dtls,
            Some(128..=191) => Kind::Media,
            _ => Kind::Other,
        }
    }
}

/// The most likely reason a connection failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The peer offered no candidates and none of its STUN checks arrived.
    NoCandidates,
    /// The peer offered candidates, but none of its STUN checks arrived.
    NoStunCheck,
    /// STUN checks arrived and were answered, but no DTLS handshake started.
    NoDtls,
    /// DTLS started but never finished.
    DtlsStalled,
    /// The DTLS handshake failed, with str0m's error.
    DtlsFailed(String),
    /// The peer's certificate does not match the fingerprint in its SDP.
    FingerprintMismatch,
    /// Connected, then the peer stopped answering ICE consent checks.
    ConsentLost { after: Duration },
    /// Connected, then nothing at all arrived from the peer for the silence timeout.
    Silent { after: Duration },
}

impl Failure {
    /// Every reason's short code, for metrics (all series from the start).
    pub const CODES: [&'static str; 8] = [
        "no_candidates",
        "no_stun_check",
        "no_dtls",
        "dtls_stalled",
        "dtls_failed",
        "fingerprint_mismatch",
        "consent_lost",
        "silent",
    ];

    /// A short code, for metrics and machines.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::NoCandidates => "no_candidates",
            Failure::NoStunCheck => "no_stun_check",
            Failure::NoDtls => "no_dtls",
            Failure::DtlsStalled => "dtls_stalled",
            Failure::DtlsFailed(_) => "dtls_failed",
            Failure::FingerprintMismatch => "fingerprint_mismatch",
            Failure::ConsentLost { .. } => "consent_lost",
            Failure::Silent { .. } => "silent",
        }
    }

    /// The stage that failed: `ice` (no working pair), `dtls`, or `consent` (lost later).
    pub fn stage(&self) -> &'static str {
        match self {
            Failure::NoCandidates | Failure::NoStunCheck => "ice",
            Failure::NoDtls
            | Failure::DtlsStalled
            | Failure::DtlsFailed(_)
            | Failure::FingerprintMismatch => "dtls",
            Failure::ConsentLost { .. } | Failure::Silent { .. } => "consent",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoCandidates => write!(
                f,
                "the client offered no ICE candidates and no STUN check from it arrived: \
                 it could not reach the server's address over UDP (a firewall, or the wrong \
                 advertised address)"
            ),
            Failure::NoStunCheck => write!(
                f,
                "the client offered candidates, but no STUN check from it ever arrived: UDP \
                 from the client to the server's advertised address is blocked or that \
                 address is not reachable from the client (set --public-ip, or use TURN)"
            ),
            Failure::NoDtls => write!(
                f,
                "STUN checks arrived and were answered, but DTLS never started: the client \
                 gave up after ICE, or its DTLS packets are lost"
            ),
            Failure::DtlsStalled => write!(
                f,
                "DTLS started but never finished: handshake packets were lost (MTU, a \
                 middlebox), or one side stopped answering"
            ),
            Failure::DtlsFailed(e) => write!(f, "DTLS failed: {e}"),
            Failure::FingerprintMismatch => write!(
                f,
                "the client's DTLS certificate does not match the fingerprint in its SDP"
            ),
            Failure::ConsentLost { after } => write!(
                f,
                "ICE consent lost after {:.1} s connected: the client stopped answering \
                 consent checks (it left, or its network changed)",
                after.as_secs_f64()
            ),
            Failure::Silent { after } => write!(
                f,
                "nothing arrived from the client after {:.1} s connected (it left, or its \
                 network changed)",
                after.as_secs_f64()
            ),
        }
    }
}

/// What one participant's connection went through. Times are since it was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    started: Instant,
    /// The server's candidates, and those the peer offered or trickled (at most 16 kept).
    pub local: Vec<CandidateNote>,
    pub remote: Vec<CandidateNote>,
    /// Remote candidates beyond the first 16, not kept.
    pub remote_dropped: u32,
    /// str0m's ICE state changes, in order (at most 16).
    pub ice_states: Vec<(Duration, String)>,
    /// STUN datagrams received from the peer, and sent to it (checks and answers).
    pub stun_received: u64,
    pub stun_sent: u64,
    pub first_stun_received: Option<Duration>,
    /// The first DTLS datagram either way.
    pub dtls_received: Option<Duration>,
    pub dtls_sent: Option<Duration>,
    /// The pairs DTLS and media went out on, the current one last (at most 4).
    pub pairs: Vec<Pair>,
    /// ICE and DTLS up: media can flow.
    pub connected: Option<Duration>,
    /// The last ICE `disconnected` after connecting.
    pub disconnected: Option<Duration>,
    /// The error that ended it, if one did (DTLS, str0m).
    pub error: Option<String>,
    /// When and why the participant left.
    pub ended: Option<(Duration, LeaveReason)>,
}

impl Diagnosis {
    /// `local`: the server's host candidates, each over UDP and, with `tcp`, over TCP.
    pub(crate) fn new(now: Instant, local: &[SocketAddr], tcp: bool) -> Self {
        let transports: &[Transport] = if tcp {
            &[Transport::Udp, Transport::Tcp]
        } else {
            &[Transport::Udp]
        };
        Diagnosis {
            started: now,
            local: transports
                .iter()
                .flat_map(|t| {
                    local.iter().map(|addr| CandidateNote {
                        addr: *addr,
                        kind: "host".to_owned(),
                        protocol: t.name().to_owned(),
                    })
                })
                .collect(),
            remote: Vec::new(),
            remote_dropped: 0,
            ice_states: Vec::new(),
            stun_received: 0,
            stun_sent: 0,
            first_stun_received: None,
            dtls_received: None,
            dtls_sent: None,
            pairs: Vec::new(),
            connected: None,
            disconnected: None,
            error: None,
            ended: None,
        }
    }

    fn since(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    pub(crate) fn remote_candidate(&mut self, c: &Candidate) {
        let note = CandidateNote::of(c);
        if self.remote.contains(&note) {
            return;
        }
        if self.remote.len() >= MAX_CANDIDATES {
            self.remote_dropped = self.remote_dropped.saturating_add(1);
            return;
        }
        self.remote.push(note);
    }

    pub(crate) fn ice_state(&mut self, now: Instant, state: IceConnectionState) {
        let name = match state {
            IceConnectionState::New => "new",
            IceConnectionState::Checking => "checking",
            IceConnectionState::Connected => "connected",
            IceConnectionState::Completed => "completed",
            IceConnectionState::Disconnected => "disconnected",
        };
        if state == IceConnectionState::Disconnected && self.connected.is_some() {
            self.disconnected = Some(self.since(now));
        }
        if self.ice_states.len() < MAX_STATES {
            let at = self.since(now);
            self.ice_states.push((at, name.to_owned()));
        }
    }

    /// A datagram arrived from the peer.
    pub(crate) fn received(&mut self, now: Instant, kind: Kind) {
        match kind {
            Kind::Stun => {
                self.stun_received += 1;
                if self.first_stun_received.is_none() {
                    self.first_stun_received = Some(self.since(now));
                }
            }
            Kind::Dtls if self.dtls_received.is_none() => {
                self.dtls_received = Some(self.since(now))
            }
            _ => {}
        }
    }

    /// A datagram left for the peer. Anything but STUN leaves on the nominated pair.
    pub(crate) fn sent(
        &mut self,
        now: Instant,
        kind: Kind,
        transport: Transport,
        local: SocketAddr,
        remote: SocketAddr,
    ) {
        match kind {
            Kind::Stun => {
                self.stun_sent += 1;
                return;
            }
            Kind::Dtls if self.dtls_sent.is_none() => self.dtls_sent = Some(self.since(now)),
            _ => {}
        }
        if self
            .pairs
            .last()
            .is_some_and(|p| p.transport == transport && p.local == local && p.remote == remote)
        {
            return;
        }
        let remote_kind = self
            .remote
            .iter()
            .find(|c| c.addr == remote && c.protocol.eq_ignore_ascii_case(transport.name()))
            .map_or_else(|| "prflx".to_owned(), |c| c.kind.clone());
        if self.pairs.len() >= MAX_PAIRS {
            self.pairs.remove(0);
        }
        let at = self.since(now);
        self.pairs.push(Pair {
            transport,
            local,
            remote,
            remote_kind,
            at,
        });
    }

    /// str0m reported an error on this peer's input or output. The first one is kept; a
    /// handshake error seen on a DTLS datagram counts even if the connection goes on.
    pub(crate) fn error(&mut self, e: &dyn fmt::Display) {
        if self.error.is_none() {
            let text: String = e.to_string().chars().take(MAX_ERROR_CHARS).collect();
            self.error = Some(text);
        }
    }

    pub(crate) fn connected(&mut self, now: Instant) {
        if self.connected.is_none() {
            self.connected = Some(self.since(now));
        }
    }

    pub(crate) fn ended(&mut self, now: Instant, reason: LeaveReason) {
        if self.ended.is_none() {
            self.ended = Some((self.since(now), reason));
        }
    }

    /// The pair in use: the last one DTLS or media went out on.
    pub fn pair(&self) -> Option<&Pair> {
        self.pairs.last()
    }

    /// `connecting`, `connected`, `failed`, or `closed` (it connected and left normally, or
    /// left at its own request).
    pub fn state(&self) -> &'static str {
        match (self.ended, self.connected) {
            (None, None) => "connecting",
            (None, Some(_)) => "connected",
            (Some(_), _) if self.failure().is_some() => "failed",
            (Some(_), _) => "closed",
        }
    }

    /// Why it failed, most likely; `None` while it is connecting or connected, and when it
    /// ended normally.
    pub fn failure(&self) -> Option<Failure> {
        let (_, reason) = self.ended?;
        if let Some(connected) = self.connected {
            if reason != LeaveReason::Timeout {
                return None;
            }
            let end = self.ended.map_or(connected, |(at, _)| at);
            let after = self.disconnected.unwrap_or(end).saturating_sub(connected);
            return Some(if self.disconnected.is_some() {
                Failure::ConsentLost { after }
            } else {
                Failure::Silent { after }
            });
        }
        if reason == LeaveReason::Requested {
            return None;
        }
        Some(self.stuck_at())
    }

    /// The stage a connection that has not come up is stuck at.
    pub fn stuck_at(&self) -> Failure {
        if let Some(e) = &self.error {
            if e.contains("fingerprint") {
                return Failure::FingerprintMismatch;
            }
            if self.stun_received > 0 {
                return Failure::DtlsFailed(e.clone());
            }
        }
        if self.stun_received == 0 {
            return if self.remote.is_empty() {
                Failure::NoCandidates
            } else {
                Failure::NoStunCheck
            };
        }
        if self.dtls_received.is_none() && self.dtls_sent.is_none() {
            return Failure::NoDtls;
        }
        Failure::DtlsStalled
    }

    /// How long ICE and DTLS took, once connected.
    pub fn connect_time(&self) -> Option<Duration> {
        self.connected
    }

    /// One line of the facts, for logs.
    pub fn summary(&self) -> String {
        let list = |cs: &[CandidateNote]| {
            if cs.is_empty() {
                return "none".to_owned();
            }
            cs.iter()
                .map(|c| format!("{} {} {}", c.kind, c.protocol, c.addr))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{}ms", d.as_millis()));
        let pair = self.pair().map_or("none".to_owned(), |p| {
            format!(
                "{} {} -> {} ({})",
                p.transport.name(),
                p.local,
                p.remote,
                if p.relayed() { "relay" } else { "direct" }
            )
        });
        format!(
            "local [{}]; remote [{}]; stun {} in / {} out, first in {}; dtls in {} out {}; \
             pair {pair}; connected {}",
            list(&self.local),
            list(&self.remote),
            self.stun_received,
            self.stun_sent,
            ms(self.first_stun_received),
            ms(self.dtls_received),
            ms(self.dtls_sent),
            ms(self.connected),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reasons_follow_the_stage_reached() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut d = Diagnosis::new(t0, &[addr("127.0.0.1:4000")], false);
        d.ended(at(100), LeaveReason::Timeout);
        assert_eq!(d.failure(), Some(Failure::NoCandidates));

        let mut d = Diagnosis::new(t0, &[addr("127.0.0.1:4000")], false);
        let c = Candidate::host(addr("127.0.0.1:5000"), "udp").unwrap();
        d.remote_candidate(&c);
        d.remote_candidate(&c);
        assert_eq!(d.remote.len(), 1, "a candidate is noted once");
        assert_eq!(d.stuck_at(), Failure::NoStunCheck);
        d.received(at(10), Kind::Stun);
        assert_eq!(d.stuck_at(), Failure::NoDtls);
        d.sent(
            at(20),
            Kind::Dtls,
            Transport::Udp,
            addr("127.0.0.1:4000"),
            addr("127.0.0.1:5000"),
        );
        assert_eq!(d.stuck_at(), Failure::DtlsStalled);
        assert_eq!(d.pair().map(|p| p.relayed()), Some(false));
        assert_eq!(d.pair().map(|p| p.remote_kind.as_str()), Some("host"));
        d.error(&"remote fingerprint no match");
        assert_eq!(d.stuck_at(), Failure::FingerprintMismatch);

        let mut d = Diagnosis::new(t0, &[], false);
        d.connected(at(50));
        d.ice_state(at(2050), IceConnectionState::Disconnected);
        d.ended(at(2050), LeaveReason::Timeout);
        assert_eq!(
            d.failure(),
            Some(Failure::ConsentLost {
                after: Duration::from_secs(2)
            })
        );
        assert_eq!(d.state(), "failed");
    }

    #[test]
    fn records_stay_bounded() {
        let t0 = Instant::now();
        let mut d = Diagnosis::new(t0, &[], false);
        for port in 0..100 {
            let c = Candidate::host(addr(&format!("10.0.0.1:{}", 1000 + port)), "udp").unwrap();
            d.remote_candidate(&c);
            d.ice_state(t0, IceConnectionState::Checking);
            d.sent(
                t0,
                Kind::Media,
                Transport::Udp,
                addr("127.0.0.1:1"),
                c.addr(),
            );
        }
        assert_eq!(d.remote.len(), MAX_CANDIDATES);
        assert_eq!(d.remote_dropped, 84);
        assert_eq!(d.ice_states.len(), MAX_STATES);
        assert_eq!(d.pairs.len(), MAX_PAIRS);
    }

    #[test]
    fn a_tcp_pair_is_told_apart_from_udp() {
        let t0 = Instant::now();
        let mut d = Diagnosis::new(t0, &[addr("127.0.0.1:4000")], true);
        let protocols: Vec<&str> = d.local.iter().map(|c| c.protocol.as_str()).collect();
        assert_eq!(protocols, ["udp", "tcp"]);
        // Chromium's active TCP candidate (port 9), then its checks from an ephemeral port.
        let active = Candidate::from_sdp_string(
            "candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active",
        )
        .unwrap();
        d.remote_candidate(&active);
        let (local, remote) = (addr("127.0.0.1:4000"), addr("127.0.0.1:50000"));
        d.sent(t0, Kind::Dtls, Transport::Udp, local, remote);
        d.sent(t0, Kind::Dtls, Transport::Tcp, local, remote);
        assert_eq!(
            d.pairs.len(),
            2,
            "the same addresses over TCP are another pair"
        );
        let pair = d.pair().unwrap();
        assert_eq!(pair.transport, Transport::Tcp);
        assert_eq!(pair.remote_kind, "prflx");
        assert!(
            d.summary()
                .contains("pair tcp 127.0.0.1:4000 -> 127.0.0.1:50000")
        );
    }
}
