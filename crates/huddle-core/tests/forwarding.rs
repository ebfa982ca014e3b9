//! The core driven by real str0m peers over an in-memory network and a virtual clock.

mod sim;

use std::collections::HashSet;
use std::time::Duration;

use huddle_core::{Event, LeaveReason, MediaKind, SfuStats};
use sim::{Net, PACKETS_PER_FRAME, vp8_payload};

fn assert_contiguous(seqs: &[u64], what: &str) {
    for w in seqs.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "{what}: sequence numbers not contiguous: {} then {}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn publisher_reaches_every_viewer_intact() {
    let mut net = Net::new();
    let p = net.publisher("pub", "room");
    let v1 = net.viewer("v1", "room");
    let v2 = net.viewer("v2", "room");
    net.run(Duration::from_secs(5));

    let sent = net.peers[p].sent_video.len();
    assert!(sent > 300, "publisher sent {sent} video packets");
    for v in [v1, v2] {
        let peer = &net.peers[v];
        assert!(peer.connected, "{} connected", peer.name);
        let video: Vec<_> = peer.received(MediaKind::Video).collect();
        // Everything from the first forwarded keyframe on arrives.
        assert!(
            video.len() * 100 >= sent * 99 - 300 * 100 / 100,
            "{}: {} of {sent}",
            peer.name,
            video.len()
        );
        let seqs: Vec<u64> = video.iter().map(|g| g.seq).collect();
        assert_contiguous(&seqs, peer.name);
        assert!(seqs[0] < 65_536, "outgoing numbering starts near zero");
        assert_eq!(
            video.iter().map(|g| g.ssrc).collect::<HashSet<_>>().len(),
            1
        );
        // Payloads are byte-identical to what the publisher wrote.
        let sent_set: HashSet<&Vec<u8>> = net.peers[p].sent_video.iter().collect();
        assert!(
            video.iter().all(|g| sent_set.contains(&g.payload)),
            "payloads identical"
        );
        assert!(huddle_core::keyframe::is_keyframe_start(
            huddle_core::Codec::Vp8,
            &video[0].payload
        ));
        let audio = peer.received(MediaKind::Audio).count();
        assert!(audio >= 240, "{}: {audio} audio packets in 5 s", peer.name);
    }
    let stats = net.sfu.stats();
    assert_eq!(
        (stats.participants, stats.tracks, stats.subscriptions),
        (3, 2, 4)
    );
}

#[test]
fn late_viewer_starts_on_a_keyframe_at_once_even_if_the_publisher_ignores_pli() {
    let mut net = Net::new();
    let p = net.publisher("obs", "room");
    net.peers[p].honour_pli = false;
    net.peers[p].gop_frames = 240; // an 8 s GOP
    net.run(Duration::from_secs(3));
    let v = net.viewer("late", "room");
    let joined = net.now;
    net.run(Duration::from_secs(2));

    let peer = &net.peers[v];
    let first = peer
        .received(MediaKind::Video)
        .next()
        .expect("late viewer got video");
    assert!(
        first.at - joined < Duration::from_millis(500),
        "first video after {:?}",
        first.at - joined
    );
    assert!(huddle_core::keyframe::is_keyframe_start(
        huddle_core::Codec::Vp8,
        &first.payload
    ));
    // The replayed GOP and the live packets after it form one contiguous stream.
    let seqs: Vec<u64> = peer.received(MediaKind::Video).map(|g| g.seq).collect();
    assert_contiguous(&seqs, "late viewer");
    assert!(
        net.peers[p].keyframe_requests >= 1,
        "the publisher was asked for a keyframe"
    );
}

#[test]
fn keyframe_requests_are_merged_and_throttled() {
    let mut net = Net::new();
    let p = net.publisher("pub", "room");
    let viewers: Vec<usize> = (0..4).map(|_| net.viewer("v", "room")).collect();
    net.run(Duration::from_secs(1));
    let before = net.peers[p].keyframe_requests;
    for &v in &viewers {
        net.request_keyframe_from_viewer(v);
    }
    net.run(Duration::from_millis(1200));
    let asked = net.peers[p].keyframe_requests - before;
    assert!(
        (1..=3).contains(&asked),
        "4 viewers' PLIs within 1.2 s became {asked} request(s)"
    );
}

