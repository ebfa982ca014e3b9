//! The Janus VideoRoom driver against a real Janus (Debian's `janus`), started by the test:
//! 1 publisher → 3 viewers for ~3 s, full and then lean viewers, with the checks the huddle
//! smoke test makes.
//!
//! Janus is a Debian package, so this runs only with `HUDDLE_TEST_JANUS=1`; with it set and
//! Janus missing, the test fails and says how to install it (`apt-get install -y janus`).

use std::time::Duration;

use huddle_loadtest::janus::JanusProcess;
use huddle_loadtest::scenario::{RunOptions, Window, broadcast};
use huddle_loadtest::sut::Sut;

fn enabled() -> bool {
    if std::env::var("HUDDLE_TEST_JANUS").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!(
        "skipped: set HUDDLE_TEST_JANUS=1 to run the Janus driver test (needs `apt-get install -y janus`)"
    );
    false
}

fn assert_clean(w: &Window) {
    assert_eq!(w.down_tracks_receiving, w.down_tracks_expected, "{w:?}");
    assert!(w.packets_sent > 0 && w.packets_received > 0, "{w:?}");
    assert!(w.packets_checked > 0, "{w:?}");
    assert_eq!(w.seq_gaps, 0, "{w:?}");
    assert_eq!(w.payload_mismatches, 0, "{w:?}");
    assert!(w.delivery_shortfall_pct < 5.0, "{w:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janus_broadcast_one_to_three() {
    if !enabled() {
        return;
    }
    let mut janus = match JanusProcess::start(None, None).await {
        Ok(j) => j,
        Err(e) => panic!("HUDDLE_TEST_JANUS=1 but Janus does not start: {e}"),
    };
    let base = RunOptions {
        seconds: 3.0,
        settle_timeout: Duration::from_secs(10),
        ..RunOptions::default()
    };
    let full = broadcast::run(&janus, 3, &base, 2).await;
    let lean_opts = RunOptions {
        lean: Some(huddle_client::LeanReceive::default()),
        ..base
    };
    let lean = broadcast::run(&janus, 3, &lean_opts, 2).await;
    let log = janus.log_tail(30);
    janus.stop();

    let full = full.unwrap_or_else(|e| panic!("full viewers: {e}\nJanus log:\n{log}"));
    assert_eq!(full.sut, "janus");
    assert_eq!(full.joins.failed, 0, "{:?}", full.joins.first_errors);
    assert_eq!(full.window.down_tracks_expected, 6);
    assert_clean(&full.window);
    // Every packet decrypted and checked.
    assert_eq!(full.window.packets_checked, full.window.packets_received);
    assert!(full.window.server_cpu_us_per_forwarded_packet.is_some());

    let lean = lean.unwrap_or_else(|e| panic!("lean viewers: {e}\nJanus log:\n{log}"));
    assert_eq!(lean.joins.failed, 0, "{:?}", lean.joins.first_errors);
    assert_clean(&lean.window);
    assert!(lean.window.packets_checked * 4 < lean.window.packets_received);
}
