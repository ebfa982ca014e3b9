//! Simulcast: a publisher's layers are received once each, and every subscriber gets the
//! one its tile, its pin and what the publisher sends warrant — switching at keyframes with
//! its numbering continuous, and the reason on record.

mod sim;

use std::time::Duration;

use huddle_core::{MediaKind, Preference, Reason};
use sim::Net;

/// The layers (payload's last byte) a viewer received, in order, with repeats collapsed.
fn layers_seen(net: &Net, v: usize) -> Vec<u8> {
    let mut seen: Vec<u8> = net.peers[v]
        .received(MediaKind::Video)
        .filter_map(|g| g.payload.last().copied())
        .collect();
    seen.dedup();
    seen
}

fn video_track(net: &Net, p: usize) -> huddle_core::TrackId {
    let id = net.peers[p].id.unwrap();
    net.sfu
        .participant(id)
        .unwrap()
        .tracks()
        .find(|t| {
            net.sfu
                .track(*t)
                .is_some_and(|t| t.kind == MediaKind::Video)
        })
        .unwrap()
}

fn contiguous(net: &Net, v: usize) {
    let seqs: Vec<u64> = net.peers[v]
        .received(MediaKind::Video)
        .map(|g| g.seq)
        .collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "video numbering continuous across layers");
    }
    // VP8 PictureIDs too: one more per picture, whichever layer it came from (a decoder
    // drops pictures whose number it has seen).
    let pictures: Vec<(u32, u16)> = net.peers[v]
        .received(MediaKind::Video)
        .map(|g| {
            let d = str0m::rtp::Vp8Descriptor::parse(&g.payload).unwrap();
            (g.ts, d.picture_id().unwrap())
        })
        .collect();
    for w in pictures.windows(2) {
        let step = if w[1].0 == w[0].0 { 0 } else { 1 };
        assert_eq!(
            w[1].1,
            (w[0].1 + step) % 0x8000,
            "PictureID continuous across layers"
        );
    }
}

#[test]
fn each_viewer_gets_the_layer_its_tile_warrants() {
    let mut net = Net::new();
    let p = net.simulcast_publisher("pub", "room");
    let big = net.viewer("big", "room");
    let small = net.viewer("small", "room");
    net.run(Duration::from_millis(500));
    let track = video_track(&net, p);
    assert!(net.sfu.track(track).unwrap().is_simulcast());
    let small_id = net.peers[small].id.unwrap();
    let pref = Preference {
        max_size: Some((320, 180)),
        pin: None,
    };
    assert!(
        net.sfu
            .set_preference(net.now, small_id, track, pref)
            .unwrap()
    );
    net.run(Duration::from_secs(3));

    assert_eq!(
        layers_seen(&net, big).last(),
        Some(&2),
        "no tile: the full layer"
    );
    assert_eq!(
        layers_seen(&net, small).last(),
        Some(&0),
        "a small tile: the quarter layer"
    );
    contiguous(&net, big);
    contiguous(&net, small);
    // Received once, whatever the subscribers: every layer's packets arrive once each.
    let stats = net.sfu.stats();
    let sent = net.peers[p].sent_video.len() as u64;
    assert!(stats.packets_received <= sent + net.peers[p].audio_seq);

    let report = net.sfu.subscriptions(net.now, "room");
    let small_row = report.iter().find(|r| r.subscriber == small_id).unwrap();
    assert_eq!(small_row.reason, Reason::TileSize);
    assert_eq!(
        small_row.current.as_ref().and_then(|l| l.size),
        Some((320, 180))
    );
    let big_row = report.iter().find(|r| r.subscriber != small_id).unwrap();
    assert_eq!(big_row.reason, Reason::Best);
    assert!(big_row.current.as_ref().is_some_and(|l| l.bitrate > 0));
}

#[test]
fn a_tile_that_grows_switches_up_at_the_next_keyframe_seamlessly() {
    let mut net = Net::new();
    let p = net.simulcast_publisher("pub", "room");
    let v = net.viewer("v", "room");
    net.run(Duration::from_millis(300));
    let track = video_track(&net, p);
    let id = net.peers[v].id.unwrap();
    let small = Preference {
        max_size: Some((320, 180)),
        pin: None,
    };
    net.sfu.set_preference(net.now, id, track, small).unwrap();
    net.run(Duration::from_secs(2));
    assert_eq!(layers_seen(&net, v).last(), Some(&0));
    let big = Preference {
        max_size: Some((1280, 720)),
        pin: None,
    };
    net.sfu.set_preference(net.now, id, track, big).unwrap();
    let asked = net.now;
    net.run(Duration::from_secs(2));
    assert_eq!(
        layers_seen(&net, v).last(),
        Some(&2),
        "moved up to the full layer"
    );
    contiguous(&net, v);
    // The switch waited for a keyframe of the new layer, asked for at once.
    let first_full = net.peers[v]
        .received(MediaKind::Video)
        .find(|g| g.payload.last() == Some(&2) && g.at > asked)
        .unwrap();
    assert!(huddle_core::keyframe::is_keyframe_start(
        huddle_core::Codec::Vp8,
        &first_full.payload
    ));
    assert!(
        first_full.at - asked < Duration::from_millis(500),
        "switched within 0.5 s"
    );
}

