//! The HTTP face of huddle, as a WHIP/WHEP client sees it (RFC 9725): status codes, headers,
//! bodies, CORS and bearer auth, against a server started in-process with real str0m offers.
//!
//! Each test starts its own server on ephemeral loopback ports.

use std::net::SocketAddr;
use std::time::Duration;

use huddle_server::Server;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use str0m::media::Direction;

const TOKEN: &str = "s3cret";
const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";
const TRICKLE: &str =
    "a=candidate:1 1 udp 2113929471 127.0.0.1 40001 typ host\r\na=end-of-candidates\r\n";
const RESTART: &str = "a=ice-ufrag:newufrag\r\na=ice-pwd:newpasswordnewpasswordnew\r\n";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn start(token: Option<&str>) -> Server {
    huddle_tests::start_server(token).await
}

/// A real offer from str0m with one video and one audio section in `direction`.
fn offer(direction: Direction) -> String {
    huddle_tests::str0m_offer(direction)
}

/// A publisher's offer (WHIP).
fn send_offer() -> String {
    offer(Direction::SendOnly)
}

/// A viewer's offer (WHEP).
fn recv_offer() -> String {
    offer(Direction::RecvOnly)
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Sends `method url` with an optional content type, bearer token and extra headers.
async fn request(
    method: Method,
    url: &str,
    ctype: Option<&str>,
    body: impl Into<reqwest::Body>,
    token: Option<&str>,
    extra: &[(&'static str, &str)],
) -> Response {
    let mut req = client().request(method.clone(), url).body(body);
    if let Some(ctype) = ctype {
        req = req.header("content-type", ctype);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

async fn post(
    url: &str,
    ctype: &str,
    body: impl Into<reqwest::Body>,
    token: Option<&str>,
) -> Response {
    request(Method::POST, url, Some(ctype), body, token, &[]).await
}

async fn patch(
    url: &str,
    ctype: &str,
    body: &str,
    token: Option<&str>,
    if_match: Option<&str>,
) -> Response {
    let extra: Vec<(&'static str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
    request(
        Method::PATCH,
        url,
        Some(ctype),
        body.to_owned(),
        token,
        &extra,
    )
    .await
}

async fn delete(url: &str, token: Option<&str>) -> Response {
    request(Method::DELETE, url, None, "", token, &[]).await
}

async fn options(url: &str, extra: &[(&'static str, &str)]) -> Response {
    request(Method::OPTIONS, url, None, "", None, extra).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(|v: &HeaderValue| v.to_str().expect("ASCII header"))
}

/// Asserts the status, showing the body when it is not the expected one.
async fn expect_status(response: Response, expected: StatusCode) -> (HeaderMap, String) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(
        status, expected,
        "unexpected status; headers {headers:?}, body {body:?}"
    );
    (headers, body)
}

/// A session created by a 201 to a WHIP/WHEP POST.
#[derive(Debug)]
struct Session {
    /// Absolute URL of the session resource.
    url: String,
    /// The `Location` header as sent.
    location: String,
    etag: String,
    answer: String,
    headers: HeaderMap,
}

async fn create(server: &Server, url: &str, offer: String, token: Option<&str>) -> Session {
    let (headers, answer) =
        expect_status(post(url, SDP, offer, token).await, StatusCode::CREATED).await;
    let location = header(&headers, "location").expect("Location").to_owned();
    let etag = header(&headers, "etag").expect("ETag").to_owned();
    let url = if location.starts_with('/') {
        format!("{}{location}", server.base_url())
    } else {
        location.clone()
    };
    Session {
        url,
        location,
        etag,
        answer,
        headers,
    }
}

async fn publish(server: &Server, room: &str, token: Option<&str>) -> Session {
    create(server, &server.whip_url(room), send_offer(), token).await
}

/// Polls the server's stats until `check` holds or `within` passes.
async fn stats_until(
    server: &Server,
    within: Duration,
    check: impl Fn(&huddle_core::SfuStats) -> bool,
) -> huddle_core::SfuStats {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let stats = server.stats().await.expect("media loop running");
        if check(&stats) || tokio::time::Instant::now() >= deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// WHIP POST
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_post_answers_201_with_sdp_location_and_etag() {
    let server = start(None).await;
    let session = publish(&server, "room", None).await;

    assert_eq!(header(&session.headers, "content-type"), Some(SDP));
    assert!(
        session.location.starts_with("/whip/room/") && session.location.len() > "/whip/room/".len(),
        "Location {:?} is not a path under /whip/room/",
        session.location
    );
    assert!(
        session.etag.len() > 2 && session.etag.starts_with('"') && session.etag.ends_with('"'),
        "ETag {:?} is not a quoted string",
        session.etag
    );

    let answer = &session.answer;
    assert!(answer.starts_with("v=0"), "answer: {answer}");
    let port = server.advertised.port();
    assert!(
        answer
            .lines()
            .any(|l| l.starts_with("a=candidate") && l.contains(&format!(" {port} typ host"))),
        "no candidate on UDP port {port} in answer: {answer}"
    );
    assert!(
        answer.lines().any(|l| l.trim() == "a=rtcp-mux"),
        "no a=rtcp-mux in answer: {answer}"
    );
    assert_eq!(server.sessions(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtcp_mux_only_in_the_offer_is_echoed() {
    let server = start(None).await;
    let offer: String = send_offer()
        .split_inclusive('\n')
        .map(|line| {
            if line.trim_end() == "a=rtcp-mux" {
                format!("{line}a=rtcp-mux-only\r\n")
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(offer.contains("a=rtcp-mux-only"), "test offer: {offer}");

    let session = create(&server, &server.whip_url("room"), offer, None).await;
    assert!(
        session
            .answer
            .lines()
            .any(|l| l.trim() == "a=rtcp-mux-only"),
        "answer lacks a=rtcp-mux-only: {}",
        session.answer
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_type_is_415_and_charset_parameter_is_accepted() {
    let server = start(None).await;
    let url = server.whip_url("room");

    let (headers, _) = expect_status(
        post(&url, "text/plain", send_offer(), None).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    assert_eq!(header(&headers, "accept-post"), Some(SDP));

    expect_status(
        post(&url, "application/sdp; charset=utf-8", send_offer(), None).await,
        StatusCode::CREATED,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_offer_is_400_with_a_reason() {
    let server = start(None).await;
    let (_, body) = expect_status(
        post(&server.whip_url("room"), SDP, "hello", None).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(!body.trim().is_empty(), "400 without a reason");
    assert_eq!(server.sessions(), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_in_the_wrong_direction_is_400_with_the_reason() {
    let server = start(None).await;

    // A "publisher" whose sections all receive.
    let (_, body) = expect_status(
        post(&server.whip_url("room"), SDP, recv_offer(), None).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("none sends"), "WHIP body: {body:?}");

    // A "viewer" whose sections all send.
    let (_, body) = expect_status(
        post(&server.whep_url("room"), SDP, send_offer(), None).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("none receives"), "WHEP body: {body:?}");

    let stats = server.stats().await.unwrap();
    assert_eq!((stats.participants, stats.rooms), (0, 0), "{stats:?}");
    assert_eq!(server.sessions(), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_64_kib_is_413() {
    let server = start(None).await;
    let mut offer = send_offer();
    while offer.len() <= 64 * 1024 {
        offer.push_str("a=x-padding:0123456789abcdef0123456789abcdef0123456789abcdef\r\n");
    }
    expect_status(
        post(&server.whip_url("room"), SDP, offer, None).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_room_name_is_400() {
    let server = start(None).await;
    let url = format!("{}/whip/a%20b", server.base_url());
    let (_, body) = expect_status(
        post(&url, SDP, send_offer(), None).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(!body.trim().is_empty());
    assert_eq!(server.sessions(), 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_before_any_publisher_is_accepted() {
    let server = start(None).await;
    let session = create(&server, &server.whep_url("room"), recv_offer(), None).await;
    assert!(
        session.location.starts_with("/whep/room/"),
        "{}",
        session.location
    );
    assert!(session.answer.starts_with("v=0"));
    let stats = server.stats().await.unwrap();
    assert_eq!((stats.participants, stats.rooms), (1, 1), "{stats:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_are_200_without_a_token() {
    let server = start(Some(TOKEN)).await;
    for path in ["healthz", "readyz"] {
        let response = client()
            .get(format!("{}/{path}", server.base_url()))
            .send()
            .await
            .unwrap();
        expect_status(response, StatusCode::OK).await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_list_every_series_from_the_start() {
    let server = start(None).await;
    let body = client()
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "huddle_rooms",
        "huddle_participants",
        "huddle_tracks",
        "huddle_subscriptions",
        "huddle_http_sessions",
        "huddle_packets_received_total",
        "huddle_packets_forwarded_total",
        "huddle_keyframe_requests_sent_total",
        "huddle_datagrams_unrouted_total",
        "huddle_datagrams_malformed_total",
        "huddle_refused_total{reason=\"client_limit\"}",
        "huddle_connection_failures_total{stage=\"ice\",reason=\"no_stun_check\"}",
        "huddle_worker_timer_lag_seconds_count",
        "huddle_bandwidth_estimate_bits_count",
        "huddle_connect_seconds_count",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing from /metrics:\n{body}"
        );
        let family = name
            .split(['{', ' '])
            .next()
            .unwrap_or(name)
            .trim_end_matches("_count");
        assert!(
            body.contains(&format!("# HELP {family} ")),
            "{family} has no help"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_participants() {
    let server = start(None).await;
    let _session = publish(&server, "room", None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let shown = loop {
        let body = client()
            .get(format!("{}/metrics", server.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let shown = body
            .lines()
            .any(|l| l.starts_with("huddle_participants") && !l.ends_with(" 0"));
        if shown || tokio::time::Instant::now() >= deadline {
            break shown;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(shown, "/metrics shows the publisher");
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// PATCH: trickle and ICE restart
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_trickles_candidates_with_and_without_if_match() {
    let server = start(None).await;
    let s = publish(&server, "room", None).await;

    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, None, None).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, None, Some(&s.etag)).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, None, Some("\"nope\"")).await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_refuses_wrong_type_and_garbage_candidates() {
    let server = start(None).await;
    let s = publish(&server, "room", None).await;

    expect_status(
        patch(&s.url, "text/plain", TRICKLE, None, None).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    let (_, body) = expect_status(
        patch(&s.url, SDPFRAG, "a=candidate:garbage\r\n", None, None).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(!body.trim().is_empty());

    // The session survives both.
    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, None, None).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_answers_200_with_a_new_etag() {
    let server = start(None).await;
    let s = publish(&server, "room", None).await;

    let (headers, body) = expect_status(
        patch(&s.url, SDPFRAG, RESTART, None, Some("*")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(header(&headers, "content-type"), Some(SDPFRAG));
    let new_etag = header(&headers, "etag")
        .expect("ETag after restart")
        .to_owned();
    assert_ne!(new_etag, s.etag, "ETag unchanged by an ICE restart");
    assert!(
        new_etag.starts_with('"') && new_etag.ends_with('"'),
        "{new_etag}"
    );
    for needle in ["a=ice-ufrag:", "a=ice-pwd:", "a=candidate"] {
        assert!(
            body.contains(needle),
            "restart answer lacks {needle}: {body}"
        );
    }
    let port = server.advertised.port();
    assert!(body.contains(&format!(" {port} typ host")), "{body}");

    // The old ETag names the old ICE session.
    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, None, Some(&s.etag)).await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    // The new one works.
    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, None, Some(&new_etag)).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// DELETE and unknown sessions
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_session_is_404() {
    let server = start(None).await;
    // A real session in the same room, so that only the id is wrong.
    let _s = publish(&server, "room", None).await;
    let url = format!(
        "{}/whip/room/00000000000000000000000000000000",
        server.base_url()
    );

    expect_status(
        patch(&url, SDPFRAG, TRICKLE, None, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_status(delete(&url, None).await, StatusCode::NOT_FOUND).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_ends_the_session() {
    let server = start(None).await;
    let s = publish(&server, "room", None).await;
    assert_eq!(server.sessions(), 1);

    expect_status(delete(&s.url, None).await, StatusCode::OK).await;
    expect_status(delete(&s.url, None).await, StatusCode::NOT_FOUND).await;
    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, None, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let stats = stats_until(&server, Duration::from_secs(2), |s| {
        s.participants == 0 && s.rooms == 0
    })
    .await;
    assert_eq!((stats.participants, stats.rooms), (0, 0), "{stats:?}");
    assert_eq!(server.sessions(), 0);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// OPTIONS and CORS
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_advertises_accept_post() {
    let server = start(None).await;
    let response = options(&server.whip_url("room"), &[]).await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(response.headers(), "accept-post"), Some(SDP));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_exposed_headers() {
    let server = start(None).await;
    let url = server.whip_url("room");
    let origin = "https://example.com";

    let response = options(
        &url,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, authorization",
            ),
        ],
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());
    let h = response.headers();
    assert_eq!(header(h, "accept-post"), Some(SDP));
    let allow_origin =
        header(h, "access-control-allow-origin").expect("Access-Control-Allow-Origin");
    assert!(
        allow_origin == "*" || allow_origin == origin,
        "{allow_origin}"
    );
    let methods = header(h, "access-control-allow-methods").expect("Access-Control-Allow-Methods");
    assert!(
        methods
            .split(',')
            .any(|m| m.trim().eq_ignore_ascii_case("POST")),
        "POST not allowed: {methods}"
    );

    let response = request(
        Method::POST,
        &url,
        Some(SDP),
        send_offer(),
        None,
        &[("origin", origin)],
    )
    .await;
    let (h, _) = expect_status(response, StatusCode::CREATED).await;
    assert!(header(&h, "access-control-allow-origin").is_some(), "{h:?}");
    let exposed = header(&h, "access-control-expose-headers")
        .expect("Access-Control-Expose-Headers")
        .to_ascii_lowercase();
    let exposed: Vec<&str> = exposed.split(',').map(str::trim).collect();
    for name in ["location", "etag"] {
        assert!(exposed.contains(&name), "{name} not exposed: {exposed:?}");
    }
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Bearer auth
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_and_whep_posts_need_the_token() {
    let server = start(Some(TOKEN)).await;
    for (url, offer) in [
        (server.whip_url("room"), send_offer as fn() -> String),
        (server.whep_url("room"), recv_offer),
    ] {
        let (h, _) = expect_status(
            post(&url, SDP, offer(), None).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(header(&h, "www-authenticate"), Some("Bearer"), "{url}");
        let (h, _) = expect_status(
            post(&url, SDP, offer(), Some("wrong")).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(
            header(&h, "www-authenticate"),
            Some("Bearer error=\"invalid_token\""),
            "{url}"
        );
        expect_status(
            post(&url, SDP, offer(), Some(TOKEN)).await,
            StatusCode::CREATED,
        )
        .await;
    }
    assert_eq!(server.sessions(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_patch_and_delete_need_the_token() {
    let server = start(Some(TOKEN)).await;
    let s = publish(&server, "room", Some(TOKEN)).await;

    let (h, _) = expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, None, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(header(&h, "www-authenticate"), Some("Bearer"));
    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, Some("wrong"), None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_status(delete(&s.url, None).await, StatusCode::UNAUTHORIZED).await;
    expect_status(
        delete(&s.url, Some("wrong")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        server.sessions(),
        1,
        "an unauthenticated DELETE ended the session"
    );

    expect_status(
        patch(&s.url, SDPFRAG, TRICKLE, Some(TOKEN), None).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_status(delete(&s.url, Some(TOKEN)).await, StatusCode::OK).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_needs_no_token() {
    let server = start(Some(TOKEN)).await;
    let response = options(
        &server.whip_url("room"),
        &[
            ("origin", "https://example.com"),
            ("access-control-request-method", "POST"),
        ],
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(response.headers(), "accept-post"), Some(SDP));
    assert!(header(response.headers(), "access-control-allow-origin").is_some());

    // A plain OPTIONS (no CORS headers) too.
    let response = options(&server.whip_url("room"), &[]).await;
    assert!(response.status().is_success(), "{}", response.status());
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The UDP socket
// ---------------------------------------------------------------------------------------------

/// Deterministic junk: a xorshift stream.
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A STUN binding request header (RFC 8489) with no attributes: no USERNAME to route by.
fn fake_stun() -> Vec<u8> {
    let mut d = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    d.extend_from_slice(&junk(12, 7));
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_do_not_break_the_server() {
    let server = start(None).await;
    // A live participant, so that the junk meets a populated demux.
    let _s = publish(&server, "room", None).await;

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target: SocketAddr = server.udp_addr;
    let mut datagrams: Vec<Vec<u8>> = (1..=20u64)
        .map(|i| junk((i as usize * 97) % 1500 + 1, i))
        .collect();
    datagrams.push(fake_stun());
    datagrams.push(Vec::new());
    // First bytes that look like DTLS (20..=63) and RTP (128..=191) to a demultiplexer.
    datagrams.push([&[22u8][..], &junk(100, 99)].concat());
    datagrams.push([&[0x80u8, 96][..], &junk(100, 100)].concat());
    datagrams.push(junk(3000, 42)); // larger than the server's receive buffer
    for d in &datagrams {
        socket.send_to(d, target).await.unwrap();
    }

    let stats = stats_until(&server, Duration::from_secs(2), |s| {
        s.datagrams_unrouted > 0
    })
    .await;
    assert!(stats.datagrams_unrouted > 0, "{stats:?}");

    let fresh = publish(&server, "room2", None).await;
    assert!(fresh.answer.starts_with("v=0"));
    let stats = server.stats().await.expect("media loop still running");
    assert_eq!(stats.participants, 2, "{stats:?}");
    server.shutdown().await;
}
