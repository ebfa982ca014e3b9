//! End to end over real UDP on loopback: huddle in-process, a WHIP publisher and WHEP viewers
//! from `huddle-client` (real ICE, DTLS, SRTP), synthetic video at 1.5 Mbit/s and Opus.
//!
//! The first two tests are rows of README.md's interop table: they write
//! target/interop/rows/ROW.json, which tests/interop/render.py puts in the table.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use huddle_client::{ClientOptions, Publisher, VideoCodec, Viewer, ViewerStats};
use huddle_tests::{eventually, start_server};

const CONNECT: Duration = Duration::from_secs(10);

/// One row of the interop table. huddle-client does not decode: its viewers check every payload
/// against what the publisher generated, so the figures are packets verified (distinct payloads)
/// and the first frame is the arrival of the first keyframe's first packet.
struct Row {
    id: &'static str,
    role: &'static str,
    codec: &'static str,
    scenario: &'static str,
    first_frame: Option<Duration>,
    video_packets: u64,
    audio_packets: u64,
}

impl Row {
    fn new(
        id: &'static str,
        role: &'static str,
        codec: &'static str,
        scenario: &'static str,
    ) -> Self {
        Row {
            id,
            role,
            codec,
            scenario,
            first_frame: None,
            video_packets: 0,
            audio_packets: 0,
        }
    }
}

