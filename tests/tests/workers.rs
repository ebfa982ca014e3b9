//! Media workers: a broadcast too large for its home worker spreads its viewers over the
//! others, each fed by one relay, and every viewer gets every packet.

use std::time::Duration;

use huddle_client::{ClientOptions, Publisher, Viewer};
use huddle_server::Config;
use huddle_tests::{eventually, start_with};

const CONNECT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_spreads_over_two_workers_with_one_relay() {
    let server = start_with(Config {
        workers: Some(2),
        spread_after: 3,
        ..Config::ephemeral()
    })
    .await;
    assert_eq!(server.udp_addrs.len(), 2, "one socket per worker");
    let room = "town-hall";
    let publisher = Publisher::connect(&server.whip_url(room), ClientOptions::default())
        .await
        .unwrap();
    publisher.wait_connected(CONNECT).await.unwrap();
    let options = ClientOptions {
        request_keyframes: true,
        ..ClientOptions::default()
    };
    let mut viewers = Vec::new();
    for _ in 0..8 {
        let v = Viewer::connect(&server.whep_url(room), options.clone())
            .await
            .unwrap();
        v.wait_connected(CONNECT).await.unwrap();
        viewers.push(v);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = publisher.stats();
    assert_eq!(
        server.relay_links(),
        1,
        "one relay from home to the other worker"
    );
    for (i, v) in viewers.iter().enumerate() {
        let s = v.stats();
        assert!(
            s.video.packets > 200,
            "viewer {i}: {} video packets",
            s.video.packets
        );
        assert!(
            s.audio.packets > 50,
            "viewer {i}: {} audio packets",
            s.audio.packets
        );
        assert_eq!(s.video.first_packet_is_keyframe, Some(true), "viewer {i}");
        assert_eq!(s.video.payload_mismatches + s.audio.payload_mismatches, 0);
        assert_eq!(s.video.seq_gaps, 0, "viewer {i}: contiguous video");
    }
    let stats = server.stats().await.unwrap();
    // The relay carries each packet once: about the publisher's own count, not × viewers.
    assert!(
        stats.packets_relayed <= sent.video_packets_sent + sent.audio_packets_sent,
        "relayed {} of {} sent",
        stats.packets_relayed,
        sent.video_packets_sent + sent.audio_packets_sent
    );
    assert!(stats.packets_relayed > 0);
    let split = eventually(Duration::from_secs(3), || async {
        let per = server.forwarded_per_worker();
        let total: u64 = per.iter().sum();
        total > 0 && per.iter().all(|w| w * 10 >= total * 3)
    })
    .await;
    assert!(
        split,
        "forwarding split {:?}",
        server.forwarded_per_worker()
    );

    for v in viewers {
        assert_eq!(v.close().await.unwrap(), 200);
    }
    assert_eq!(publisher.close().await.unwrap(), 200);
    let empty = eventually(Duration::from_secs(3), || async {
        server.stats().await.is_some_and(|s| {
            s.participants == 0 && s.rooms == 0 && s.relay_links == 0 && s.demux_addrs == 0
        }) && server.relay_links() == 0
    })
    .await;
    assert!(empty, "state left behind: {:?}", server.stats().await);
    server.shutdown().await;
}