#[test]
fn a_pin_wins_and_a_layer_the_publisher_drops_is_left() {
    let mut net = Net::new();
    let p = net.simulcast_publisher("pub", "room");
    let pinned = net.viewer("pinned", "room");
    let free = net.viewer("free", "room");
    net.run(Duration::from_millis(300));
    let track = video_track(&net, p);
    let pin = Preference {
        max_size: None,
        pin: Some("h".into()),
    };
    net.sfu
        .set_preference(net.now, net.peers[pinned].id.unwrap(), track, pin)
        .unwrap();
    net.run(Duration::from_secs(2));
    assert_eq!(
        layers_seen(&net, pinned).last(),
        Some(&1),
        "pinned to the half layer"
    );
    assert_eq!(layers_seen(&net, free).last(), Some(&2));

    // The publisher stops its full layer (a browser under its own congestion does).
    net.peers[p].simulcast[2].sending = false;
    net.run(Duration::from_secs(3));
    assert_eq!(
        layers_seen(&net, free).last(),
        Some(&1),
        "falls back to what is sent"
    );
    contiguous(&net, free);
    let report = net.sfu.subscriptions(net.now, "room");
    let row = report
        .iter()
        .find(|r| r.subscriber == net.peers[free].id.unwrap())
        .unwrap();
    assert_eq!(row.reason, Reason::PublisherNotSending);
    let pinned_row = report
        .iter()
        .find(|r| r.subscriber == net.peers[pinned].id.unwrap())
        .unwrap();
    assert_eq!(pinned_row.reason, Reason::Pinned);
}

/// What `viewer` gets of `publisher`'s video: the target layer's rid and the reason.
fn layer_of(net: &Net, viewer: usize, publisher: usize) -> (Option<String>, Reason) {
    let track = video_track(net, publisher);
    let subscriber = net.peers[viewer].id.unwrap();
    let row = net
        .sfu
        .subscriptions(net.now, "room")
        .into_iter()
        .find(|r| r.subscriber == subscriber && r.track == track)
        .unwrap();
    let rid = row.target.and_then(|l| l.rid).map(|r| r.to_string());
    (rid, row.reason)
}

fn high() -> (Option<String>, Reason) {
    (Some("f".into()), Reason::Best)
}

fn quiet() -> (Option<String>, Reason) {
    (Some("q".into()), Reason::NotSpeaking)
}

/// Ada, Ben and Cy publish simulcast cameras, Ada speaking, to a member viewer, with speaker
/// focus after `focus_after` videos; run for 2 s. Returns the net, the publishers, the viewer.
fn three_cameras(focus_after: usize) -> (Net, [usize; 3], usize) {
    let mut net = Net::with_config(|c| huddle_core::SfuConfig {
        speaker_focus_after: focus_after,
        ..c
    });
    let a = net.simulcast_publisher("ada", "room");
    let b = net.simulcast_publisher("ben", "room");
    let c = net.simulcast_publisher("cy", "room");
    let v = net.member("viewer", "room");
    net.peers[a].audio_level = Some(-20);
    net.peers[b].audio_level = Some(-90);
    net.peers[c].audio_level = Some(-90);
    net.run(Duration::from_secs(2));
    (net, [a, b, c], v)
}

#[test]
fn in_a_large_room_only_recent_speakers_keep_the_high_layer() {
    let (mut net, [a, b, c], v) = three_cameras(2);
    assert_eq!(layer_of(&net, v, a), high(), "the speaker");
    assert_eq!(layer_of(&net, v, b), quiet());
    assert_eq!(layer_of(&net, v, c), quiet());
    let forwarded = net
        .sfu
        .subscriptions(net.now, "room")
        .into_iter()
        .find(|r| r.track == video_track(&net, b) && r.subscriber == net.peers[v].id.unwrap())
        .and_then(|r| r.current)
        .and_then(|l| l.rid);
    assert_eq!(forwarded, Some("q".into()), "q is what is forwarded");

    // A pin is exempt.
    let pin = Preference {
        max_size: None,
        pin: Some("f".into()),
    };
    let track = video_track(&net, c);
    net.sfu
        .set_preference(net.now, net.peers[v].id.unwrap(), track, pin)
        .unwrap();
    net.run(Duration::from_millis(500));
    assert_eq!(layer_of(&net, v, c), (Some("f".into()), Reason::Pinned));

    // Ben speaks: his layer rises at once, Ada's is held for a while.
    net.peers[a].audio_level = Some(-90);
    net.peers[b].audio_level = Some(-15);
    net.run(Duration::from_secs(2));
    assert_eq!(layer_of(&net, v, b), high(), "the new speaker");
    assert_eq!(
        layer_of(&net, v, a),
        high(),
        "the last speaker, within the hold"
    );
    net.run(Duration::from_secs(5));
    assert_eq!(layer_of(&net, v, a), quiet(), "after the hold");
    assert_eq!(layer_of(&net, v, b), high());
}

#[test]
fn a_room_with_few_videos_keeps_every_layer() {
    let (net, [a, b, c], v) = three_cameras(4);
    for p in [a, b, c] {
        assert_eq!(layer_of(&net, v, p), high());
    }
}
