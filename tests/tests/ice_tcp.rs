//! ICE over TCP end to end: huddle's passive TCP candidates (RFC 6544, RFC 4571 framing) with
//! real peers on loopback. A publisher and a viewer that may only use TCP (the UDP candidates
//! removed from the server's answer, none offered) exchange media with a viewer over UDP; the
//! diagnosis names each selected pair's protocol. Then bad TCP input — garbage, a huge length
//! prefix, STUN-shaped junk, silence, more connections than allowed — is dropped and closed
//! while a UDP session's media flows on without a gap.

use std::time::{Duration, Instant};

use huddle_client::{ClientOptions, Publisher, Viewer, ViewerStats};
use huddle_server::tcp::{ANSWERED_WITHIN, MAX_CONNECTIONS};
use huddle_tests::start_server;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT: Duration = Duration::from_secs(10);

fn tcp_only() -> ClientOptions {
    ClientOptions {
        ice_tcp_only: true,
        ..ClientOptions::default()
    }
}

async fn diagnosis(base: &str, session_url: &str) -> Value {
    let id = session_url.rsplit('/').next().unwrap();
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/sessions/{id}/diagnosis"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn report(name: &str, sent: u64, v: &ViewerStats) {
    println!(
        "{name}: video {}/{sent} packets, {} frames decoded ({} keyframes), gaps {}, mismatches {}, audio {} packets",
        v.video.counters_seen,
        v.video.frames.decoded,
        v.video.frames.keyframes_decoded,
        v.video.seq_gaps,
        v.video.payload_mismatches,
        v.audio.counters_seen,
    );
}

fn assert_media(name: &str, sent: u64, v: &ViewerStats) {
    report(name, sent, v);
    assert!(
        v.video.counters_seen * 100 >= sent * 95,
        "{name}: {} of {sent} video packets",
        v.video.counters_seen
    );
    assert!(v.video.frames.decoded > 30, "{name}: frames decoded");
    assert_eq!(v.video.payload_mismatches, 0, "{name}");
    assert!(v.audio.counters_seen > 50, "{name}: audio");
}

