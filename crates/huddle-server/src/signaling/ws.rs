//! One task per room WebSocket: parses the page's messages, drives the core through the media
//! loop, and forwards what the registry queues for this member.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use huddle_core::ParticipantId;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, warn};

use super::messages::{ClientMessage, Kind, ServerMessage};
use crate::auth::{Grant, Identity, bearer};
use crate::error::ApiError;
use crate::http::AppState;

/// Largest message accepted from a page (an SDP offer is a few kilobytes).
const MAX_MESSAGE: usize = 64 * 1024;
/// A page sending this many times its message rate in one burst is disconnected.
const FLOOD: f64 = 10.0;

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Browsers cannot set headers on a WebSocket: the bearer token may come as `?token=`.
    token: Option<String>,
}

/// `GET /rooms/{room}/ws`
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    client: crate::http::Client,
    Path(room): Path<String>,
    Query(query): Query<WsQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.health.accepting()?;
    if !huddle_core::room::valid_room_name(&room) {
        return Err(ApiError::Core(huddle_core::CoreError::InvalidRoomName));
    }
    let presented = bearer(&headers).or(query.token.as_deref());
    // A member needs to publish or to receive, in this room.
    let identity = match state.access.check(presented, Some(&room), Grant::Publish) {
        Ok(id) => id,
        Err(ApiError::Forbidden(_)) => {
            state
                .access
                .check(presented, Some(&room), Grant::Subscribe)?
        }
        Err(e) => return Err(e),
    };
    let ticket = state.admission.admit(
        client.0.ip(),
        identity.name.as_deref(),
        std::time::Instant::now(),
    )?;
    if let crate::cluster::Route::Remote { node, url, .. } = state.cluster.route(&room).await {
        let path = uri.path_and_query().map_or("", |p| p.as_str());
        let upstream = crate::cluster::proxy::connect(
            &url,
            path,
            headers.get(axum::http::header::AUTHORIZATION),
        )
        .await
        .map_err(|e| {
            tracing::warn!(%room, %node, "room socket relay: {e}");
            ApiError::Unavailable
        })?;
        info!(%room, %node, "room socket relayed to the room's node");
        return Ok(ws
            .max_message_size(MAX_MESSAGE)
            .on_upgrade(move |socket| async move {
                let _ticket = ticket;
                crate::cluster::proxy::relay(socket, upstream).await;
            })
            .into_response());
    }
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| {
            // Every line of this member's signaling names its room, and its id once joined.
            let span = tracing::info_span!(
                "member",
                room = %room,
                participant = tracing::field::Empty,
                role = "member"
            );
            session(socket, room, state, identity, ticket).instrument(span)
        })
        .into_response())
}

/// A member as far as this socket got: joined (label), then connected (participant).
#[derive(Debug)]
struct Member {
    identity: Identity,
    label: Option<String>,
    participant: Option<ParticipantId>,
    /// Given to the registry on join; kept here until then.
    outbox: Option<super::registry::Outbox>,
}

/// Messages a page may send: a token bucket refilled at the configured rate.
#[derive(Debug)]
struct Rate {
    per_second: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl Rate {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Rate {
            per_second,
            tokens: per_second * 2.0,
            at: std::time::Instant::now(),
        }
    }

    /// Takes one message: `Ok` within the rate, `Err(true)` far beyond it.
    fn take(&mut self) -> Result<(), bool> {
        let now = std::time::Instant::now();
        let burst = self.per_second * 2.0;
        self.tokens = (self.tokens + (now - self.at).as_secs_f64() * self.per_second).min(burst);
        self.at = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Ok(())
        } else {
            Err(self.tokens < -self.per_second * FLOOD)
        }
    }
}

