//! Explained decisions over HTTP: `GET /rooms/{room}/subscriptions` says, per viewer and
//! video track, what it receives and why.

use std::time::Duration;

use huddle_client::{ClientOptions, Publisher, SendLayer, Viewer};
use huddle_server::config::Config;
use huddle_tests::{start_server, start_with};

const CONNECT: Duration = Duration::from_secs(10);

/// The subscriptions report at `url` once `done` says so, or the last one after 5 s.
async fn report_until(url: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        if done(&body) || tokio::time::Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriptions_report_explains_each_viewer() {
    let server = start_server(None).await;
    let publisher = Publisher::connect(&server.whip_url("q"), ClientOptions::default())
        .await
        .unwrap();
    publisher.wait_connected(CONNECT).await.unwrap();
    let viewer = Viewer::connect(&server.whep_url("q"), ClientOptions::default())
        .await
        .unwrap();
    viewer.wait_connected(CONNECT).await.unwrap();
    let url = format!("{}/rooms/q/subscriptions", server.base_url());
    let explained = |body: &serde_json::Value| {
        body["subscriptions"].as_array().is_some_and(|rows| {
            rows.len() == 1
                && rows[0]["reason"] == "best"
                && rows[0]["current"]["bitrate"]
                    .as_u64()
                    .is_some_and(|b| b > 100_000)
        })
    };
    let last = report_until(&url, explained).await;
    assert!(explained(&last), "{last:#}");
    let row = &last["subscriptions"][0];
    assert_eq!(row["paused"], false);
    assert!(row["reason_text"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        row["estimate"].as_u64().is_some(),
        "the viewer sends TWCC: {row}"
    );
    let bad = reqwest::get(format!(
        "{}/rooms/no%20such/subscriptions",
        server.base_url()
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), 400);
    viewer.close().await.unwrap();
    publisher.close().await.unwrap();
    server.shutdown().await;
}

/// `--bandwidth-estimation false`: a viewer that sends TWCC gets no estimate, and the full
/// layer of a simulcast publisher at once, because nothing else limits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bandwidth_estimation_a_viewer_gets_the_layer_its_tile_warrants() {
    let server = start_with(Config {
        bandwidth_estimation: false,
        ..Config::ephemeral()
    })
    .await;
    let simulcast = ClientOptions {
        simulcast: SendLayer::three(1_500_000),
        ..ClientOptions::default()
    };
    let publisher = Publisher::connect(&server.whip_url("plain"), simulcast)
        .await
        .unwrap();
    publisher.wait_connected(CONNECT).await.unwrap();
    let viewer = Viewer::connect(&server.whep_url("plain"), ClientOptions::default())
        .await
        .unwrap();
    viewer.wait_connected(CONNECT).await.unwrap();
    let url = format!("{}/rooms/plain/subscriptions", server.base_url());
    let on_full = |body: &serde_json::Value| {
        body["subscriptions"].as_array().is_some_and(|rows| {
            rows.len() == 1 && rows[0]["current"]["rid"] == "f" && rows[0]["reason"] == "best"
        })
    };
    let last = report_until(&url, on_full).await;
    assert!(on_full(&last), "{last:#}");
    let row = &last["subscriptions"][0];
    assert!(row["estimate"].is_null(), "no estimator: {row}");
    viewer.close().await.unwrap();
    publisher.close().await.unwrap();
    server.shutdown().await;
}