#[test]
fn viewers_switch_to_the_next_publisher_without_a_seam() {
    let mut net = Net::new();
    let a = net.publisher("a", "room");
    let v = net.viewer("v", "room");
    net.run(Duration::from_secs(2));
    let b = net.publisher("b", "room");
    net.run(Duration::from_secs(1));
    net.leave(a);
    net.run(Duration::from_secs(2));

    let peer = &net.peers[v];
    let video: Vec<_> = peer.received(MediaKind::Video).collect();
    let seqs: Vec<u64> = video.iter().map(|g| g.seq).collect();
    assert_contiguous(&seqs, "across the switch");
    assert_eq!(
        video.iter().map(|g| g.ssrc).collect::<HashSet<_>>().len(),
        1,
        "one SSRC for the viewer"
    );
    let from_b: HashSet<&Vec<u8>> = net.peers[b].sent_video.iter().collect();
    assert!(
        video.iter().any(|g| from_b.contains(&g.payload)),
        "viewer now sees b"
    );
    // Timestamps keep moving forward across the switch.
    let ts: Vec<u32> = video.iter().map(|g| g.ts).collect();
    assert!(
        ts.windows(2)
            .all(|w| w[1].wrapping_sub(w[0]) < u32::MAX / 2)
    );
}

#[test]
fn viewer_before_publisher_gets_media_when_it_arrives() {
    let mut net = Net::new();
    let v = net.viewer("early", "room");
    net.run(Duration::from_secs(1));
    assert!(net.peers[v].connected);
    net.publisher("pub", "room");
    net.run(Duration::from_secs(2));
    assert!(net.peers[v].received(MediaKind::Video).count() > 100);
    assert!(net.peers[v].received(MediaKind::Audio).count() > 50);
}

#[test]
fn everyone_leaving_leaves_nothing_behind() {
    let mut net = Net::new();
    let p = net.publisher("pub", "room");
    let v = net.viewer("v", "room");
    net.run(Duration::from_secs(1));
    net.leave(v);
    net.leave(p);
    net.run(Duration::from_secs(1));
    let s = net.sfu.stats();
    assert_eq!(
        SfuStats {
            timer_entries: 0,
            ..s
        },
        SfuStats {
            packets_forwarded: s.packets_forwarded,
            packets_received: s.packets_received,
            keyframe_requests_sent: s.keyframe_requests_sent,
            datagrams_unrouted: s.datagrams_unrouted,
            datagrams_malformed: s.datagrams_malformed,
            timer_wakeups: s.timer_wakeups,
            timer_entries: 0,
            ..SfuStats::default()
        }
    );
    assert!(net.events.iter().any(|e| matches!(
        e,
        Event::Left {
            reason: LeaveReason::Requested,
            ..
        }
    )));
}

#[test]
fn a_peer_that_goes_silent_is_removed() {
    let mut net = Net::new();
    let p = net.publisher("pub", "room");
    let v = net.viewer("v", "room");
    net.run(Duration::from_secs(1));
    net.peers[v].unplugged = true;
    let id = net.peers[v].id.unwrap();
    let mut waited = 0;
    while net.sfu.participant(id).is_some() && waited < 30 {
        net.run(Duration::from_secs(1));
        waited += 1;
    }
    assert!(waited <= 8, "a silent peer was held for {waited} s");
    assert!(net.events.iter().any(|e| matches!(e, Event::Left { participant, reason: LeaveReason::Timeout, .. } if *participant == id)));
    assert!(net.sfu.participant(net.peers[p].id.unwrap()).is_some());
    assert_eq!(net.sfu.stats().subscriptions, 0);
}

#[test]
fn a_peer_that_never_connects_is_removed() {
    let mut net = Net::new();
    let v = net.viewer("v", "room");
    net.peers[v].unplugged = true;
    net.run(Duration::from_secs(25));
    assert_eq!(net.sfu.stats().participants, 0);
    assert_eq!(net.sfu.stats().rooms, 0);
}

