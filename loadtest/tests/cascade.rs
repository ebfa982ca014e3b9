//! The `cascade` scenario, short: three nodes and a real `redis-server` (scripts/test installs
//! it), 1 publisher on node A → 4 viewers on B and C for 3 s, then the same on one node. Each
//! of B and C pulls the publisher's packets once, every viewer receives without loss, and
//! every node's CPU is measured. No timing is asserted.

use std::time::Duration;

use huddle_loadtest::scenario::{RunOptions, cascade};
use huddle_loadtest::sut::default_huddle_bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_broadcast_is_pulled_once_per_node() {
    let bin = default_huddle_bin().expect("the huddle binary (cargo build --bin huddle)");
    let opts = RunOptions {
        seconds: 3.0,
        settle_timeout: Duration::from_secs(10),
        progress: false,
        ..RunOptions::default()
    };
    let r = cascade::run(&bin, 4, &opts, 2)
        .await
        .expect("scenario runs");
    r.print();
    let w = &r.cluster;
    assert_eq!(w.viewers, 4);
    assert_eq!(w.down_tracks_receiving, w.down_tracks_expected, "{w:?}");
    assert_eq!(w.loss_pct, 0.0, "{w:?}");
    assert_eq!(w.payload_mismatches, 0);
    assert_eq!(r.nodes.len(), 3);
    for n in &r.nodes {
        assert!(n.cpu_pct.is_some(), "CPU of {} measured", n.node);
    }
    // B and C carry the published stream once each (their windows are taken a few ms
    // apart from the publisher's: within 10 %).
    let sent = w.packets_sent as f64;
    for n in r.nodes.iter().filter(|n| n.node != "node-a") {
        let pulled = n.pulled_packets as f64;
        assert!(
            pulled > sent * 0.9 && pulled < sent * 1.1,
            "{} pulled {pulled} packets for {sent} published",
            n.node
        );
    }
    assert!(r.cluster_cpu_us_per_forwarded_packet.is_some());
    assert!(r.relay_overhead_us_per_forwarded_packet.is_some());
    assert_eq!(r.single.viewers, 4);
}
