//! 1 publisher → 3 viewers through an in-process huddle for ~3 s: every down-track receives
//! media and nothing is lost. Correctness only; no timing is asserted.

use std::time::Duration;

use huddle_loadtest::scenario::{RunOptions, broadcast};
use huddle_loadtest::sut::ExternalHuddle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_one_to_three() {
    let server = huddle_server::Server::start(huddle_server::Config::ephemeral())
        .await
        .expect("server starts");
    // The harness's `--url` path; the server is in this process, so no pid to measure.
    let sut = ExternalHuddle::new(&server.base_url(), None);
    let opts = RunOptions {
        seconds: 3.0,
        settle_timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let r = broadcast::run(&sut, 3, &opts, 2)
        .await
        .expect("scenario runs");
    server.shutdown().await;

    let w = &r.window;
    assert_eq!(r.joins.failed, 0, "join errors: {:?}", r.joins.first_errors);
    assert_eq!(w.viewers, 3);
    assert_eq!(w.down_tracks_expected, 6);
    assert_every_down_track_clean(w);
    assert_eq!(w.loss_pct, 0.0, "{w:?}");
    assert_eq!(r.joins.join_ms.samples, 3);
}

/// The same with lean viewers (every packet counted from its RTP header, one in 16 per SSRC
/// decrypted and checked), joining paced at 20 per second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_one_to_three_lean() {
    let server = huddle_server::Server::start(huddle_server::Config::ephemeral())
        .await
        .expect("server starts");
    let sut = ExternalHuddle::new(&server.base_url(), None);
    let opts = RunOptions {
        seconds: 3.0,
        settle_timeout: Duration::from_secs(10),
        lean: Some(huddle_client::LeanReceive {
            sample_one_in: 16,
            ..Default::default()
        }),
        join_rate: Some(20.0),
        ..RunOptions::default()
    };
    let r = broadcast::run(&sut, 3, &opts, 2)
        .await
        .expect("scenario runs");
    server.shutdown().await;

    let w = &r.window;
    assert_eq!(r.joins.failed, 0, "join errors: {:?}", r.joins.first_errors);
    assert_eq!(r.lean_sample_one_in, Some(16));
    assert_eq!(w.down_tracks_expected, 6);
    assert_every_down_track_clean(w);
    assert_eq!(w.duplicates, 0, "{w:?}");
    // Roughly one in 16 was decrypted and checked (and gave a latency sample).
    assert!(w.packets_checked > 0, "{w:?}");
    assert!(
        w.packets_checked * 8 < w.packets_received,
        "checked {} of {}",
        w.packets_checked,
        w.packets_received
    );
    assert!(w.packets_checked * 32 > w.packets_received, "{w:?}");
    assert_eq!(w.latency_us.samples as u64, w.packets_checked, "{w:?}");
    assert_eq!(r.joins.join_ms.samples, 3);
    assert_eq!(r.joins.signal_ms.samples, 3);
    let storm = r.joins.storm.as_ref().expect("paced joins report a storm");
    assert_eq!(storm.offered_per_s, 20.0);
    assert!(storm.achieved_per_s > 0.0, "{storm:?}");
}

/// 2 rooms × 3 participants over the room WebSocket for ~3 s: 2 × 3 × 2 × 2 = 24 down-tracks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meeting_two_rooms_of_three() {
    use huddle_loadtest::scenario::meeting;

    let server = huddle_server::Server::start(huddle_server::Config::ephemeral())
        .await
        .expect("server starts");
    let sut = ExternalHuddle::new(&server.base_url(), None);
    let opts = RunOptions {
        seconds: 3.0,
        settle_timeout: Duration::from_secs(10),
        media: huddle_loadtest::scenario::MediaShape {
            video_bitrate_bps: 300_000,
            ..Default::default()
        },
        ..RunOptions::default()
    };
    let r = meeting::run(&sut, 2, 3, &opts, 2)
        .await
        .expect("scenario runs");
    server.shutdown().await;

    let w = &r.window;
    assert_eq!(r.joins.failed, 0, "join errors: {:?}", r.joins.first_errors);
    assert_eq!(w.viewers, 6);
    assert_eq!(w.down_tracks_expected, 24);
    assert_every_down_track_clean(w);
    assert!(w.latency_us.samples > 0, "{w:?}");
    // Everyone but each room's first member joined a room with media flowing.
    assert_eq!(r.joins.join_ms.samples, 4);
    assert_eq!(r.signaling_errors, 0);
}

/// Every expected down-track received media, with no sequence gap and no altered payload.
fn assert_every_down_track_clean(w: &huddle_loadtest::scenario::Window) {
    assert_eq!(w.down_tracks_receiving, w.down_tracks_expected, "{w:?}");
    assert!(w.packets_sent > 0 && w.packets_received > 0, "{w:?}");
    assert_eq!(w.seq_gaps, 0, "{w:?}");
    assert_eq!(w.payload_mismatches, 0, "{w:?}");
    // Received vs sent × viewers is exact only up to the packets in flight at the edges.
    assert!(w.delivery_shortfall_pct < 5.0, "{w:?}");
}
