//! ICE servers handed to clients: WHIP/WHEP `Link: <…>; rel="ice-server"` headers on 201 and
//! OPTIONS (RFC 9725 §4.6), and `iceServers` in the room WebSocket's `welcome`, with TURN REST
//! credentials (coturn `use-auth-secret`) that expire after `--turn-ttl`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use huddle_server::Config;
use huddle_server::ice::turn_rest_credential;
use reqwest::StatusCode;
use serde_json::Value;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "turn-shared-secret";

fn config() -> Config {
    Config {
        stun: vec!["stun:127.0.0.1:3478".into()],
        turn: vec![
            "turn:127.0.0.1:3478?transport=udp".into(),
            "turn:127.0.0.1:3478?transport=tcp".into(),
        ],
        turn_secret: Some(SECRET.into()),
        turn_ttl: Duration::from_secs(3600),
        ..Config::ephemeral()
    }
}

fn offer() -> String {
    huddle_client::ensure_crypto_provider();
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host("127.0.0.1:40000".parse().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let (offer, _pending) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

/// The `Link` headers of a response, as strings.
fn links(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect()
}

/// Checks a TURN `Link` header: its URL, and that its credential is the TURN REST one for
/// its username, which expires about `ttl` from now.
fn check_turn_link(link: &str, url: &str, ttl: Duration) {
    let prefix = format!("<{url}>; rel=\"ice-server\"; username=\"");
    let rest = link
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{link} is not a TURN link for {url}"));
    let (username, rest) = rest.split_once('"').expect("username closed");
    let credential = rest
        .strip_prefix("; credential=\"")
        .and_then(|r| r.strip_suffix("\"; credential-type=\"password\""))
        .unwrap_or_else(|| panic!("{link}: credential and credential-type"));
    let (expiry, identity) = username.split_once(':').expect("expiry:identity");
    let expiry: u64 = expiry.parse().expect("expiry in seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let want = now + ttl.as_secs();
    assert!(
        expiry.abs_diff(want) <= 5,
        "expiry {expiry}, expected about {want}"
    );
    assert_eq!(
        turn_rest_credential(SECRET, identity, expiry),
        (username.to_owned(), credential.to_owned()),
        "credential is base64(HMAC-SHA1(secret, username))"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_and_whep_answers_and_options_carry_ice_server_links() {
    let server = huddle_tests::start_with(config()).await;
    let http = reqwest::Client::new();
    for url in [server.whip_url("ice"), server.whep_url("ice")] {
        let direction = if url.contains("/whip/") {
            "whip"
        } else {
            "whep"
        };
        let response = http
            .request(reqwest::Method::OPTIONS, &url)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let options = links(&response);
        println!("OPTIONS {direction}:\n  {}", options.join("\n  "));
        assert_eq!(options.len(), 3, "{options:?}");
        assert_eq!(options[0], "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
        check_turn_link(
            &options[1],
            "turn:127.0.0.1:3478?transport=udp",
            Duration::from_secs(3600),
        );
        check_turn_link(
            &options[2],
            "turn:127.0.0.1:3478?transport=tcp",
            Duration::from_secs(3600),
        );
    }

    let response = http
        .post(server.whip_url("ice"))
        .header("content-type", "application/sdp")
        .body(offer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = links(&response);
    println!("201 Created:\n  {}", created.join("\n  "));
    assert_eq!(created.len(), 3, "{created:?}");
    assert_eq!(created[0], "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
    check_turn_link(
        &created[1],
        "turn:127.0.0.1:3478?transport=udp",
        Duration::from_secs(3600),
    );
    check_turn_link(
        &created[2],
        "turn:127.0.0.1:3478?transport=tcp",
        Duration::from_secs(3600),
    );
    // Browsers on other origins read them too.
    let preflight = http
        .request(reqwest::Method::OPTIONS, server.whip_url("ice"))
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let exposed = preflight
        .headers()
        .get("access-control-expose-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default();
    assert!(
        exposed.is_empty() || exposed.contains("link"),
        "Link exposed to pages: {exposed}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_credentials_need_a_token_that_may_use_the_endpoint() {
    let server = huddle_tests::start_with(Config {
        no_auth: false,
        token: Some("s3cret".into()),
        ..config()
    })
    .await;
    let http = reqwest::Client::new();
    let anonymous = http
        .request(reqwest::Method::OPTIONS, server.whip_url("ice"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        links(&anonymous),
        ["<stun:127.0.0.1:3478>; rel=\"ice-server\""],
        "without a token: STUN only"
    );
    let authorized = http
        .request(reqwest::Method::OPTIONS, server.whip_url("ice"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    let got = links(&authorized);
    assert_eq!(got.len(), 3, "{got:?}");
    check_turn_link(
        &got[1],
        "turn:127.0.0.1:3478?transport=udp",
        Duration::from_secs(3600),
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_welcome_lists_ice_servers_with_credentials() {
    let server = huddle_tests::start_with(config()).await;
    let url = format!("ws://{}/rooms/ice/ws", server.http_addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::text(r#"{"type":"join","name":"ada"}"#))
        .await
        .unwrap();
    let welcome: Value = loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a welcome within 5 s")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            break serde_json::from_str(&t).unwrap();
        }
    };
    assert_eq!(welcome["type"], "welcome");
    let servers = welcome["iceServers"].as_array().expect("iceServers");
    println!("welcome iceServers: {}", welcome["iceServers"]);
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(
        servers[0]["urls"],
        serde_json::json!(["stun:127.0.0.1:3478"])
    );
    assert!(servers[0].get("username").is_none());
    assert_eq!(
        servers[1]["urls"],
        serde_json::json!([
            "turn:127.0.0.1:3478?transport=udp",
            "turn:127.0.0.1:3478?transport=tcp"
        ])
    );
    let username = servers[1]["username"].as_str().unwrap();
    let credential = servers[1]["credential"].as_str().unwrap();
    let (expiry, identity) = username.split_once(':').unwrap();
    let expiry: u64 = expiry.parse().unwrap();
    assert_eq!(turn_rest_credential(SECRET, identity, expiry).1, credential);
    server.shutdown().await;
}

#[test]
fn turn_without_a_secret_is_refused_at_start() {
    let config = Config {
        turn_secret: None,
        ..config()
    };
    let e = config.validate().unwrap_err().to_string();
    assert!(e.contains("--turn-secret"), "{e}");
}
