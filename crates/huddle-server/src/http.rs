//! The HTTP front end: WHIP (RFC 9725) and WHEP endpoints, sessions, health.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use tower_http::cors::{Any, CorsLayer};

use crate::auth::require_bearer;
use crate::error::ApiError;
use crate::media::MediaHandle;
use crate::sessions::{Endpoint, Session, Sessions, etag_for};
use huddle_core::IceRestart;

/// Offers and fragments are a few kilobytes; anything above this is refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";
const ACCEPT_POST: HeaderName = HeaderName::from_static("accept-post");
const ACCEPT_PATCH: HeaderName = HeaderName::from_static("accept-patch");

#[derive(Clone, Debug)]
pub struct AppState {
    pub media: MediaHandle,
    pub sessions: Sessions,
    pub registry: crate::signaling::Registry,
    pub health: crate::health::Health,
    pub token: Option<String>,
}

pub fn router(state: AppState) -> Router {
    let endpoints = Router::new()
        .route("/whip/{room}", post(whip_post).options(endpoint_options))
        .route("/whep/{room}", post(whep_post).options(endpoint_options));
    let sessions = Router::new()
        .route(
            "/whip/{room}/{session}",
            axum::routing::patch(session_patch)
                .delete(session_delete)
                .options(session_options),
        )
        .route(
            "/whep/{room}/{session}",
            axum::routing::patch(session_patch)
                .delete(session_delete)
                .options(session_options),
        );
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            ACCEPT_PATCH,
            ACCEPT_POST,
        ]);
    endpoints
        .merge(sessions)
        .route("/debug/stats", get(debug_stats))
        .route("/debug/residence/reset", post(reset_residence))
        .route("/rooms/{room}/subscriptions", get(room_subscriptions))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_bearer,
        ))
        // Authorized in the handler: browsers cannot send headers on a WebSocket.
        .route("/rooms/{room}/ws", get(crate::signaling::ws::upgrade))
        .route("/healthz", get(crate::health::healthz))
        .route("/readyz", get(crate::health::readyz))
        .route("/metrics", get(prometheus))
        .merge(crate::page::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(cors)
        .layer(middleware::from_fn(advertise_accepted_types))
        .with_state(state)
}

/// `Accept-Post` on the WHIP/WHEP endpoints and `Accept-Patch` on sessions, on every response
/// (CORS preflights included, which the CORS layer answers before any route runs).
async fn advertise_accepted_types(request: Request, next: Next) -> Response {
    let segments = request.uri().path().trim_matches('/').split('/').count();
    let whip_or_whep =
        request.uri().path().starts_with("/whip/") || request.uri().path().starts_with("/whep/");
    let mut response = next.run(request).await;
    match (whip_or_whep, segments) {
        (true, 2) => {
            response
                .headers_mut()
                .insert(ACCEPT_POST, HeaderValue::from_static(SDP));
        }
        (true, 3) => {
            response
                .headers_mut()
                .insert(ACCEPT_PATCH, HeaderValue::from_static(SDPFRAG));
        }
        _ => {}
    }
    response
}

/// The core's counters as JSON, for operators, tests and the load harness.
async fn debug_stats(State(state): State<AppState>) -> Result<Response, ApiError> {
    let s = state
        .media
        .stats()
        .await
        .map_err(|_| ApiError::Unavailable)?;
    let report = state.media.report();
    let residence = &report.residence;
    let us = |q: f64| crate::media::board::quantile(residence, q).as_micros() as u64;
    Ok(axum::Json(serde_json::json!({
        "rooms": s.rooms,
        "participants": s.participants,
        "tracks": s.tracks,
        "subscriptions": s.subscriptions,
        "relay_links": s.relay_links,
        "demux_ufrags": s.demux_ufrags,
        "demux_addrs": s.demux_addrs,
        "timer_entries": s.timer_entries,
        "datagrams_unrouted": s.datagrams_unrouted,
        "datagrams_malformed": s.datagrams_malformed,
        "packets_received": s.packets_received,
        "packets_forwarded": s.packets_forwarded,
        "packets_relayed": s.packets_relayed,
        "relay_dropped": report.relay_dropped,
        "keyframe_requests_sent": s.keyframe_requests_sent,
        "sessions": state.sessions.len(),
        "workers": state.media.workers(),
        "forwarded_per_worker": state.media.forwarded_per_worker(),
        "residence_us": {
            "count": residence.len(),
            "p50": us(0.5),
            "p99": us(0.99),
            "p999": us(0.999),
            "max": residence.max(),
        },
    }))
    .into_response())
}

/// `GET /rooms/{room}/subscriptions`: per subscriber and video track, the layer it gets, the
/// one it should get, and why.
async fn room_subscriptions(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Response, ApiError> {
    if !huddle_core::room::valid_room_name(&room) {
        return Err(ApiError::Core(huddle_core::CoreError::InvalidRoomName));
    }
    let rows = state
        .media
        .subscriptions(&room)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    let layer = |l: &Option<huddle_core::LayerReport>| {
        l.as_ref().map(|l| {
            serde_json::json!({
                "rid": l.rid.map(|r| r.to_string()),
                "width": l.size.map(|s| s.0),
                "height": l.size.map(|s| s.1),
                "bitrate": l.bitrate,
            })
        })
    };
    let label =
        |p: huddle_core::ParticipantId| state.registry.label(p).unwrap_or_else(|| p.to_string());
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "subscriber": label(r.subscriber),
                "track": r.track.to_string(),
                "estimate": r.estimate,
                "target": layer(&r.target),
                "current": layer(&r.current),
                "paused": r.paused,
                "reason": r.reason.to_string(),
                "reason_text": r.reason.describe(),
                "since_switch_ms": r.since_switch.map(|d| d.as_millis() as u64),
                "tile": r.preference.max_size.map(|(w, h)| serde_json::json!({"width": w, "height": h})),
                "pin": r.preference.pin.map(|p| p.to_string()),
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "room": room, "subscriptions": rows })).into_response())
}

