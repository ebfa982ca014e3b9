//! What independent WebRTC stacks are strict about in the core's SDP and ICE: candidates in
//! every bundled section, the server checking every peer's candidates at once, and peers that
//! announce no candidates at all (OBS).

mod sim;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use huddle_core::{MediaKind, Sfu, SfuConfig, Transport};
use str0m::media::Direction;
use str0m::{Candidate, Rtc};

use sim::{Net, SFU_ADDR};

/// A recvonly audio+video offer from a str0m peer at `addr`, with its host candidate.
fn viewer_offer(now: Instant, addr: SocketAddr) -> String {
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(now);
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, _) = api.apply().unwrap();
    offer.to_sdp_string()
}

/// RFC 5389: a Binding request starts with message type 0x0001 and the magic cookie.
fn is_binding_request(datagram: &[u8]) -> bool {
    datagram.len() >= 20
        && datagram[..2] == [0x00, 0x01]
        && datagram[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

#[test]
fn the_server_checks_a_viewer_before_the_viewer_says_anything() {
    sim::init();
    let now = Instant::now();
    let mut sfu = Sfu::new(SfuConfig::new(vec![SFU_ADDR.parse().unwrap()]));
    let viewer: SocketAddr = "127.0.0.9:5000".parse().unwrap();
    sfu.view(now, "room", &viewer_offer(now, viewer)).unwrap();
    let checks = std::iter::from_fn(|| sfu.poll_transmit())
        .filter(|t| t.destination == viewer && is_binding_request(&t.contents))
        .count();
    assert!(
        checks >= 1,
        "no connectivity check sent to the viewer's candidate"
    );
}

#[test]
fn every_bundled_section_of_an_answer_carries_the_candidates() {
    sim::init();
    let now = Instant::now();
    let mut sfu = Sfu::new(SfuConfig::new(vec![SFU_ADDR.parse().unwrap()]));
    let answer = sfu
        .view(
            now,
            "room",
            &viewer_offer(now, "127.0.0.9:5000".parse().unwrap()),
        )
        .unwrap();
    let sections: Vec<&str> = answer.sdp.split("\r\nm=").skip(1).collect();
    assert_eq!(sections.len(), 2, "{}", answer.sdp);
    for s in sections {
        assert_eq!(
            s.matches("127.0.0.1 4000 typ host").count(),
            1,
            "section without the server's candidate:\n{s}"
        );
        assert_eq!(s.matches("a=end-of-candidates").count(), 1, "{s}");
    }
}

/// The priority of the first candidate line in `section` that contains `what`.
fn priority(section: &str, what: &str) -> u32 {
    let line = section
        .lines()
        .find(|l| l.starts_with("a=candidate:") && l.contains(what))
        .unwrap_or_else(|| panic!("no candidate with {what:?}:\n{section}"));
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn ice_tcp_answers_carry_a_passive_tcp_candidate_below_udp_and_take_active_ones() {
    sim::init();
    let now = Instant::now();
    let mut sfu = Sfu::new(SfuConfig {
        ice_tcp: true,
        ..SfuConfig::new(vec![SFU_ADDR.parse().unwrap()])
    });
    // Chromium offers its TCP candidates as active, on the discard port 9.
    let viewer: SocketAddr = "127.0.0.9:5000".parse().unwrap();
    let offer = viewer_offer(now, viewer).replacen(
        "a=candidate:",
        "a=candidate:9 1 tcp 1518280447 127.0.0.9 9 typ host tcptype active\r\na=candidate:",
        1,
    );
    let answer = sfu.view(now, "room", &offer).unwrap();
    for s in answer.sdp.split("\r\nm=").skip(1) {
        assert_eq!(
            s.matches("127.0.0.1 4000 typ host tcptype passive").count(),
            1,
            "{s}"
        );
        let (udp, tcp) = (priority(s, " udp "), priority(s, "tcptype passive"));
        assert!(udp > tcp, "UDP ({udp}) must rank above TCP ({tcp})");
    }
    let transmits: Vec<_> = std::iter::from_fn(|| sfu.poll_transmit()).collect();
    assert!(
        transmits
            .iter()
            .any(|t| t.transport == Transport::Udp && t.destination == viewer),
        "the UDP candidate is checked"
    );
    assert!(
        transmits
            .iter()
            .filter(|t| t.destination.port() == 9)
            .all(|t| t.transport == Transport::Tcp),
        "nothing goes over UDP to an active TCP candidate"
    );
}

#[test]
fn a_publisher_that_announces_no_candidates_connects_and_is_forwarded() {
    // OBS: no a=candidate in the offer, no trickle; the server learns its address from its
    // first check (peer-reflexive) and answers with its own candidates.
    let mut net = Net::new();
    let p = net.publisher_with("obs", "room", |offer| {
        offer
            .lines()
            .filter(|l| !l.starts_with("a=candidate:"))
            .map(|l| format!("{l}\r\n"))
            .collect()
    });
    let v = net.viewer("viewer", "room");
    net.run(Duration::from_secs(3));
    assert!(net.peers[p].connected && net.peers[v].connected);
    let video = net.peers[v].received(MediaKind::Video).count();
    assert!(video > 100, "viewer got {video} video packets");
}
