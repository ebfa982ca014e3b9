//! One task per room WebSocket: parses the page's messages, drives the core through the media
//! loop, and forwards what the registry queues for this member.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use huddle_core::ParticipantId;
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::messages::{ClientMessage, Kind, ServerMessage};
use crate::auth;
use crate::error::ApiError;
use crate::http::AppState;

/// Largest message accepted from a page (an SDP offer is a few kilobytes).
const MAX_MESSAGE: usize = 256 * 1024;

#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Browsers cannot set headers on a WebSocket: the bearer token may come as `?token=`.
    token: Option<String>,
}

/// `GET /rooms/{room}/ws`
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::authorize(state.token.as_deref(), &headers, query.token.as_deref())?;
    if !huddle_core::room::valid_room_name(&room) {
        return Err(ApiError::Core(huddle_core::CoreError::InvalidRoomName));
    }
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session(socket, room, state))
        .into_response())
}

/// A member as far as this socket got: joined (label), then connected (participant).
#[derive(Debug, Default)]
struct Member {
    label: Option<String>,
    participant: Option<ParticipantId>,
}

async fn session(mut socket: WebSocket, room: String, state: AppState) {
    let (outbox, mut inbox) = mpsc::unbounded_channel::<ServerMessage>();
    let mut me = Member::default();
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        send(&mut socket, &ServerMessage::Error { reason: "binary messages are not part of the protocol".into() }).await;
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                let msg = match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        send(&mut socket, &ServerMessage::Error { reason: format!("invalid message: {e}") }).await;
                        continue;
                    }
                };
                if matches!(msg, ClientMessage::Leave) {
                    break;
                }
                if let Some(reply) = handle(&state, &room, &mut me, msg, &outbox).await {
                    send(&mut socket, &reply).await;
                }
            }
            Some(out) = inbox.recv() => {
                send(&mut socket, &out).await;
                // The core dropped this member's peer connection (ICE lost): the registry has
                // forgotten it, and there is nothing left to signal.
                if me.label.as_deref().is_some_and(|l| !state.registry.contains(l)) {
                    me.label = None;
                    break;
                }
            }
        }
    }
    if let Some(label) = me.label {
        state.registry.leave(&label);
    }
    if let Some(p) = me.participant {
        // Gone already (ICE timeout) is fine.
        let _ = state.media.leave(p).await;
    }
    info!(%room, "room socket closed");
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
    outbox: &super::registry::Outbox,
) -> Option<ServerMessage> {
    match msg {
        ClientMessage::Join { name } => {
            if me.label.is_some() {
                return error("already joined");
            }
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 64 {
                return error("name must be 1-64 characters");
            }
            let (label, participants) = state.registry.join(room, name, outbox.clone());
            info!(%room, %label, name, "member joined");
            me.label = Some(label.clone());
            Some(ServerMessage::Welcome {
                id: label,
                participants,
                ice_servers: Vec::new(),
            })
        }
        ClientMessage::Offer { sdp } => {
            let Some(label) = me.label.clone() else {
                return error("send join first");
            };
            if me.participant.is_some() {
                return error("already connected: only the server offers from now on");
            }
            match state
                .media
                .member(room.to_owned(), label.clone(), sdp)
                .await
            {
                Err(_) => error("server is shutting down"),
                Ok(Err(e)) => error(e.to_string()),
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
        ClientMessage::Leave => None,
    }
}
