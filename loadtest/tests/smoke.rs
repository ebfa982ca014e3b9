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
    assert_eq!(w.down_tracks_receiving, 6, "{w:?}");
    assert!(w.packets_sent > 0 && w.packets_received > 0, "{w:?}");
    assert_eq!(w.seq_gaps, 0, "{w:?}");
    assert_eq!(w.payload_mismatches, 0, "{w:?}");
    assert_eq!(w.loss_pct, 0.0, "{w:?}");
    // Received vs sent × viewers is exact only up to the packets in flight at the edges.
    assert!(w.delivery_shortfall_pct < 5.0, "{w:?}");
    assert_eq!(r.joins.join_ms.samples, 3);
}
