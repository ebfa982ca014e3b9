//! Bad input, tried as a new user (or an attacker) would, while a publisher's media flows to a
//! viewer: every request gets a clear refusal, and the viewer loses nothing.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use huddle_client::{ClientOptions, Publisher, VideoCodec, Viewer};
use huddle_server::Config;
use huddle_server::config::Limits;
use huddle_tests::{start_with, str0m_offer};
use reqwest::StatusCode;
use str0m::media::Direction;
use tokio_tungstenite::tungstenite::Message;

const CONNECT: Duration = Duration::from_secs(10);
const SDP: &str = "application/sdp";

/// A refusal: its status, `Retry-After` and body.
struct Refusal {
    status: StatusCode,
    retry_after: Option<String>,
    body: String,
}

async fn post(url: &str, ctype: &str, body: impl Into<reqwest::Body>) -> Refusal {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap();
    Refusal {
        status: r.status(),
        retry_after: r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: r.text().await.unwrap(),
    }
}

fn expect(what: &str, got: &Refusal, status: StatusCode, says: &str) {
    println!("{what}: {} {}", got.status.as_u16(), got.body.trim());
    assert_eq!(got.status, status, "{what}: {}", got.body);
    assert!(
        got.body.to_lowercase().contains(&says.to_lowercase()),
        "{what}: the reason should mention {says:?}: {:?}",
        got.body
    );
}

/// An offer with `n` video sections, all of VP8 on one bundle.
fn offer_with_sections(n: usize) -> String {
    let mut sdp = String::from("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE");
    for i in 0..n {
        sdp.push_str(&format!(" {i}"));
    }
    sdp.push_str("\r\n");
    for i in 0..n {
        sdp.push_str(&format!(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:{i}\r\n\
             a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
             a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\na=sendonly\r\na=rtcp-mux\r\n\
             a=rtpmap:96 VP8/90000\r\n",
            fp = ["AB"; 32].join(":"),
        ));
    }
    sdp
}

