//! Operator endpoints: counters, residence windows, rooms' explained decisions, Prometheus.
//! Each needs an `admin` grant.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::auth::{Grant, bearer};
use crate::error::ApiError;

/// The core's counters as JSON, for operators, tests and the load harness.
pub(super) async fn debug_stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.access.check(bearer(&headers), None, Grant::Admin)?;
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
        "timer_wakeups": s.timer_wakeups,
        "estimator_restarts": s.estimator_restarts,
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

/// `GET /cluster`: the live nodes with their load, and which node hosts which room.
pub(super) async fn cluster(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.access.check(bearer(&headers), None, Grant::Admin)?;
    Ok(axum::Json(state.cluster.view().await).into_response())
}

/// `GET /rooms/{room}/subscriptions`: per subscriber and video track, the layer it gets, the
/// one it should get, and why.
pub(super) async fn room_subscriptions(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state
        .access
        .check(bearer(&headers), Some(&room), Grant::Admin)?;
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
pub(super) async fn reset_residence(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    state.access.check(bearer(&headers), None, Grant::Admin)?;
    state.media.reset_residence();
    Ok(StatusCode::NO_CONTENT)
}

/// Prometheus text format, from the media workers' latest reports.
pub(super) async fn prometheus(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.access.check(bearer(&headers), None, Grant::Admin)?;
    crate::telemetry::publish(&state.media.report(), state.sessions.len());
    Ok(match crate::telemetry::handle() {
        Some(h) => h.render().into_response(),
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed\n").into_response(),
    })
}

/// `GET /sessions/{id}/diagnosis`: how a WHIP/WHEP session's connection came up, or why it
/// did not ([`crate::diagnosis`]). Kept a while after the session ended.
pub(super) async fn session_diagnosis(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(session) = state.sessions.get(&id) else {
        // Who may not ask learns nothing about which sessions exist.
        state.access.check(bearer(&headers), None, Grant::Admin)?;
        return Err(ApiError::UnknownSession);
    };
    state
        .access
        .check(bearer(&headers), Some(&session.room), Grant::Admin)?;
    let record = state
        .media
        .diagnosis(session.participant)
        .await
        .map_err(|_| ApiError::Unavailable)?
        .ok_or(ApiError::UnknownSession)?;
    let mut body = crate::diagnosis::to_json(&record, None);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("session".into(), serde_json::Value::String(id));
        obj.insert(
            "endpoint".into(),
            serde_json::Value::String(session.endpoint.path().into()),
        );
    }
    Ok(axum::Json(body).into_response())
}
