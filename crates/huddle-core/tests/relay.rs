//! A room's feed relayed from one worker's `Sfu` to another's: carried once whatever the
//! number of viewers behind it, keyframes asked for across, publisher switches followed, and
//! nothing left once the last viewer leaves.

mod sim;

use std::time::Duration;

use huddle_core::{MediaKind, RelayLink};
use sim::Net;

const LINK: RelayLink = RelayLink(7);

fn contiguous(seqs: &[u64]) -> bool {
    seqs.windows(2).all(|w| w[1] == w[0] + 1)
}

/// An edge viewer after 4 s: connected, over 300 video packets numbered without a gap from a
/// keyframe, and audio.
fn assert_fed(net: &Net, v: usize) {
    let peer = &net.peers[v];
    assert!(peer.connected, "edge viewer connected");
    let video: Vec<u64> = peer.received(MediaKind::Video).map(|g| g.seq).collect();
    assert!(
        video.len() > 300,
        "edge viewer got {} video packets",
        video.len()
    );
    assert!(
        contiguous(&video),
        "edge viewer's video numbering is contiguous"
    );
    assert!(huddle_core::keyframe::is_keyframe_start(
        huddle_core::Codec::Vp8,
        &peer.received(MediaKind::Video).next().unwrap().payload
    ));
    assert!(peer.received(MediaKind::Audio).count() > 150);
}

#[test]
fn a_relayed_feed_reaches_every_edge_viewer_and_crosses_once() {
    let mut net = Net::new();
    net.add_edge();
    let p = net.publisher("pub", "room");
    net.relay("room", LINK);
    let viewers: Vec<usize> = (0..3)
        .map(|_| net.edge_viewer("edge-viewer", "room"))
        .collect();
    net.run(Duration::from_secs(4));

    for &v in &viewers {
        assert_fed(&net, v);
    }
    let origin = net.sfu.stats();
    let edge = net.edge_sfu().stats();
    // Every packet crossed once, whatever the three viewers behind the link.
    assert!(origin.packets_relayed >= origin.packets_received * 98 / 100);
    assert!(origin.packets_relayed <= origin.packets_received);
    assert_eq!(origin.subscriptions, 0, "no viewer on the origin");
    assert!(edge.packets_forwarded >= edge.packets_received * 3 * 95 / 100);
    assert!(net.peers[p].sent_video.len() > 300);
}

#[test]
fn edge_viewers_start_on_a_keyframe_and_their_requests_reach_the_publisher() {
    let mut net = Net::new();
    net.add_edge();
    let p = net.publisher("obs", "room");
    net.peers[p].honour_pli = false;
    net.peers[p].gop_frames = 240; // an 8 s GOP: only the edge's GOP cache can start a viewer
    net.relay("room", LINK);
    net.run(Duration::from_secs(3));
    let requests_before = net.peers[p].keyframe_requests;
    let v = net.edge_viewer("late", "room");
    let joined = net.now;
    net.run(Duration::from_secs(1));
    let first = net.peers[v]
        .received(MediaKind::Video)
        .next()
        .expect("the late edge viewer got video");
    assert!(
        first.at - joined < Duration::from_millis(500),
        "started within 0.5 s"
    );
    assert!(huddle_core::keyframe::is_keyframe_start(
        huddle_core::Codec::Vp8,
        &first.payload
    ));
    net.request_keyframe_from_viewer(v);
    net.run(Duration::from_secs(1));
    assert!(
        net.peers[p].keyframe_requests > requests_before,
        "the edge viewer's PLI crossed the relay to the publisher"
    );
}

#[test]
fn edge_viewers_follow_the_next_publisher_without_a_seam() {
    let mut net = Net::new();
    net.add_edge();
    let first = net.publisher("first", "room");
    net.relay("room", LINK);
    let v = net.edge_viewer("v", "room");
    net.run(Duration::from_secs(2));
    net.leave(first);
    let second = net.publisher("second", "room");
    net.run(Duration::from_secs(2));
    let video: Vec<_> = net.peers[v].received(MediaKind::Video).collect();
    let seqs: Vec<u64> = video.iter().map(|g| g.seq).collect();
    assert!(contiguous(&seqs), "numbering continues across the switch");
    let from_second: std::collections::HashSet<&Vec<u8>> =
        net.peers[second].sent_video.iter().collect();
    assert!(
        video
            .iter()
            .filter(|g| from_second.contains(&g.payload))
            .count()
            > 100,
        "the edge viewer receives the second publisher"
    );
}

#[test]
fn the_link_closes_when_the_last_edge_viewer_leaves() {
    let mut net = Net::new();
    net.add_edge();
    let p = net.publisher("pub", "room");
    net.relay("room", LINK);
    let v = net.edge_viewer("v", "room");
    net.run(Duration::from_secs(1));
    assert_eq!(net.sfu.stats().relay_links, 1);
    net.leave(v);
    net.run(Duration::from_secs(1));
    let edge = net.edge_sfu().stats();
    assert_eq!(
        (edge.rooms, edge.participants, edge.tracks, edge.relay_links),
        (0, 0, 0, 0)
    );
    let origin = net.sfu.stats();
    assert_eq!(origin.relay_links, 0, "the origin stopped relaying");
    let relayed = origin.packets_relayed;
    net.run(Duration::from_secs(1));
    assert_eq!(
        net.sfu.stats().packets_relayed,
        relayed,
        "nothing relayed any more"
    );
    assert!(net.sfu.participant(net.peers[p].id.unwrap()).is_some());
}

/// The edge's feed over a session to the origin (how a node pulls a room from another): the
/// origin sees one viewer, the edge's viewers all get the feed from its first keyframe with
/// contiguous numbering, and the session carries each published packet once.
#[test]
fn a_pulled_room_reaches_every_edge_viewer_over_one_session() {
    let mut net = Net::new();
    net.add_edge();
    let p = net.publisher("pub", "room");
    net.pull_to_edge("room", LINK);
    let viewers: Vec<usize> = (0..3)
        .map(|_| net.edge_viewer("edge-viewer", "room"))
        .collect();
    net.run(Duration::from_secs(4));

    let (pull, _) = net.pull.as_ref().unwrap();
    assert!(pull.is_connected(), "the pull connected");
    assert_eq!(pull.ended(), None);
    for &v in &viewers {
        assert_fed(&net, v);
    }
    let origin = net.sfu.stats();
    assert_eq!(
        origin.subscriptions, 2,
        "the pull is one viewer (audio and video) at the origin"
    );
    let sent = net.peers[p].sent_video.len() as u64;
    let pulled = net.pull.as_ref().unwrap().0.packets();
    assert!(
        pulled >= sent,
        "the pull carried {pulled} packets for {sent} video packets sent"
    );
    let edge = net.edge_sfu().stats();
    assert!(edge.packets_forwarded >= edge.packets_received * 3 * 95 / 100);
}