fn pair_protocol(d: &Value) -> &str {
    d["pair"]["protocol"].as_str().unwrap_or("none")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_between_tcp_only_and_udp_peers() {
    let server = start_server(None).await;
    let base = server.base_url();
    let room = "tcp";

    let started = Instant::now();
    let publisher = Publisher::connect(&server.whip_url(room), tcp_only())
        .await
        .unwrap();
    publisher.wait_connected(CONNECT).await.unwrap();
    println!("publisher over TCP connected in {:?}", started.elapsed());

    let udp_viewer = Viewer::connect(&server.whep_url(room), ClientOptions::default())
        .await
        .unwrap();
    let started = Instant::now();
    let tcp_viewer = Viewer::connect(&server.whep_url(room), tcp_only())
        .await
        .unwrap();
    tcp_viewer.wait_connected(CONNECT).await.unwrap();
    println!("viewer over TCP connected in {:?}", started.elapsed());
    udp_viewer.wait_connected(CONNECT).await.unwrap();

    let from = publisher.stats().video_packets_sent;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sent = publisher.stats().video_packets_sent - from;
    for (name, url) in [
        ("publisher", publisher.session_url()),
        ("udp viewer", udp_viewer.session_url()),
        ("tcp viewer", tcp_viewer.session_url()),
    ] {
        let d = diagnosis(&base, url.unwrap()).await;
        println!("{name}: pair {} connect_ms {}", d["pair"], d["connect_ms"]);
        let want = if name == "udp viewer" { "udp" } else { "tcp" };
        assert_eq!(pair_protocol(&d), want, "{name}: {d}");
        assert_eq!(d["state"], "connected", "{name}: {d}");
        assert!(
            d["local_candidates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["protocol"] == "tcp"),
            "{d}"
        );
    }
    // Both viewers joined after the publisher: count what arrived in the 4 s window.
    let (u, t) = (udp_viewer.stats(), tcp_viewer.stats());
    assert_media("udp viewer", sent, &u);
    assert_media("tcp viewer", sent, &t);
    assert!(
        publisher.stats().video_packets_sent > 0 && publisher.stats().connected,
        "publisher"
    );
}

/// Reads until the server closes the connection (EOF or reset), or `within` passes.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tcp_input_is_dropped_and_udp_media_flows_on() {
    let server = start_server(None).await;
    let room = "tcp-bad";
    let publisher = Publisher::connect(&server.whip_url(room), ClientOptions::default())
        .await
        .unwrap();
    publisher.wait_connected(CONNECT).await.unwrap();
    let viewer = Viewer::connect(&server.whep_url(room), ClientOptions::default())
        .await
        .unwrap();
    viewer.wait_connected(CONNECT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = viewer.stats();
    let sent_before = publisher.stats().video_packets_sent;

    let media = server.udp_addrs[0];
    // Garbage: a well-framed first frame that is not STUN.
    let mut garbage = TcpStream::connect(media).await.unwrap();
    garbage
        .write_all(&[
            0, 24, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4, 0xf3,
            0xf2, 0xf1, 0xf0, 0xef, 0xee, 0xed, 0xec, 0xeb, 0xea, 0xe9, 0xe8,
        ])
        .await
        .unwrap();
    // An HTTP request: its first two bytes read as a 18,245-byte length.
    let mut http = TcpStream::connect(media).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The largest length prefix, and as many bytes: a frame no datagram can be, dropped.
    let mut huge = TcpStream::connect(media).await.unwrap();
    let mut frame = vec![0xffu8, 0xff];
    frame.extend(std::iter::repeat_n(0u8, usize::from(u16::MAX)));
    huge.write_all(&frame).await.unwrap();
    // STUN-shaped junk: looks like a binding request, answers nothing the core knows.
    let mut junk = TcpStream::connect(media).await.unwrap();
    let mut stun = vec![0u8, 28, 0, 1, 0, 8, 0x21, 0x12, 0xa4, 0x42];
    stun.extend([7u8; 12]);
    stun.extend([0, 6, 0, 4, b'n', b'o', b'p', b'e']);
    junk.write_all(&stun).await.unwrap();
    // Silence.
    let mut silent = TcpStream::connect(media).await.unwrap();

    let garbage_closed = closed_within(&mut garbage, Duration::from_secs(2)).await;
    println!("garbage closed after {garbage_closed:?}");
    assert!(
        garbage_closed.is_some(),
        "a non-STUN first frame closes at once"
    );

    // More connections than a worker keeps: the ones beyond are closed at once.
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(TcpStream::connect(media).await.unwrap());
    }
    let mut beyond = TcpStream::connect(media).await.unwrap();
    let beyond_closed = closed_within(&mut beyond, Duration::from_secs(2)).await;
    println!("connection beyond {MAX_CONNECTIONS} closed after {beyond_closed:?}");
    assert!(beyond_closed.is_some(), "over the connection limit");

    let limit = ANSWERED_WITHIN + Duration::from_secs(3);
    for (name, stream) in [
        ("http", &mut http),
        ("huge", &mut huge),
        ("stun junk", &mut junk),
        ("silent", &mut silent),
    ] {
        let closed = closed_within(stream, limit).await;
        println!("{name} closed after {closed:?}");
        assert!(closed.is_some(), "{name}: still open after {limit:?}");
    }
    let mut open = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_secs(2)).await.is_none() {
            open += 1;
        }
    }
    assert_eq!(open, 0, "idle connections still open");

    // The UDP session did not notice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = viewer.stats();
    let sent = publisher.stats().video_packets_sent - sent_before;
    let got = after.video.counters_seen - before.video.counters_seen;
    println!(
        "udp viewer during the bad input: {got}/{sent} video packets, gaps {}",
        after.video.seq_gaps
    );
    assert!(got * 100 >= sent * 98, "{got} of {sent}");
    assert_eq!(after.video.seq_gaps, before.video.seq_gaps, "no new gaps");
    assert_eq!(after.video.payload_mismatches, 0);

    // And a TCP peer still gets in afterwards.
    let tcp_viewer = Viewer::connect(&server.whep_url(room), tcp_only())
        .await
        .unwrap();
    tcp_viewer.wait_connected(CONNECT).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = tcp_viewer.stats();
    report("tcp viewer afterwards", 0, &t);
    assert!(t.video.counters_seen > 100 && t.video.frames.decoded > 10);
}