async fn session(
    mut socket: WebSocket,
    room: String,
    state: AppState,
    identity: Identity,
    _ticket: crate::limits::Ticket,
) {
    let (outbox, mut inbox) = mpsc::channel::<ServerMessage>(super::registry::OUTBOX);
    let mut me = Member {
        identity,
        label: None,
        participant: None,
        outbox: Some(outbox),
    };
    let mut rate = Rate::new(state.admission.limits().ws_messages_per_second);
    let cause: String = loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        send(&mut socket, &ServerMessage::Error { reason: "binary messages are not part of the protocol".into() }).await;
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break "the page closed it".to_owned(),
                    Some(Err(e)) => break format!("read failed: {e}"),
                };
                match rate.take() {
                    Ok(()) => {}
                    Err(false) => {
                        send(&mut socket, &ServerMessage::Error { reason: "too many messages: slow down".into() }).await;
                        continue;
                    }
                    Err(true) => {
                        let reason = "message flood: disconnected";
                        send(&mut socket, &ServerMessage::Error { reason: reason.into() }).await;
                        close_politely(&mut socket, close_code::POLICY, reason).await;
                        break reason.to_owned();
                    }
                }
                let msg = match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        send(&mut socket, &ServerMessage::Error { reason: format!("invalid message: {e}") }).await;
                        continue;
                    }
                };
                if matches!(msg, ClientMessage::Leave) {
                    break "the page left".to_owned();
                }
                if let Some(reply) = handle(&state, &room, &mut me, msg).await {
                    send(&mut socket, &reply).await;
                }
            }
            out = inbox.recv() => {
                // The registry closed the queue: this page did not keep up, or left.
                let Some(out) = out else { break "its queue was closed (not read fast enough)".to_owned() };
                let bye = matches!(out, ServerMessage::Bye { .. });
                send(&mut socket, &out).await;
                // The core dropped this member's peer connection (ICE lost), or the server
                // goes away: nothing left to signal.
                if bye {
                    break "the server said bye".to_owned();
                }
                if me.label.as_deref().is_some_and(|l| !state.registry.contains(l)) {
                    me.label = None;
                    break "its peer connection was dropped".to_owned();
                }
            }
        }
    };
    let member = me.label.as_deref().unwrap_or("-");
    if me.label.is_some() && me.participant.is_none() {
        // Joined but never connected: worth a look when a page reports a lost signaling link.
        warn!(%room, member, cause, "room socket closed before its peer connection was set up");
    } else {
        info!(%room, member, cause, "room socket closed");
    }
    if let Some(label) = me.label {
        state.registry.leave(&label);
    }
    if let Some(p) = me.participant {
        // Gone already (ICE timeout) is fine.
        let _ = state.media.leave(p).await;
    }
}

