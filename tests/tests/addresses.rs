//! Several advertised addresses: a server bound to `[::]` (dual-stack) with
//! `--public-ip 127.0.0.1,::1` offers one host candidate per address, and a publisher on IPv4
//! and a viewer on IPv6 reach it through their own family's candidate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use huddle_client::{ClientOptions, Publisher, Viewer};
use huddle_server::Config;
use huddle_tests::{eventually, start_with, str0m_offer};

const CONNECT: Duration = Duration::from_secs(10);

fn candidates(answer: &str) -> Vec<String> {
    answer
        .lines()
        .filter(|l| l.starts_with("a=candidate"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv4_publisher_reaches_an_ipv6_viewer_through_one_dual_stack_socket() {
    let server = start_with(Config {
        udp: "[::]:0".parse().unwrap(),
        public_ip: vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
        workers: Some(1),
        ..Config::ephemeral()
    })
    .await;
    let port = server.udp_addr.port();
    for line in &server.self_check {
        println!("self-check: {line}");
    }
    assert_eq!(
        server.candidates,
        vec![
            format!("127.0.0.1:{port}").parse().unwrap(),
            format!("[::1]:{port}").parse().unwrap()
        ]
    );
    assert!(
        server.self_check.len() >= 2
            && server.self_check[0]
                .starts_with(&format!("candidate: udp 127.0.0.1:{port} typ host"))
            && server.self_check[1].starts_with(&format!("candidate: udp [::1]:{port} typ host")),
        "{:?}",
        server.self_check
    );

    // The answers carry both candidates.
    let http = reqwest::Client::new();
    for url in [server.whip_url("probe"), server.whep_url("probe")] {
        let direction = if url.contains("/whip/") {
            str0m::media::Direction::SendOnly
        } else {
            str0m::media::Direction::RecvOnly
        };
        let response = http
            .post(&url)
            .header("content-type", "application/sdp")
            .body(str0m_offer(direction))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED, "{url}");
        let answer = response.text().await.unwrap();
        let lines = candidates(&answer);
        println!("{url}: {lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(" 127.0.0.1 {port} typ host"))),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!(" ::1 {port} typ host"))),
            "{lines:?}"
        );
    }

    let room = "dual-stack";
    let publisher = Publisher::connect(
        &server.whip_url(room),
        ClientOptions {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    publisher.wait_connected(CONNECT).await.unwrap();
    let viewer = Viewer::connect(
        &server.whep_url(room),
        ClientOptions {
            bind_ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    viewer.wait_connected(CONNECT).await.unwrap();
    let received = eventually(Duration::from_secs(10), || async {
        let s = viewer.stats();
        s.video.packets > 100 && s.video.frames.decoded > 10 && s.audio.packets > 20
    })
    .await;
    let s = viewer.stats();
    println!(
        "viewer on [::1]: {} video packets, {} frames decoded, {} audio packets; publisher sent {} video packets",
        s.video.packets,
        s.video.frames.decoded,
        s.audio.packets,
        publisher.stats().video_packets_sent
    );
    assert!(
        received,
        "the IPv6 viewer gets the IPv4 publisher's video and audio: {s:?}"
    );
    assert_eq!(s.video.payload_mismatches, 0);
    server.shutdown().await;
}