#[test]
fn garbage_is_counted_and_dropped() {
    let mut net = Net::new();
    let p = net.publisher("pub", "room");
    let v = net.viewer("v", "room");
    net.run(Duration::from_secs(1));
    net.inject("127.0.0.99:1", b"hello");
    net.inject("127.0.0.99:1", &[0u8; 1]);
    net.inject("127.0.0.99:1", &[]);
    // Garbage from a connected peer's own address goes to str0m, which rejects it.
    let from = net.peers[p].addr.to_string();
    net.inject(&from, &[0x80, 0x60, 0, 1]);
    net.inject(&from, &[0x16, 0xfe, 0xfd, 0, 0]);
    net.inject(&from, &[0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42]);
    let s = net.sfu.stats();
    assert!(s.datagrams_unrouted >= 3);
    net.run(Duration::from_secs(1));
    assert!(
        net.peers[v].received(MediaKind::Video).count() > 50,
        "media keeps flowing"
    );
}

#[test]
fn random_datagrams_from_a_connected_peer_never_break_the_core() {
    let mut net = Net::new();
    let p = net.publisher("pub", "room");
    let v = net.viewer("v", "room");
    net.run(Duration::from_secs(1));
    let from = net.peers[p].addr.to_string();
    // A small deterministic generator: first bytes across STUN, DTLS, RTP/RTCP and beyond.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..3000u64 {
        let len = (next() % 1400) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(first) = d.first_mut() {
            *first = [0x00, 0x01, 0x16, 0x17, 0x80, 0x81, 0x90, 0xbf, 0xff][(i % 9) as usize];
        }
        net.inject(&from, &d);
    }
    let before = net.peers[v].received(MediaKind::Video).count();
    net.run(Duration::from_secs(1));
    assert!(
        net.peers[v].received(MediaKind::Video).count() > before + 50,
        "media keeps flowing"
    );
    assert_eq!(net.sfu.stats().participants, 2);
}

#[test]
fn codec_mismatch_is_reported() {
    let mut net = Net::new();
    net.publisher("pub", "room");
    // The viewer only decodes H264; the publisher sends VP8.
    let v = net.viewer_with(
        "h264-only",
        "room",
        |c| c.clear_codecs().enable_h264(true),
        |offer| offer,
    );
    let v = v.expect("an H264-only viewer is a valid viewer");
    net.run(Duration::from_secs(1));
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::CodecMismatch { .. })),
        "{:?}",
        net.events
    );
    assert!(net.peers[v].connected);
    assert_eq!(net.peers[v].received(MediaKind::Video).count(), 0);
}

