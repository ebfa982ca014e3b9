//! Connectivity diagnosis end to end: a real str0m client that connects over loopback UDP,
//! and one that posts an offer and never sends a datagram. `GET /sessions/{id}/diagnosis`,
//! the log line of the failure, and the metrics that count it.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use huddle_client::{ClientOptions, Publisher, Viewer};
use huddle_server::Config;
use huddle_tests::{eventually, start_with, str0m_offer};
use serde_json::Value;

/// Every log line of this test binary, as JSON (one object per line). Every test here calls
/// it before starting a server: the first subscriber installed in the process wins, and the
/// shared test set-up would otherwise install its own.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buffer
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_lines() -> Vec<Value> {
    let text = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

async fn get_json(url: &str) -> (u16, Value) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn session_id(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

/// The value of a Prometheus series line that starts with `prefix`.
fn series(body: &str, prefix: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_comes_up_and_one_whose_media_never_arrives() {
    logs();
    let server = start_with(Config {
        connect_timeout: Duration::from_secs(1),
        ..Config::ephemeral()
    })
    .await;
    let base = server.base_url();
    let metrics = || async {
        let (_, v) = get_json(&format!("{base}/metrics")).await;
        v.as_str().unwrap_or_default().to_owned()
    };
    let before = metrics().await;
    for name in [
        "huddle_refused_total{reason=\"not_found\"}",
        "huddle_connection_failures_total{stage=\"ice\",reason=\"no_stun_check\"}",
        "huddle_worker_timer_lag_seconds_count",
        "huddle_bandwidth_estimate_bits_count",
        "huddle_connect_seconds_count",
    ] {
        assert!(
            series(&before, name).is_some(),
            "{name} not listed from the start:\n{before}"
        );
    }

    // A real client: diagnosed as connected, directly, on its host candidate.
    let publisher = Publisher::connect(&server.whip_url("room"), ClientOptions::default())
        .await
        .unwrap();
    publisher
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    let viewer = Viewer::connect(&server.whep_url("room"), ClientOptions::default())
        .await
        .unwrap();
    viewer
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    let good = session_id(publisher.session_url().unwrap());
    let (status, d) = get_json(&format!("{base}/sessions/{good}/diagnosis")).await;
    println!("good: {}", serde_json::to_string_pretty(&d).unwrap());
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["state"], "connected");
    assert_eq!(d["reason"], Value::Null);
    assert_eq!(d["role"], "publisher");
    assert_eq!(d["pair"]["relay"], false);
    assert_eq!(d["pair"]["remote_type"], "host", "{d}");
    assert!(d["stun"]["received"].as_u64().unwrap() > 0);
    assert!(d["connect_ms"].as_u64().is_some(), "{d}");
    assert!(
        d["remote_candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "host" && c["protocol"] == "udp"),
        "{d}"
    );
    assert!(d["ice_states"].as_array().unwrap().len() >= 2, "{d}");

    // An offer whose sender never sends a datagram: after the connect timeout, why.
    let created = huddle_client::http::post_offer(
        &server.whip_url("room"),
        str0m_offer(str0m::media::Direction::SendOnly),
        None,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let bad = session_id(&created.session_url);
    let url = format!("{base}/sessions/{bad}/diagnosis");
    let (_, so_far) = get_json(&url).await;
    assert_eq!(so_far["state"], "connecting", "{so_far}");
    let failed = eventually(Duration::from_secs(5), || async {
        get_json(&url).await.1["state"] == "failed"
    })
    .await;
    let (status, d) = get_json(&url).await;
    println!("failed: {}", serde_json::to_string_pretty(&d).unwrap());
    assert!(failed && status == 200, "{d}");
    assert_eq!(d["reason"], "no_stun_check");
    assert_eq!(d["stage"], "ice");
    assert_eq!(d["stun"]["received"], 0);
    assert!(d["stun"]["sent"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["pair"], Value::Null);
    assert_eq!(d["ended"]["reason"], "timeout");
    assert!(d["ended"]["at_ms"].as_u64().unwrap() >= 1000, "{d}");
    assert!(
        d["text"]
            .as_str()
            .unwrap()
            .contains("no STUN check from it ever arrived")
    );

    // The log line says the same.
    let line = log_lines()
        .into_iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("connection failed"))
        })
        .expect("a log line for the failed connection");
    println!("log line: {line}");
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["reason"], "no_stun_check");
    assert_eq!(line["fields"]["stage"], "ice");
    assert_eq!(line["fields"]["stun_received"], 0);
    assert_eq!(line["fields"]["room"], "room");

    // The core's own lines about a participant carry its span: participant, room, role.
    let peer_line = log_lines()
        .into_iter()
        .find(|l| {
            l["span"]["name"] == "peer"
                && l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("did not connect in time"))
        })
        .expect("a core line in the participant's span");
    println!("span line: {peer_line}");
    assert_eq!(peer_line["span"]["room"], "room");
    assert_eq!(peer_line["span"]["role"], "Publisher");
    assert!(peer_line["span"]["participant"].is_string());

    // Unknown sessions are 404 and counted as refused.
    let (status, _) = get_json(&format!("{base}/sessions/nope/diagnosis")).await;
    assert_eq!(status, 404);

    let moved = eventually(Duration::from_secs(5), || async {
        let after = metrics().await;
        let grew =
            |name: &str| series(&after, name).unwrap_or(0.0) > series(&before, name).unwrap_or(0.0);
        grew("huddle_refused_total{reason=\"not_found\"}")
            && grew("huddle_connection_failures_total{stage=\"ice\",reason=\"no_stun_check\"}")
            && grew("huddle_worker_timer_lag_seconds_count")
            && grew("huddle_bandwidth_estimate_bits_count")
            && grew("huddle_connect_seconds_count")
    })
    .await;
    let after = metrics().await;
    println!(
        "{}",
        after
            .lines()
            .filter(|l| l.contains("refused")
                || l.contains("connection_failures")
                || l.contains("timer_lag")
                || l.contains("bandwidth_estimate")
                || l.contains("connect_seconds"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(moved, "the new series did not move:\n{after}");
    drop(viewer);
    let _ = publisher.close().await;
    server.shutdown().await;
}

/// Reads the room socket until a message of `kind` arrives (others skipped), at most 5 s.
async fn next_of<S>(ws: &mut S, kind: &str) -> Value
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} message in time"))
            .expect("socket open")
            .expect("a message");
        let Ok(text) = msg.into_text() else { continue };
        let v: Value = serde_json::from_str(&text).expect("JSON");
        if v["type"] == kind {
            return v;
        }
    }
}