/// Longest a closing socket waits for the page's close, discarding what it still sends.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Ends the socket with a close frame and waits (bounded) for the page's own close, reading
/// and discarding what it still sends. Dropping a socket with unread input resets the TCP
/// connection, and a reset can discard the messages the page has not read yet — the
/// reason it was disconnected among them.
async fn close_politely(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn send(socket: &mut WebSocket, msg: &ServerMessage) {
    match serde_json::to_string(msg) {
        Ok(text) => {
            if let Err(e) = socket.send(Message::Text(text.into())).await {
                debug!("room socket send: {e}");
            }
        }
        Err(e) => debug!("cannot encode {msg:?}: {e}"),
    }
}

fn error(reason: impl Into<String>) -> Option<ServerMessage> {
    Some(ServerMessage::Error {
        reason: reason.into(),
    })
}

/// Handles one page message; returns the direct reply, if any.
async fn handle(
    state: &AppState,
    room: &str,
    me: &mut Member,
    msg: ClientMessage,
) -> Option<ServerMessage> {
    match msg {
        ClientMessage::Join { name } => {
            if me.label.is_some() {
                return error("already joined");
            }
            // A token's identity is the name others see.
            let name = me.identity.name.clone().unwrap_or(name);
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 64 {
                return error("name must be 1-64 characters");
            }
            let Some(outbox) = me.outbox.take() else {
                return error("already joined");
            };
            let (label, participants) = state.registry.join(room, name, outbox);
            info!(%room, %label, name, "member joined");
            me.label = Some(label.clone());
            tracing::Span::current().record("participant", label.as_str());
            let turn_identity = me.identity.name.as_deref().unwrap_or(&label);
            let ice_servers = state
                .ice
                .for_client(turn_identity, std::time::SystemTime::now());
            Some(ServerMessage::Welcome {
                id: label,
                participants,
                ice_servers,
            })
        }
        ClientMessage::Offer { sdp } => {
            let Some(label) = me.label.clone() else {
                return error("send join first");
            };
            if me.participant.is_some() {
                return error("already connected: only the server offers from now on");
            }
            let grants = (
                me.identity.may(Grant::Publish),
                me.identity.may(Grant::Subscribe),
            );
            match state
                .media
                .member(room.to_owned(), label.clone(), sdp, grants)
                .await
            {
                Err(_) => error("server is shutting down"),
                Ok(Err(e)) => {
                    let e = ApiError::Core(e);
                    crate::telemetry::refused(e.reason());
                    error(e.to_string())
                }
                Ok(Ok(answer)) => {
                    me.participant = Some(answer.participant);
                    state.registry.attach(&label, answer.participant);
                    Some(ServerMessage::Answer { sdp: answer.sdp })
                }
            }
        }
        ClientMessage::Answer { sdp } => {
            let Some(p) = me.participant else {
                return error("no offer to answer");
            };
            match state.media.answer(p, sdp).await {
                Err(_) => error("server is shutting down"),
                Ok(Err(e)) => error(e.to_string()),
                Ok(Ok(())) => None,
            }
        }
        ClientMessage::Candidate { candidate, .. } => {
            let Some(p) = me.participant else {
                return error("send your offer before candidates");
            };
            let candidate = candidate.unwrap_or_default();
            if candidate.trim().is_empty() {
                return None; // end of candidates
            }
            match state.media.candidate(p, candidate).await {
                Err(_) => error("server is shutting down"),
                Ok(Err(e)) => error(e.to_string()),
                Ok(Ok(())) => None,
            }
        }
        ClientMessage::Mute { kind, muted } => {
            let Some(label) = &me.label else {
                return error("send join first");
            };
            state.registry.set_mute(label, kind, muted);
            None
        }
        ClientMessage::Preference {
            track,
            width,
            height,
            pin,
        } => {
            let Some(p) = me.participant else {
                return error("send your offer first");
            };
            let Ok(track) = track.parse() else {
                return error(format!("no track {track:?}"));
            };
            let preference = huddle_core::Preference {
                max_size: width.zip(height),
                pin: pin.as_deref().map(Into::into),
            };
            match state.media.preference(p, track, preference).await {
                Err(_) => error("server is shutting down"),
                Ok(Err(e)) => error(e.to_string()),
                Ok(Ok(false)) => error(format!("you do not receive {track}")),
                Ok(Ok(true)) => None,
            }
        }
        ClientMessage::Publish { kind } => {
            let Some(p) = me.participant else {
                return error("send your offer first");
            };
            let kind = match kind {
                Kind::Audio => huddle_core::MediaKind::Audio,
                Kind::Video => huddle_core::MediaKind::Video,
            };
            match state.media.publish_track(p, kind).await {
                Err(_) => error("server is shutting down"),
                Ok(Err(e)) => error(e.to_string()),
                Ok(Ok(())) => None,
            }
        }
        ClientMessage::Unpublish { track } => {
            let Some(p) = me.participant else {
                return error("send your offer first");
            };
            let Ok(track) = track.parse() else {
                return error(format!("no track {track:?}"));
            };
            match state.media.unpublish_track(p, track).await {
                Err(_) => error("server is shutting down"),
                Ok(Err(e)) => error(e.to_string()),
                Ok(Ok(())) => None,
            }
        }
        ClientMessage::Diagnosis => {
            let Some(p) = me.participant else {
                return error("send your offer first");
            };
            match state.media.diagnosis(p).await {
                Err(_) => error("server is shutting down"),
                Ok(None) => error("no diagnosis of your connection is kept"),
                Ok(Some(record)) => Some(ServerMessage::Diagnosis {
                    diagnosis: crate::diagnosis::to_json(&record, me.label.as_deref()),
                }),
            }
        }
        ClientMessage::Leave => None,
    }
}
