//! Churn soak: join/leave cycles through WHIP, WHEP and the room WebSocket with real peers —
//! a third abandoned without DELETE or leave, some that never start ICE — while a publisher
//! streams. At the end no session, room, participant, subscription, timer or demux entry is
//! left, and memory is where it settled once the churn reached its steady state.
//!
//! Abandoned peers live until their timeouts (8 s of silence, 20 s never connected), so the
//! number alive — and the heap's high-water mark, which the allocator keeps — grows for the
//! first [`STEADY_AFTER`] of churn. Memory is taken as settled after the first hundred cycles
//! or that long, whichever comes later.
//!
//! The suite runs a short version; `HUDDLE_CHURN_CYCLES=3000 cargo test -p
//! huddle-tests --test churn -- --nocapture` is the long one (docs/soak.md).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use huddle_client::{ClientOptions, Publisher, Viewer};
use huddle_tests::{eventually, start_server};
use tokio_tungstenite::tungstenite::Message;

/// Cycles in the suite's version; each runs a handful of peers at once.
const SHORT: usize = 120;
const AT_ONCE: usize = 6;
/// Twice the longest an abandoned peer lives: from then on as many leave as arrive, and the
/// heap has seen its peak population.
const STEADY_AFTER: Duration = Duration::from_secs(40);

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A recvonly offer nobody will ever connect (the peer never starts ICE).
fn silent_offer() -> String {
    let mut rtc = str0m::Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(str0m::Candidate::host("127.0.0.1:9".parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Video,
        str0m::media::Direction::RecvOnly,
        None,
        None,
        None,
    );
    api.apply().unwrap().0.to_sdp_string()
}

/// One peer's life, chosen by `n`.
async fn cycle(whep: String, ws: String, n: usize) -> Result<(), String> {
    match n % 6 {
        // A viewer that connects, receives, and says goodbye.
        0 | 1 => {
            let v = Viewer::connect(&whep, ClientOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            v.wait_connected(Duration::from_secs(10))
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let status = v.close().await.map_err(|e| e.to_string())?;
            (status == 200)
                .then_some(())
                .ok_or(format!("DELETE {status}"))
        }
        // A viewer that connects and vanishes (no DELETE): the server times it out.
        2 => {
            let v = Viewer::connect(&whep, ClientOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            v.wait_connected(Duration::from_secs(10))
                .await
                .map_err(|e| e.to_string())?;
            drop(v);
            Ok(())
        }
        // An offer from a peer that never starts ICE.
        3 => {
            let status = reqwest::Client::new()
                .post(&whep)
                .header("content-type", "application/sdp")
                .body(silent_offer())
                .send()
                .await
                .map_err(|e| e.to_string())?
                .status();
            (status == 201)
                .then_some(())
                .ok_or(format!("POST {status}"))
        }
        // A room member that joins and leaves politely…
        4 => {
            let (mut s, _) = tokio_tungstenite::connect_async(&ws)
                .await
                .map_err(|e| e.to_string())?;
            s.send(Message::text(r#"{"type":"join","name":"churn"}"#))
                .await
                .map_err(|e| e.to_string())?;
            let _ = s.next().await;
            s.send(Message::text(r#"{"type":"leave"}"#))
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        }
        // …and one that offers, never connects, and drops its socket.
        _ => {
            let (mut s, _) = tokio_tungstenite::connect_async(&ws)
                .await
                .map_err(|e| e.to_string())?;
            s.send(Message::text(r#"{"type":"join","name":"churn"}"#))
                .await
                .map_err(|e| e.to_string())?;
            let _ = s.next().await;
            let offer = serde_json::json!({"type": "offer", "sdp": silent_offer()}).to_string();
            s.send(Message::text(offer))
                .await
                .map_err(|e| e.to_string())?;
            let _ = s.next().await;
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_nothing_behind() {
    let cycles: usize = std::env::var("HUDDLE_CHURN_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SHORT);
    let server = start_server(None).await;
    let publisher = Publisher::connect(&server.whip_url("churn"), ClientOptions::default())
        .await
        .unwrap();
    publisher
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    let whep = server.whep_url("churn");
    let ws = format!("{}/rooms/churn/ws", server.base_url().replace("http", "ws"));
    let started = Instant::now();
    let mut settled = None;
    let mut failures = Vec::new();
    for batch in 0..cycles.div_ceil(AT_ONCE) {
        let mut tasks = Vec::new();
        for k in 0..AT_ONCE {
            let n = batch * AT_ONCE + k;
            tasks.push(tokio::spawn(cycle(whep.clone(), ws.clone(), n)));
        }
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                failures.push(e);
            }
        }
        let done = (batch + 1) * AT_ONCE;
        if settled.is_none() && done >= 100.min(cycles) && started.elapsed() >= STEADY_AFTER {
            settled = Some((done, rss_kib()));
        }
        if done.is_multiple_of(500) {
            println!(
                "churn: {done} cycles, {:.1} s, RSS {} KiB",
                started.elapsed().as_secs_f64(),
                rss_kib()
            );
        }
    }
    let churned = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} cycles failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(publisher.close().await.unwrap(), 200);
    // Abandoned peers leave by timeout: 8 s of silence, 20 s never connected.
    let empty = eventually(Duration::from_secs(40), || async {
        server.stats().await.is_some_and(|s| {
            s.participants == 0
                && s.rooms == 0
                && s.tracks == 0
                && s.subscriptions == 0
                && s.relay_links == 0
                && s.demux_ufrags == 0
                && s.demux_addrs == 0
                && s.timer_entries == 0
        })
    })
    .await;
    let stats = server.stats().await;
    assert!(empty, "left behind: {stats:?}");
    assert_eq!(server.sessions(), 0, "no HTTP session left");
    let end = rss_kib();
    // A run shorter than the steady state compares with its own end.
    let (at, settled) = settled.unwrap_or((cycles, end));
    println!(
        "churn: {cycles} cycles in {:.1} s; RSS {settled} KiB once settled (after {at} cycles), \
         {end} KiB at the end ({:+.1}%)",
        churned.as_secs_f64(),
        (end as f64 - settled as f64) * 100.0 / settled as f64
    );
    assert!(
        end as f64 <= settled as f64 * 1.05,
        "memory grew from {settled} KiB to {end} KiB"
    );
    server.shutdown().await;
}