/// A room member asks for its own diagnosis over the socket (what the page does when its
/// connection fails): before its offer it is told to offer first; after, it gets the
/// record of its connection so far, in the same shape as `GET /sessions/{id}/diagnosis`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_asks_for_its_diagnosis_over_the_room_socket() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    logs();
    let server = start_with(Config::ephemeral()).await;
    let url = format!(
        "{}/rooms/asking/ws",
        server.base_url().replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text(r#"{"type":"join","name":"ada"}"#))
        .await
        .unwrap();
    next_of(&mut ws, "welcome").await;
    ws.send(Message::text(r#"{"type":"diagnosis"}"#))
        .await
        .unwrap();
    let early = next_of(&mut ws, "error").await;
    println!("diagnosis before the offer: {early}");
    assert!(
        early["reason"]
            .as_str()
            .is_some_and(|r| r.contains("offer"))
    );

    // An offer whose only candidate is 127.0.0.1:9: nothing will answer the server's checks.
    let offer = str0m_offer(str0m::media::Direction::SendOnly);
    let msg = serde_json::json!({ "type": "offer", "sdp": offer });
    ws.send(Message::text(msg.to_string())).await.unwrap();
    next_of(&mut ws, "answer").await;
    ws.send(Message::text(r#"{"type":"diagnosis"}"#))
        .await
        .unwrap();
    let d = next_of(&mut ws, "diagnosis").await;
    println!("diagnosis asked for: {d}");
    let d = &d["diagnosis"];
    assert_eq!(d["state"], "connecting", "{d}");
    assert!(d["pair"].is_null(), "{d}");
    assert!(
        d["remote_candidates"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "host")),
        "the offered candidate is listed: {d}"
    );
    server.shutdown().await;
}
