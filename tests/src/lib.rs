//! Shared set-up for huddle's end-to-end tests: a server started in-process on ephemeral
//! loopback ports, and logging that shows up under `--nocapture`.

pub mod fuzz;
pub mod impair;

use std::sync::Once;
use std::time::Duration;

use huddle_server::{Config, Server};

pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// Starts huddle on 127.0.0.1 with ephemeral HTTP and UDP ports.
pub async fn start_server(token: Option<&str>) -> Server {
    start_with(Config {
        token: token.map(str::to_owned),
        ..Config::ephemeral()
    })
    .await
}

/// Starts huddle with `config`.
pub async fn start_with(config: Config) -> Server {
    init_logging();
    huddle_client::ensure_crypto_provider();
    match Server::start(config).await {
        Ok(s) => s,
        Err(e) => panic!("server did not start: {e}"),
    }
}

/// Polls `f` every 50 ms until it returns true or `within` passes; returns the last result.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real offer from str0m with a video and an audio section in `direction` (its host
/// candidate is a placeholder: for requests whose media is not needed).
pub fn str0m_offer(direction: str0m::media::Direction) -> String {
    use str0m::media::MediaKind;
    huddle_client::ensure_crypto_provider();
    let mut rtc = str0m::Rtc::builder().build(std::time::Instant::now());
    if let Ok(c) = str0m::Candidate::host(([127, 0, 0, 1], 9).into(), "udp") {
        rtc.add_local_candidate(c);
    }
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, direction, None, None, None);
    api.add_media(MediaKind::Audio, direction, None, None, None);
    match api.apply() {
        Some((offer, _pending)) => offer.to_sdp_string(),
        None => panic!("str0m made no offer"),
    }
}

/// The rows of `GET /rooms/{room}/subscriptions` (none when the request fails).
pub async fn subscriptions(base: &str, room: &str) -> Vec<serde_json::Value> {
    let url = format!("{base}/rooms/{room}/subscriptions");
    let Ok(resp) = reqwest::get(&url).await else {
        return Vec::new();
    };
    let text = resp.text().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    body["subscriptions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
