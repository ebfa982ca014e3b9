//! Connectivity diagnosis: what the core records of a connection that comes up, and the
//! reason it gives for one that never does.

mod sim;

use std::time::{Duration, Instant};

use huddle_core::{Event, Failure, LeaveReason, MediaKind, Sfu, SfuConfig};
use str0m::media::Direction;
use str0m::{Candidate, Rtc};

use sim::{Net, SFU_ADDR};

#[test]
fn a_good_connection_is_direct_with_its_times() {
    let mut net = Net::new();
    let p = net.publisher("alice", "room");
    let v = net.viewer("bob", "room");
    net.run(Duration::from_secs(2));
    assert!(net.peers[p].connected && net.peers[v].connected);
    for i in [p, v] {
        let peer = &net.peers[i];
        let d = net
            .sfu
            .participant(peer.id.unwrap())
            .unwrap()
            .diagnosis()
            .clone();
        assert_eq!(d.state(), "connected", "{d:?}");
        assert_eq!(d.failure(), None);
        assert_eq!(d.remote.len(), 1, "the offer's host candidate: {d:?}");
        assert_eq!(d.remote[0].kind, "host");
        assert_eq!(d.remote[0].protocol, "udp");
        assert_eq!(d.remote[0].addr, peer.addr);
        assert_eq!(d.local[0].addr, SFU_ADDR.parse().unwrap());
        let pair = d.pair().expect("a pair media went out on");
        assert_eq!(pair.remote, peer.addr);
        assert_eq!(pair.remote_kind, "host");
        assert!(!pair.relayed());
        assert!(d.stun_received > 0 && d.stun_sent > 0, "{d:?}");
        let first_stun = d.first_stun_received.unwrap();
        let dtls = d.dtls_received.or(d.dtls_sent).unwrap();
        let connected = d.connected.unwrap();
        // 5 ms each way on the simulated wire: each step takes at least one of them.
        assert!(first_stun >= Duration::from_millis(5), "{d:?}");
        assert!(dtls >= first_stun && connected > dtls, "{d:?}");
        assert!(
            d.ice_states
                .iter()
                .any(|(_, s)| s == "connected" || s == "completed"),
            "{:?}",
            d.ice_states
        );
    }
    // Leaving normally is no failure.
    let id = net.peers[v].id.unwrap();
    net.leave(v);
    net.run(Duration::from_millis(100));
    let d = net
        .events
        .iter()
        .find_map(|e| match e {
            Event::Diagnosis {
                participant,
                diagnosis,
                ..
            } if *participant == id => Some(diagnosis.clone()),
            _ => None,
        })
        .expect("a diagnosis as the viewer left");
    assert_eq!(d.state(), "closed");
    assert_eq!(d.ended.map(|e| e.1), Some(LeaveReason::Requested));
    assert_eq!(d.failure(), None);
}

#[test]
fn a_peer_whose_checks_never_arrive_is_diagnosed_at_the_timeout() {
    sim::init();
    let t0 = Instant::now();
    let config = SfuConfig {
        connect_timeout: Duration::from_secs(3),
        ..SfuConfig::new(vec![SFU_ADDR.parse().unwrap()])
    };
    let mut sfu = Sfu::new(config);
    // A viewer that offers a host and a relay candidate, then sends nothing.
    let mut rtc = Rtc::builder().set_rtp_mode(true).build(t0);
    rtc.add_local_candidate(Candidate::host("10.1.2.3:5000".parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, _) = api.apply().unwrap();
    let answer = sfu.view(t0, "room", &offer.to_sdp_string()).unwrap();
    sfu.add_remote_candidate(
        t0,
        answer.participant,
        "candidate:2 1 udp 16777215 192.0.2.7 3478 typ relay raddr 0.0.0.0 rport 0",
    )
    .unwrap();

    let so_far = sfu.participant(answer.participant).unwrap().diagnosis();
    assert_eq!(so_far.state(), "connecting");
    assert_eq!(so_far.stuck_at(), Failure::NoStunCheck);
    assert_eq!(so_far.remote.len(), 2, "{so_far:?}");
    assert!(so_far.remote.iter().any(|c| c.kind == "relay"));

    let mut now = t0;
    let mut found = None;
    for _ in 0..10_000 {
        while sfu.poll_transmit().is_some() {}
        while let Some(e) = sfu.poll_event() {
            if let Event::Diagnosis { diagnosis, .. } = e {
                found = Some(diagnosis);
            }
        }
        if found.is_some() {
            break;
        }
        let Some(next) = sfu.poll_timeout() else {
            break;
        };
        now = next.max(now);
        sfu.handle_timeout(now);
    }
    let d = found.expect("a diagnosis once the connect timeout passed");
    assert_eq!(d.state(), "failed");
    assert_eq!(d.failure(), Some(Failure::NoStunCheck));
    assert_eq!(d.failure().unwrap().stage(), "ice");
    assert_eq!(d.stun_received, 0);
    assert!(d.stun_sent > 0, "the server kept checking: {d:?}");
    assert!(d.connected.is_none() && d.pair().is_none());
    let (ended, reason) = d.ended.unwrap();
    assert_eq!(reason, LeaveReason::Timeout);
    assert!(ended >= Duration::from_secs(3), "{ended:?}");
    assert!(
        d.failure()
            .unwrap()
            .to_string()
            .contains("no STUN check from it ever arrived")
    );
}
