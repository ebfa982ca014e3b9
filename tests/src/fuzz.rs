//! The fuzz targets' bodies (`fuzz/`, run with cargo-fuzz on a nightly toolchain), shared
//! with the suite's short version, which replays the seed corpus and every past finding on
//! stable (`tests/tests/fuzz_corpus.rs`). Each takes arbitrary bytes and must not panic.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use huddle_core::{Datagram, ParticipantId, Role, Sfu, SfuConfig, Transport};
use huddle_server::signaling::messages::ClientMessage;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};

const SFU: &str = "127.0.0.1:4000";
const PEER: &str = "127.0.0.1:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9)))
}

/// A real recvonly offer (video and audio) from a str0m peer at [`PEER`].
fn viewer_offer() -> Option<String> {
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr(PEER), "udp").ok()?);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    Some(api.apply()?.0.to_sdp_string())
}

/// An `Sfu` with a viewer admitted: it already checked the viewer's address, so datagrams
/// from there route to the viewer.
fn sfu_with_viewer(now: Instant) -> Option<(Sfu, ParticipantId)> {
    let mut sfu = Sfu::new(SfuConfig::new(vec![addr(SFU)]));
    let answer = sfu.view(now, "room", &viewer_offer()?).ok()?;
    while sfu.poll_transmit().is_some() {}
    Some((sfu, answer.participant))
}

/// Offers: an answer or an error, for every role.
pub fn offer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = SfuConfig::new(vec![addr(SFU)]);
    for role in [Role::Publisher, Role::Viewer, Role::Member] {
        let _ = huddle_core::prepare(&config, Instant::now(), role, Some("m1"), text);
    }
    let mut sfu = Sfu::new(config);
    if sfu.publish(Instant::now(), "room", text).is_ok() {
        sfu.handle_timeout(Instant::now() + Duration::from_millis(50));
        while sfu.poll_transmit().is_some() {}
    }
}

/// Trickle fragments and single candidates for a joined participant.
pub fn fragment(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = Instant::now();
    let Some((mut sfu, id)) = sfu_with_viewer(now) else {
        return;
    };
    let _ = sfu.patch(now, id, text);
    let _ = sfu.add_remote_candidate(now, id, text);
    sfu.handle_timeout(now + Duration::from_millis(50));
    while sfu.poll_transmit().is_some() {}
}

/// Room signaling JSON: a message or a refusal; what parses writes back out.
pub fn signaling(data: &[u8]) {
    if let Ok(msg) = serde_json::from_slice::<ClientMessage>(data) {
        assert!(
            serde_json::to_string(&msg).is_ok(),
            "a parsed message serializes"
        );
    }
}

/// Datagrams (split at 0xfe) from a joined peer's address and from a stranger.
pub fn datagram(data: &[u8]) {
    let now = Instant::now();
    let Some((mut sfu, _)) = sfu_with_viewer(now) else {
        return;
    };
    let (peer, stranger, destination) = (addr(PEER), addr("127.0.0.9:9"), addr(SFU));
    for (i, chunk) in data.split(|b| *b == 0xfe).enumerate() {
        let source = if i % 4 == 3 { stranger } else { peer };
        sfu.handle_datagram(
            now,
            Datagram {
                transport: Transport::Udp,
                source,
                destination,
                contents: chunk,
            },
        );
    }
    sfu.handle_timeout(now + Duration::from_secs(1));
    while sfu.poll_transmit().is_some() {}
    assert!(sfu.stats().participants <= 1);
}