/// Runs `test`, which fills in `rows` as it measures, then writes them whatever happened: pass if
/// `test` returned, fail with its panic message if it panicked (and the panic goes on).
async fn recorded<const N: usize>(mut rows: [Row; N], test: impl AsyncFnOnce(&mut [Row; N])) {
    let outcome = AssertUnwindSafe(test(&mut rows)).catch_unwind().await;
    let failures: Vec<String> = match &outcome {
        Ok(()) => vec![],
        Err(panic) => vec![
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".to_owned()),
        ],
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop/rows");
    std::fs::create_dir_all(&dir).unwrap();
    for row in &rows {
        let json = serde_json::json!({
            "row": row.id,
            "stack": "str0m (huddle-client)",
            "stack_version": str0m_version(),
            "role": row.role,
            "codec": row.codec,
            "bundle_policy": "max-bundle",
            "scenario": row.scenario,
            "suite": "cargo test -p huddle-tests --test media",
            "result": if failures.is_empty() { "pass" } else { "fail" },
            "first_frame_ms": row.first_frame.map(|d| d.as_millis()),
            "video_frames_decoded": row.video_packets,
            "audio_frames_decoded": row.audio_packets,
            "unit": "packets verified",
            "failures": failures,
        });
        let text = serde_json::to_string_pretty(&json).unwrap() + "\n";
        std::fs::write(dir.join(format!("{}.json", row.id)), text).unwrap();
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The str0m version this test was built with: from Cargo.lock, compiled in.
fn str0m_version() -> &'static str {
    include_str!("../../Cargo.lock")
        .split("[[package]]")
        .find_map(|package| {
            package
                .trim()
                .strip_prefix("name = \"str0m\"\nversion = \"")
        })
        .and_then(|rest| rest.split('"').next())
        .expect("str0m in Cargo.lock")
}

fn viewer_options() -> ClientOptions {
    ClientOptions {
        // Measure what the SFU does on its own: no PLIs from the viewers.
        request_keyframes: false,
        ..ClientOptions::default()
    }
}

fn report(name: &str, sent: u64, v: &ViewerStats) {
    println!(
        "{name}: video {}/{sent} packets ({} counters), gaps {}, reorders {}, dups {}, mismatches {}, audio {} packets",
        v.video.packets,
        v.video.counters_seen,
        v.video.seq_gaps,
        v.video.seq_reorders,
        v.video.duplicates,
        v.video.payload_mismatches,
        v.audio.packets
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publisher_reaches_two_whep_viewers_and_a_late_one() {
    let rows = [
        Row::new(
            "str0m-viewers-first",
            "WHEP viewers (2, joined before the publisher) of a WHIP publisher",
            "VP8+Opus (synthetic payloads)",
            "two viewers, then a publisher: every payload verified, no gaps, first packet a keyframe; \
             figures: the worse viewer, first frame from the publisher's connect",
        ),
        Row::new(
            "str0m-late-viewer",
            "WHEP viewer (joins while the publisher sends)",
            "VP8+Opus (synthetic payloads)",
            "a viewer joins 3 s into a 4 s GOP: first keyframe within 1 s of its connect (GOP \
             replay + PLI), no gaps, payloads verified",
        ),
    ];
    recorded(rows, async |[early_row, late_row]| {
        let server = start_server(None).await;
        let room = "e2e";

        // Two viewers arrive before anyone publishes: accepted, media starts with the publisher.
        let v1 = Viewer::connect(&server.whep_url(room), viewer_options())
            .await
            .unwrap();
        let v2 = Viewer::connect(&server.whep_url(room), viewer_options())
            .await
            .unwrap();
        v1.wait_connected(CONNECT).await.unwrap();
        v2.wait_connected(CONNECT).await.unwrap();

        let publisher_started = Instant::now();
        let publisher = Publisher::connect(
            &server.whip_url(room),
            ClientOptions {
                video: Some(VideoCodec::Vp8),
                video_bitrate_bps: 1_500_000,
                keyframe_interval: Duration::from_secs(4),
                ..ClientOptions::default()
            },
        )
        .await
        .unwrap();
        publisher.wait_connected(CONNECT).await.unwrap();

        tokio::time::sleep(Duration::from_secs(3)).await;

        // A late viewer must see a keyframe within a second of connecting (GOP replay + PLI).
        let late_started = Instant::now();
        let late = Viewer::connect(&server.whep_url(room), viewer_options())
            .await
            .unwrap();
        late.wait_connected(CONNECT).await.unwrap();

        tokio::time::sleep(Duration::from_secs(3)).await;
        let sent = publisher.stats();
        let status = publisher.close().await.unwrap();
        assert_eq!(status, 200, "publisher DELETE");
        tokio::time::sleep(Duration::from_millis(500)).await;

        let early = [v1.stats(), v2.stats()];
        early_row.first_frame = early
            .iter()
            .map(|s| Some(s.video.first_keyframe_at? - publisher_started))
            .collect::<Option<Vec<_>>>()
            .and_then(|firsts| firsts.into_iter().max());
        early_row.video_packets = early.iter().map(|s| s.video.counters_seen).min().unwrap();
        early_row.audio_packets = early.iter().map(|s| s.audio.counters_seen).min().unwrap();
        for (name, s) in [("v1", &early[0]), ("v2", &early[1])] {
            report(name, sent.video_packets_sent, s);
            assert!(
                s.video.counters_seen * 100 >= sent.video_packets_sent * 99,
                "{name}: video loss over 1%"
            );
            assert!(
                s.audio.counters_seen * 100 >= sent.audio_packets_sent * 99,
                "{name}: audio loss over 1%"
            );
            assert_eq!(
                s.video.payload_mismatches + s.audio.payload_mismatches,
                0,
                "{name}: payloads identical"
            );
            assert_eq!(
                s.video.seq_gaps, 0,
                "{name}: contiguous video sequence numbers"
            );
            assert_eq!(
                s.audio.seq_gaps, 0,
                "{name}: contiguous audio sequence numbers"
            );
            assert_eq!(s.video.duplicates, 0, "{name}: no duplicates");
            assert_eq!(
                s.video.first_packet_is_keyframe,
                Some(true),
                "{name}: starts on a keyframe"
            );
            assert!(
                s.video.first_seq.is_some_and(|f| f < 65_536),
                "{name}: numbering starts near zero"
            );
        }

        let s = late.stats();
        report("late", sent.video_packets_sent, &s);
        late_row.first_frame = s.video.first_keyframe_at.map(|at| at - late_started);
        late_row.video_packets = s.video.counters_seen;
        late_row.audio_packets = s.audio.counters_seen;
        assert_eq!(
            s.video.first_packet_is_keyframe,
            Some(true),
            "late viewer starts on a keyframe"
        );
        let first_key = late_row.first_frame.expect("late viewer got a keyframe");
        println!(
            "late viewer: first keyframe {} ms after it started connecting",
            first_key.as_millis()
        );
        assert!(
            first_key < Duration::from_secs(1),
            "first keyframe after {first_key:?}"
        );
        assert_eq!(s.video.seq_gaps, 0);
        assert_eq!(s.video.payload_mismatches, 0);

        for v in [v1, v2, late] {
            assert_eq!(v.close().await.unwrap(), 200);
        }
        let empty = eventually(Duration::from_secs(2), || async {
            server.stats().await.is_some_and(|s| {
                s.participants == 0
                    && s.rooms == 0
                    && s.tracks == 0
                    && s.subscriptions == 0
                    && s.demux_ufrags == 0
                    && s.demux_addrs == 0
            })
        })
        .await;
        assert!(empty, "core still holds state: {:?}", server.stats().await);
        assert_eq!(server.sessions(), 0);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_shaped_publisher_without_candidates_is_viewed() {
    let rows = [Row::new(
        "str0m-obs-like-publisher",
        "WHIP publisher (OBS-like) → WHEP viewer",
        "H264+Opus (synthetic payloads)",
        "an OBS-shaped publisher (no candidates in the offer, no trickle, ignores PLI, 4 s GOP, \
         token): a viewer gets a keyframe within 1 s of its connect; payloads verified",
    )];
    recorded(rows, async |[row]| {
        let server = start_server(Some("obs-token")).await;
        let room = "obs";
        let token = Some("obs-token".to_owned());
        // H264 + Opus, no candidates in the offer, never trickles, ignores PLI, 4 s GOP.
        let publisher = Publisher::connect(
            &server.whip_url(room),
            ClientOptions {
                token: token.clone(),
                video: Some(VideoCodec::H264),
                obs_like: true,
                ignore_keyframe_requests: true,
                keyframe_interval: Duration::from_secs(4),
                ..ClientOptions::default()
            },
        )
        .await
        .unwrap();
        publisher.wait_connected(CONNECT).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;

        let started = Instant::now();
        let viewer = Viewer::connect(
            &server.whep_url(room),
            ClientOptions {
                token,
                ..viewer_options()
            },
        )
        .await
        .unwrap();
        viewer.wait_connected(CONNECT).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;

        let sent = publisher.stats();
        let s = viewer.stats();
        report("obs viewer", sent.video_packets_sent, &s);
        row.first_frame = s.video.first_keyframe_at.map(|at| at - started);
        row.video_packets = s.video.counters_seen;
        row.audio_packets = s.audio.counters_seen;
        assert_eq!(
            sent.keyframes_sent, 1,
            "the publisher ignored keyframe requests and kept its GOP"
        );
        assert_eq!(s.video.first_packet_is_keyframe, Some(true));
        let first_key = row.first_frame.expect("viewer got a keyframe");
        println!(
            "obs viewer: first keyframe {} ms after it started connecting",
            first_key.as_millis()
        );
        assert!(
            first_key < Duration::from_secs(1),
            "keyframe after {first_key:?}"
        );
        assert!(s.video.packets > 200 && s.audio.packets > 50);
        assert_eq!(s.video.payload_mismatches + s.audio.payload_mismatches, 0);
        assert_eq!(s.video.seq_gaps, 0);

        assert_eq!(publisher.close().await.unwrap(), 200);
        assert_eq!(viewer.close().await.unwrap(), 200);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_follows_the_next_publisher() {
    let server = start_server(None).await;
    let room = "relay";
    let first = Publisher::connect(&server.whip_url(room), ClientOptions::default())
        .await
        .unwrap();
    first.wait_connected(CONNECT).await.unwrap();
    let viewer = Viewer::connect(&server.whep_url(room), viewer_options())
        .await
        .unwrap();
    viewer.wait_connected(CONNECT).await.unwrap();
    let second = Publisher::connect(&server.whip_url(room), ClientOptions::default())
        .await
        .unwrap();
    second.wait_connected(CONNECT).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = viewer.stats().video.packets;
    assert!(before > 50);
    assert_eq!(first.close().await.unwrap(), 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = viewer.stats();
    report("switching viewer", 0, &s);
    assert!(
        s.video.packets > before + 100,
        "media continues from the second publisher"
    );
    assert_eq!(s.video.ssrcs.len(), 1, "one SSRC across the switch");
    assert_eq!(s.video.seq_gaps, 0, "contiguous across the switch");
    assert_eq!(s.video.payload_mismatches, 0);
    second.close().await.unwrap();
    viewer.close().await.unwrap();
    server.shutdown().await;
}