/// A valid offer whose only codec is one huddle does not forward (H.265).
fn offer_with_unsupported_codec() -> String {
    offer_with_sections(1).replace("VP8/90000", "H265/90000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_reasons_and_media_flows_on() {
    let server = start_with(Config {
        limits: Limits {
            posts_per_second_per_ip: 20,
            ws_messages_per_second: 50,
            ..Limits::default()
        },
        ..Config::ephemeral()
    })
    .await;
    let room = "steady";
    let publisher = Publisher::connect(
        &server.whip_url(room),
        ClientOptions {
            video: Some(VideoCodec::Vp8),
            video_bitrate_bps: 800_000,
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    publisher.wait_connected(CONNECT).await.unwrap();
    let viewer = Viewer::connect(&server.whep_url(room), ClientOptions::default())
        .await
        .unwrap();
    viewer.wait_connected(CONNECT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = viewer.stats();
    let sent_before = publisher.stats();

    let whip = server.whip_url("other");
    let whep = server.whep_url(room);
    expect(
        "wrong content type",
        &post(&whip, "text/plain", "v=0").await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "application/sdp",
    );
    expect(
        "empty body",
        &post(&whip, SDP, "").await,
        StatusCode::BAD_REQUEST,
        "offer",
    );
    expect(
        "1 MB body",
        &post(&whip, SDP, vec![b'a'; 1 << 20]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "limit",
    );
    expect(
        "offer with no media",
        &post(
            &whip,
            SDP,
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "no m-lines",
    );
    expect(
        "unsupported codecs only",
        &post(&whip, SDP, offer_with_unsupported_codec()).await,
        StatusCode::BAD_REQUEST,
        "none sends Opus, VP8",
    );
    expect(
        "200 m-lines",
        &post(&whip, SDP, offer_with_sections(200)).await,
        StatusCode::BAD_REQUEST,
        "200 media sections",
    );
    expect(
        "not UTF-8",
        &post(&whip, SDP, vec![0xff, 0xfe, 0x00, 0x80]).await,
        StatusCode::BAD_REQUEST,
        "utf-8",
    );

    // A session, deleted, then patched.
    let created = reqwest::Client::new()
        .post(&whep)
        .header("content-type", SDP)
        .body(str0m_offer(Direction::RecvOnly))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let session = format!("{}{location}", server.base_url());
    let deleted = reqwest::Client::new()
        .delete(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::OK);
    let patched = reqwest::Client::new()
        .patch(&session)
        .header("content-type", "application/trickle-ice-sdpfrag")
        .body("a=candidate:1 1 udp 2113929471 127.0.0.1 40001 typ host\r\n")
        .send()
        .await
        .unwrap();
    let status = patched.status();
    let body = patched.text().await.unwrap();
    println!("PATCH to a deleted session: {} {body}", status.as_u16());
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The room WebSocket: JSON of the wrong shape is answered and the page stays; a flood of
    // messages is disconnected.
    let ws_url = format!(
        "{}/rooms/chatty/ws",
        server.base_url().replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    for wrong in [
        r#"{"type":"dance"}"#,
        r#"{"type":"join","name":42}"#,
        "[1,2,3]",
        "not json",
    ] {
        ws.send(Message::text(wrong)).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .expect("a reply")
            .expect("still open")
            .unwrap();
        let reply = reply.into_text().unwrap().to_string();
        println!("WebSocket {wrong}: {reply}");
        assert!(reply.contains(r#""type":"error""#), "{wrong}: {reply}");
    }
    let flood = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut sent = 0u32;
        // 10,000 messages within a second, or until the server closes the socket.
        while sent < 10_000 && started.elapsed() < Duration::from_secs(1) {
            if ws
                .send(Message::text(
                    r#"{"type":"mute","kind":"audio","muted":true}"#,
                ))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        let (mut closed, mut replies, mut told) = (false, 0u32, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, ws.next()).await {
            match msg {
                Ok(Message::Text(t)) => {
                    replies += 1;
                    if t.contains("flood") {
                        told = Some(t.to_string());
                    }
                }
                Ok(Message::Close(_)) | Err(_) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        (sent, closed, replies, told)
    });
    let (sent, closed, replies, told) = flood.await.unwrap();
    println!(
        "WebSocket flood: {sent} messages sent, {replies} replies, closed {closed}, told {told:?}"
    );
    assert!(closed, "a flooding page is disconnected");
    assert!(told.is_some(), "and told why");

    // Too many session requests from one address: 429 with Retry-After.
    let mut limited = None;
    for _ in 0..40 {
        let r = post(&whip, SDP, "v=0").await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("a burst of POSTs is rate-limited");
    expect(
        "POST burst",
        &limited,
        StatusCode::TOO_MANY_REQUESTS,
        "per second",
    );
    assert!(limited.retry_after.is_some(), "429 carries Retry-After");

    // Meanwhile the viewer lost nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = publisher.stats();
    // What was sent by now may still be in flight (str0m paces video): let it arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = viewer.stats();
    let video_sent = sent.video_packets_sent - sent_before.video_packets_sent;
    let video_got = after.video.counters_seen - before.video.counters_seen;
    let audio_got = after.audio.counters_seen - before.audio.counters_seen;
    println!(
        "during the bad input: video {video_got} of {video_sent} packets, audio {audio_got}, \
         gaps {}",
        after.video.seq_gaps
    );
    assert!(
        video_got * 100 >= video_sent * 99,
        "video kept flowing: {video_got} of {video_sent}"
    );
    assert!(audio_got > 0, "audio kept flowing");
    assert_eq!(after.video.seq_gaps, 0, "no video lost");
    assert_eq!(after.video.payload_mismatches, 0);
    viewer.close().await.unwrap();
    publisher.close().await.unwrap();
    server.shutdown().await;
}