/// `POST /debug/residence/reset`: the residence histograms start afresh (a load test's
/// measurement window); the workers pick it up within a second.
async fn reset_residence(State(state): State<AppState>) -> StatusCode {
    state.media.reset_residence();
    StatusCode::NO_CONTENT
}

/// Prometheus text format, from the media workers' latest reports.
async fn prometheus(State(state): State<AppState>) -> Response {
    crate::telemetry::publish(&state.media.report(), state.sessions.len());
    match crate::telemetry::handle() {
        Some(h) => h.render().into_response(),
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed\n").into_response(),
    }
}

async fn endpoint_options() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn session_options() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn whip_post(
    state: State<AppState>,
    room: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    create(state, room, headers, body, Endpoint::Whip).await
}

async fn whep_post(
    state: State<AppState>,
    room: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    create(state, room, headers, body, Endpoint::Whep).await
}

/// The media type of a request, without parameters, lower-cased.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn require_type(headers: &HeaderMap, expected: &'static str) -> Result<(), ApiError> {
    let got = content_type(headers);
    if got == expected {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(got, expected))
    }
}

async fn create(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    match state.health.phase() {
        crate::health::Phase::Ready => {}
        crate::health::Phase::Failed => return Err(ApiError::Unavailable),
        _ => return Err(ApiError::ShuttingDown),
    }
    require_type(&headers, SDP)?;
    let offer = String::from_utf8(body.to_vec()).map_err(|_| ApiError::NotUtf8)?;
    let answer = match endpoint {
        Endpoint::Whip => state.media.publish(room.clone(), offer).await,
        Endpoint::Whep => state.media.view(room.clone(), offer).await,
    }
    .map_err(|_| ApiError::Unavailable)??;
    let etag = etag_for(&answer.ice_ufrag);
    let id = state.sessions.insert(Session {
        participant: answer.participant,
        endpoint,
        room: room.clone(),
        etag: etag.clone(),
        ended_at: None,
    });
    let location = format!("/{}/{room}/{id}", endpoint.path());
    tracing::info!(%room, session = %id, participant = %answer.participant, "{} session created", endpoint.path());
    Ok((
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, SDP.to_owned()),
            (header::LOCATION, location),
            (header::ETAG, etag),
        ],
        answer.sdp,
    )
        .into_response())
}

/// The session named by the URL, if it exists under this endpoint and room.
fn lookup(state: &AppState, endpoint: Endpoint, room: &str, id: &str) -> Result<Session, ApiError> {
    state
        .sessions
        .get(id)
        .filter(|s| s.endpoint == endpoint && s.room == room)
        .ok_or(ApiError::UnknownSession)
}

fn endpoint_of(method_path: &axum::http::Uri) -> Endpoint {
    if method_path.path().starts_with("/whep/") {
        Endpoint::Whep
    } else {
        Endpoint::Whip
    }
}

async fn session_patch(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let session = lookup(&state, endpoint_of(&uri), &room, &id)?;
    if session.ended_at.is_some() {
        return Err(ApiError::UnknownSession);
    }
    require_type(&headers, SDPFRAG)?;
    if let Some(if_match) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        let if_match = if_match.trim();
        if if_match != "*" && if_match != session.etag {
            return Err(ApiError::PreconditionFailed);
        }
    }
    let fragment = String::from_utf8(body.to_vec()).map_err(|_| ApiError::NotUtf8)?;
    let outcome = state
        .media
        .patch(session.participant, fragment)
        .await
        .map_err(|_| ApiError::Unavailable)?
        .map_err(|e| match e {
            huddle_core::CoreError::UnknownParticipant(_) => ApiError::UnknownSession,
            e => ApiError::Core(e),
        })?;
    Ok(match outcome {
        IceRestart::Trickled => StatusCode::NO_CONTENT.into_response(),
        IceRestart::Restarted {
            fragment,
            ice_ufrag,
        } => {
            let etag = etag_for(&ice_ufrag);
            state.sessions.set_etag(&id, etag.clone());
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, SDPFRAG.to_owned()),
                    (header::ETAG, etag),
                ],
                fragment,
            )
                .into_response()
        }
    })
}

async fn session_delete(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
    uri: axum::http::Uri,
) -> Result<StatusCode, ApiError> {
    let session = lookup(&state, endpoint_of(&uri), &room, &id)?;
    state.sessions.remove(&id);
    if session.ended_at.is_some() {
        // The peer already closed DTLS or timed out: the session is over, as asked.
        return Ok(StatusCode::OK);
    }
    // It may also leave between the lookup and this call; ended either way.
    match state.media.leave(session.participant).await {
        Ok(_) => Ok(StatusCode::OK),
        Err(_) => Err(ApiError::Unavailable),
    }
}
