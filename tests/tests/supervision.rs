//! A media loop that dies takes the server's health with it: `/healthz` and `/readyz` answer
//! 503, new sessions are refused, and `run_until` returns the failure (the binary then exits
//! non-zero so that its supervisor restarts it). The failure is injected with a fail point;
//! this file is its own test process, so the fail point touches no other test.

use std::time::Duration;

use huddle_tests::start_server;
use reqwest::StatusCode;

async fn status(url: String) -> StatusCode {
    match reqwest::get(&url).await {
        Ok(r) => r.status(),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_media_loop_is_reported_and_ends_the_server() {
    let server = start_server(None).await;
    let base = server.base_url();
    assert_eq!(status(format!("{base}/healthz")).await, StatusCode::OK);
    assert_eq!(status(format!("{base}/readyz")).await, StatusCode::OK);

    fail::cfg("media-loop", "panic(injected fault)").expect("fail point");
    // Wake the loop with a datagram so that it reaches the fail point.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    probe.send_to(b"wake up", server.udp_addr).expect("send");
    let failure = tokio::time::timeout(Duration::from_secs(5), server.media_stopped())
        .await
        .expect("the failure is reported within 5 s");
    fail::remove("media-loop");
    assert!(failure.0.contains("injected fault"), "{failure}");

    assert_eq!(
        status(format!("{base}/healthz")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status(format!("{base}/readyz")).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let refused = reqwest::Client::new()
        .post(server.whip_url("room"))
        .header("content-type", "application/sdp")
        .body("v=0\r\n")
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);

    // What the binary's main does with it: the process exits non-zero.
    let outcome = server.run_until(std::future::pending()).await;
    assert!(
        outcome.is_err(),
        "run_until must report the dead media loop"
    );
}