#[test]
fn a_late_viewer_is_told_the_codec_it_cannot_take() {
    let mut net = Net::new();
    net.publisher("pub", "room");
    // The publisher negotiated H264 too but sends VP8; its group of pictures is cached.
    net.run(Duration::from_secs(1));
    let v = net
        .viewer_with(
            "h264-only",
            "room",
            |c| c.clear_codecs().enable_h264(true),
            |offer| offer,
        )
        .expect("an H264-only viewer is a valid viewer");
    net.run(Duration::from_secs(1));
    let told: Vec<_> = net
        .events
        .iter()
        .filter_map(|e| match e {
            Event::CodecMismatch { codecs, .. } => Some(codecs.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        told,
        vec![vec![huddle_core::Codec::Vp8]],
        "{:?}",
        net.events
    );
    assert!(net.peers[v].connected);
    assert_eq!(net.peers[v].received(MediaKind::Video).count(), 0);
}

#[test]
fn an_offer_without_usable_media_is_refused() {
    let mut net = Net::new();
    let err = net.viewer_with(
        "bad",
        "room",
        |c| c,
        |offer| offer.replace("a=recvonly", "a=sendonly"),
    );
    assert!(err.is_err());
    let s = net.sfu.stats();
    assert_eq!((s.participants, s.rooms, s.demux_ufrags), (0, 0, 0));
}

#[test]
fn synthetic_payloads_are_what_they_claim() {
    assert!(huddle_core::keyframe::is_keyframe_start(
        huddle_core::Codec::Vp8,
        &vp8_payload(0, 0, true)
    ));
    assert!(!huddle_core::keyframe::is_keyframe_start(
        huddle_core::Codec::Vp8,
        &vp8_payload(1, 0, false)
    ));
    assert!(!huddle_core::keyframe::is_keyframe_start(
        huddle_core::Codec::Vp8,
        &vp8_payload(0, PACKETS_PER_FRAME - 1, true)
    ));
}

#[test]
fn members_receive_each_other_through_server_offers_and_chat() {
    let mut net = Net::new();
    let a = net.member("a", "room");
    let b = net.member("b", "room");
    net.run(Duration::from_secs(2));
    for (me, other) in [(a, b), (b, a)] {
        let peer = &net.peers[me];
        assert!(peer.offers >= 1, "{} got a server offer", peer.name);
        let from_other: HashSet<&Vec<u8>> = net.peers[other].sent_video.iter().collect();
        let video: Vec<_> = peer.received(MediaKind::Video).collect();
        assert!(
            video.len() > 100,
            "{} got {} video packets",
            peer.name,
            video.len()
        );
        assert!(
            video.iter().all(|g| from_other.contains(&g.payload)),
            "{} only gets the other's video",
            peer.name
        );
        assert!(peer.received(MediaKind::Audio).count() > 50);
    }
    // A third member arrives: both get one more renegotiation, it gets both.
    let c = net.member("c", "room");
    net.run(Duration::from_secs(2));
    assert!(
        net.peers[c]
            .received(MediaKind::Video)
            .map(|g| g.ssrc)
            .collect::<HashSet<_>>()
            .len()
            == 2
    );
    net.say(a, "hello");
    net.run(Duration::from_millis(500));
    assert_eq!(net.peers[b].messages, vec![b"hello".to_vec()]);
    assert_eq!(net.peers[c].messages, vec![b"hello".to_vec()]);
    assert!(net.peers[a].messages.is_empty());
    // One leaves: the others renegotiate its sections away.
    let offers_before = net.peers[a].offers;
    net.leave(c);
    net.run(Duration::from_secs(1));
    assert!(net.peers[a].offers > offers_before, "removal renegotiated");
    let s = net.sfu.stats();
    assert_eq!((s.participants, s.tracks, s.subscriptions), (2, 4, 4));
}

#[test]
fn the_active_speaker_follows_who_talks() {
    let mut net = Net::new();
    let a = net.member("ada", "room");
    let b = net.member("ben", "room");
    net.peers[a].audio_level = Some(-20);
    net.peers[b].audio_level = Some(-90);
    net.run(Duration::from_secs(2));
    let speaker = |net: &Net| {
        net.events.iter().rev().find_map(|e| match e {
            Event::ActiveSpeaker { participant, .. } => Some(*participant),
            _ => None,
        })
    };
    assert_eq!(speaker(&net), Some(net.peers[a].id), "ada talks");
    net.peers[a].audio_level = Some(-90);
    net.peers[b].audio_level = Some(-15);
    net.run(Duration::from_secs(2));
    assert_eq!(speaker(&net), Some(net.peers[b].id), "then ben");
    assert_eq!(
        net.sfu.room("room").unwrap().active_speaker(),
        net.peers[b].id
    );
    let changes = net
        .events
        .iter()
        .filter(|e| matches!(e, Event::ActiveSpeaker { .. }))
        .count();
    assert_eq!(changes, 2, "no flapping");
}

#[test]
fn a_member_publishes_another_track_and_stops_it() {
    let mut net = Net::new();
    let a = net.member("ada", "room");
    let b = net.member("ben", "room");
    net.run(Duration::from_secs(1));
    let ada = net.peers[a].id.unwrap();
    let published = |net: &Net| {
        net.events
            .iter()
            .filter(
                |e| matches!(e, Event::TrackPublished { participant, .. } if *participant == ada),
            )
            .count()
    };
    assert_eq!(published(&net), 2, "camera and microphone");
    let offers_to_ben = net.peers[b].offers;
    net.sfu
        .request_publish(net.now, ada, MediaKind::Video)
        .unwrap();
    net.run(Duration::from_secs(1));
    assert_eq!(published(&net), 3, "a screen share track");
    assert!(net.peers[b].offers > offers_to_ben, "ben is offered it");
    let screen = net
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::TrackPublished {
                participant, track, ..
            } if *participant == ada => Some(*track),
            _ => None,
        })
        .unwrap();
    net.sfu.request_unpublish(net.now, ada, screen).unwrap();
    net.run(Duration::from_secs(1));
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, Event::TrackUnpublished { track, .. } if *track == screen))
    );
    assert!(net.sfu.track(screen).is_none());
    // Someone else's track cannot be stopped.
    let bens = net
        .sfu
        .participant(net.peers[b].id.unwrap())
        .unwrap()
        .tracks()
        .next()
        .unwrap();
    assert!(net.sfu.request_unpublish(net.now, ada, bens).is_err());
}
