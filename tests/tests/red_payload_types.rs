//! Opus RED between ends that number it differently (issue 13): a publisher with Chromium's
//! payload types (Opus 111, RED 63) and viewers with others (Opus 109, RED 121), behind the
//! same 15% random loss towards them. huddle rewrites the RED payload type and the block
//! payload types inside each packet for the viewer that negotiated RED, and sends the primary
//! block alone, as plain Opus, to the one that did not. Figures are printed (`--nocapture`).

use std::time::{Duration, Instant};

use huddle_client::{AudioPayloadTypes, ClientOptions, Publisher, ViewerStats};
use huddle_tests::impair::{Impairment, connect_viewer};
use huddle_tests::start_server;

const CONNECT: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(8);
const DRAIN: Duration = Duration::from_millis(700);
const LOSS: f64 = 0.15;
/// The viewers' payload types (Firefox numbers Opus 109).
const VIEWER_PTS: AudioPayloadTypes = AudioPayloadTypes {
    opus: 109,
    red: 121,
};

fn audio_only(red: bool, pts: Option<AudioPayloadTypes>) -> ClientOptions {
    ClientOptions {
        video: None,
        red,
        audio_payload_types: pts,
        ..ClientOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn red_reaches_a_viewer_with_other_payload_types_and_recovers_loss() {
    let server = start_server(None).await;
    let room = "red-pts";
    let publisher = Publisher::connect(&server.whip_url(room), audio_only(true, None))
        .await
        .unwrap();
    publisher.wait_connected(CONNECT).await.unwrap();
    let mut viewers = Vec::new();
    // The same loss and seed towards both.
    for red in [true, false] {
        let (v, relay, _) = connect_viewer(
            &server.whep_url(room),
            audio_only(red, Some(VIEWER_PTS)),
            Impairment::default(),
            Impairment::random_loss(LOSS),
            61,
        )
        .await
        .unwrap();
        v.wait_connected(CONNECT).await.unwrap();
        viewers.push((red, v, relay));
    }
    tokio::time::sleep(SETTLE).await;
    let from = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let to = Instant::now();
    tokio::time::sleep(DRAIN).await;
    let sent = WINDOW.as_millis() as u64 / 20;
    let stats: Vec<(bool, ViewerStats)> = viewers.iter().map(|(r, v, _)| (*r, v.stats())).collect();
    let mut decoded = Vec::new();
    for (red, s) in &stats {
        let n = s.audio.frames.decoded_between(from, to);
        println!(
            "viewer {} (Opus {}{}): {n} of {sent} audio frames ({:.1}%) at {:.0}% loss; RED \
             packets {} with {} foreign block payload types; payload mismatches {}; \
             packets on unknown payload types {}",
            if *red { "with RED" } else { "without RED" },
            VIEWER_PTS.opus,
            if *red {
                format!(", RED {}", VIEWER_PTS.red)
            } else {
                String::new()
            },
            n as f64 * 100.0 / sent as f64,
            LOSS * 100.0,
            s.audio.red_packets,
            s.audio.red_block_mismatches,
            s.audio.payload_mismatches,
            s.video.packets,
        );
        // A packet on a payload type the viewer did not negotiate is not audio to it.
        assert_eq!(s.video.packets, 0, "red {red}: foreign payload types");
        assert_eq!(s.audio.payload_mismatches, 0, "red {red}");
        decoded.push(n);
    }
    let (with_red, without) = (&stats[0].1, &stats[1].1);
    assert!(
        with_red.audio.red_packets * 100 >= sent * (100 - 25),
        "RED packets on the viewer's payload type: {}",
        with_red.audio.red_packets
    );
    assert_eq!(
        with_red.audio.red_block_mismatches, 0,
        "every block names the viewer's Opus"
    );
    assert_eq!(without.audio.red_packets, 0, "plain Opus, not RED");
    let [red_n, plain_n] = decoded[..] else {
        panic!("{decoded:?}");
    };
    println!(
        "recovered by RED: {} frames ({red_n} with, {plain_n} without)",
        red_n.saturating_sub(plain_n)
    );
    assert!(plain_n * 100 >= sent * 75, "plain Opus decoded {plain_n}");
    assert!(red_n > plain_n, "{red_n} with RED vs {plain_n} without");
    // One level of redundancy leaves about p² of independent losses.
    assert!(red_n * 100 >= sent * 94, "RED: {red_n} of {sent}");
    for (_, v, _) in viewers {
        v.close().await.unwrap();
    }
    publisher.close().await.unwrap();
    server.shutdown().await;
}
