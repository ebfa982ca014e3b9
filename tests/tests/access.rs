//! Access tokens end to end: WHIP needs `publish`, WHEP `subscribe`, operator endpoints
//! `admin`; a token is for one room (or `*`); 401 for a missing or bad token, 403 for a good
//! one that does not grant the room or the action; a session is the creating token's; on the
//! room WebSocket the token's identity is the name others see.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use huddle_client::{ClientOptions, Publisher};
use huddle_server::Config;
use huddle_server::auth::{Claims, Grant, Signer};
use huddle_tests::start_with;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "test-secret";

fn token(sub: &str, room: &str, grants: &[Grant]) -> String {
    Signer::new(SECRET)
        .issue(&Claims::new(
            sub,
            room,
            grants.to_vec(),
            Duration::from_secs(600),
        ))
        .unwrap()
}

async fn with_secret() -> huddle_server::Server {
    start_with(Config {
        jwt_secret: Some(SECRET.into()),
        no_auth: false,
        ..Config::ephemeral()
    })
    .await
}

/// A recvonly offer a WHEP endpoint accepts (its media is not needed here).
fn recv_offer() -> String {
    huddle_tests::str0m_offer(str0m::media::Direction::RecvOnly)
}

async fn post(url: &str, token: Option<&str>) -> (StatusCode, String, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/sdp")
        .body(recv_offer());
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = req.send().await.unwrap();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (res.status(), res.text().await.unwrap(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_rooms_and_sessions_are_enforced() {
    let server = with_secret().await;
    let whep = server.whep_url("demo");
    let viewer = token("ann", "demo", &[Grant::Subscribe]);

    let (status, body, _) = post(&whep, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body, _) = post(&whep, Some("garbage")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("invalid bearer token"), "{body}");
    let expired = Signer::new(SECRET)
        .issue(&Claims {
            exp: 1,
            ..Claims::new("ann", "demo", vec![Grant::Subscribe], Duration::ZERO)
        })
        .unwrap();
    let (status, body, _) = post(&whep, Some(&expired)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("expired"), "{body}");
    let (status, body, _) = post(&server.whep_url("other"), Some(&viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("room"), "{body}");
    let (status, body, _) = post(&server.whip_url("demo"), Some(&viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("publish"), "{body}");

    let (status, body, location) = post(&whep, Some(&viewer)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let session = format!("{}{}", server.base_url(), location.unwrap());
    let delete = |t: String| {
        let session = session.clone();
        async move {
            reqwest::Client::new()
                .delete(&session)
                .header("authorization", format!("Bearer {t}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let someone_else = token("bob", "demo", &[Grant::Subscribe, Grant::Publish]);
    assert_eq!(
        delete(someone_else).await,
        StatusCode::FORBIDDEN,
        "not bob's session"
    );
    assert_eq!(delete(viewer).await, StatusCode::OK);

    let metrics = format!("{}/metrics", server.base_url());
    let get = |t: Option<String>| {
        let metrics = metrics.clone();
        async move {
            let mut req = reqwest::Client::new().get(&metrics);
            if let Some(t) = t {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            req.send().await.unwrap().status()
        }
    };
    assert_eq!(get(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(Some(token("ann", "*", &[Grant::Subscribe]))).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(Some(token("ops", "*", &[Grant::Admin]))).await,
        StatusCode::OK
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_is_named_by_its_token_and_its_publisher_by_whip() {
    let server = with_secret().await;
    let ws = format!("{}/rooms/demo/ws", server.base_url().replace("http", "ws"));
    assert!(
        tokio_tungstenite::connect_async(&ws).await.is_err(),
        "no token, no socket"
    );
    let member = token("Ada Lovelace", "demo", &[Grant::Subscribe]);
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{ws}?token={member}"))
        .await
        .unwrap();
    socket
        .send(Message::text(
            json!({"type": "join", "name": "someone else"}).to_string(),
        ))
        .await
        .unwrap();
    let welcome: Value = match socket.next().await.unwrap().unwrap() {
        Message::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(welcome["type"], "welcome");
    // A second member sees the first by its token's name.
    let other = token("Ben", "demo", &[Grant::Subscribe]);
    let (mut second, _) = tokio_tungstenite::connect_async(format!("{ws}?token={other}"))
        .await
        .unwrap();
    second
        .send(Message::text(
            json!({"type": "join", "name": "x"}).to_string(),
        ))
        .await
        .unwrap();
    let welcome: Value = match second.next().await.unwrap().unwrap() {
        Message::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        welcome["participants"][0]["name"], "Ada Lovelace",
        "{welcome}"
    );
    // WHIP with a publish token works; the static-token-free server refuses a bad one.
    let publisher = Publisher::connect(
        &server.whip_url("demo"),
        ClientOptions {
            token: Some(token("obs", "demo", &[Grant::Publish])),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    publisher
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(publisher.close().await.unwrap(), 200);
    server.shutdown().await;
}
