//! WHIP (RFC 9725) and WHEP: endpoints that create sessions, and the sessions' PATCH (trickle,
//! ICE restart) and DELETE.

use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use huddle_core::IceRestart;

use super::{ACCEPT_PATCH, ACCEPT_POST, AppState, Client, SDP, SDPFRAG};
use crate::auth::{Grant, bearer};
use crate::cluster::Route;
use crate::cluster::cascade::{self, Viewing};
use crate::error::ApiError;
use crate::media::pull::{Origin, PULL_HEADER};
use crate::sessions::{Endpoint, Session, etag_for};

/// `Accept-Post` on the WHIP/WHEP endpoints and `Accept-Patch` on sessions, on every response
/// (CORS preflights included, which the CORS layer answers before any route runs — every
/// OPTIONS, so this is where OPTIONS on an endpoint gets its `Link` headers too).
pub(super) async fn advertise_accepted_types(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let segments = path.trim_matches('/').split('/').count();
    let whip_or_whep = path.starts_with("/whip/") || path.starts_with("/whep/");
    let links = (whip_or_whep && segments == 2 && request.method() == axum::http::Method::OPTIONS)
        .then(|| options_links(&state, request.uri(), request.headers()));
    let mut response = next.run(request).await;
    for link in links.into_iter().flatten() {
        response.headers_mut().append(header::LINK, link);
    }
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

/// OPTIONS on a session.
pub(super) async fn options() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The ICE servers for OPTIONS on a WHIP/WHEP endpoint (RFC 9725 §4.6), so a client can
/// configure its peer connection before it makes the offer: TURN credentials only for a
/// request whose token may use this endpoint (or on an open server), STUN for anyone.
fn options_links(state: &AppState, uri: &axum::http::Uri, headers: &HeaderMap) -> Vec<HeaderValue> {
    let grant = match endpoint_of(uri) {
        Endpoint::Whip => Grant::Publish,
        Endpoint::Whep => Grant::Subscribe,
    };
    let room = uri
        .path()
        .trim_matches('/')
        .split('/')
        .nth(1)
        .unwrap_or_default();
    match state.access.check(bearer(headers), Some(room), grant) {
        Ok(identity) => state.ice.link_headers(
            identity.name.as_deref().unwrap_or("anonymous"),
            SystemTime::now(),
        ),
        Err(_) => state.ice.stun_link_headers(),
    }
}

pub(super) async fn whip_post(
    state: State<AppState>,
    client: Client,
    room: Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    create(state, client, room, uri, headers, body, Endpoint::Whip).await
}

pub(super) async fn whep_post(
    state: State<AppState>,
    client: Client,
    room: Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    create(state, client, room, uri, headers, body, Endpoint::Whep).await
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
    client: Client,
    Path(room): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    state.health.accepting()?;
    let grant = match endpoint {
        Endpoint::Whip => Grant::Publish,
        Endpoint::Whep => Grant::Subscribe,
    };
    let identity = state.access.check(bearer(&headers), Some(&room), grant)?;
    require_type(&headers, SDP)?;
    let ticket = state
        .admission
        .admit(client.0.ip(), identity.name.as_deref(), Instant::now())?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::EmptyOffer);
    }
    let path_and_query = uri.path_and_query().map_or("", |p| p.as_str());
    let viewing = match endpoint {
        Endpoint::Whip => match state.cluster.route(&room).await {
            Route::Remote { node, url, .. } => Viewing::Redirect {
                location: format!("{url}{path_and_query}"),
                node,
            },
            Route::Local => Viewing::Local,
        },
        Endpoint::Whep => {
            let pull = headers.contains_key(PULL_HEADER);
            let spilled = uri
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == cascade::SPILLED));
            state
                .cluster
                .viewing(&room, path_and_query, pull, spilled)
                .await
        }
    };
    let offer = String::from_utf8(body.to_vec()).map_err(|_| ApiError::NotUtf8)?;
    let answer = match (viewing, endpoint) {
        (Viewing::Redirect { node, location }, _) => {
            // The client re-POSTs the offer there; the session then lives on that node.
            tracing::info!(%room, %node, "{} redirected to {location}", endpoint.path());
            return Ok((
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response());
        }
        (Viewing::Pull { node, url }, _) => {
            let me = state.cluster.node_id().unwrap_or_default().to_owned();
            let origin = Origin {
                whep: format!("{url}/whep/{room}"),
                token: state.access.node_credential(&me, &room),
                node: me,
            };
            tracing::info!(%room, %node, "WHEP viewer served here from the room's node");
            state.media.view_pulled(room.clone(), offer, &origin).await
        }
        (Viewing::Local, Endpoint::Whip) => state.media.publish(room.clone(), offer).await,
        (Viewing::Local, Endpoint::Whep) => state.media.view(room.clone(), offer).await,
    }
    .map_err(|_| ApiError::Unavailable)??;
    let etag = etag_for(&answer.ice_ufrag);
    let id = state.sessions.insert(Session {
        participant: answer.participant,
        endpoint,
        room: room.clone(),
        etag: etag.clone(),
        credential: identity.credential,
        ticket: Some(std::sync::Arc::new(ticket)),
        ended_at: None,
    });
    let location = format!("/{}/{room}/{id}", endpoint.path());
    tracing::info!(%room, session = %id, participant = %answer.participant, "{} session created", endpoint.path());
    let mut response = (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, SDP.to_owned()),
            (header::LOCATION, location),
            (header::ETAG, etag),
        ],
        answer.sdp,
    )
        .into_response();
    // TURN usernames name the token's identity, else the participant (never the session id,
    // which the username would carry in clear to the TURN server).
    let participant = answer.participant.to_string();
    let turn_identity = identity.name.as_deref().unwrap_or(&participant);
    for link in state.ice.link_headers(turn_identity, SystemTime::now()) {
        response.headers_mut().append(header::LINK, link);
    }
    Ok(response)
}

/// A session's URL takes the credential that created it (open servers: any).
fn authorize_session(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let identity = state.access.identify(bearer(headers))?;
    match (&session.credential, &identity.credential) {
        (None, _) => Ok(()),
        (Some(created), Some(presented))
            if crate::auth::constant_time_eq(created.as_bytes(), presented.as_bytes()) =>
        {
            Ok(())
        }
        _ => Err(ApiError::Forbidden(
            "this session belongs to the token that created it".into(),
        )),
    }
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

pub(super) async fn session_patch(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let session = lookup(&state, endpoint_of(&uri), &room, &id)?;
    authorize_session(&state, &session, &headers)?;
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

pub(super) async fn session_delete(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let session = lookup(&state, endpoint_of(&uri), &room, &id)?;
    authorize_session(&state, &session, &headers)?;
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
