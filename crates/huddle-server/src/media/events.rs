//! What a worker does with the core's events: HTTP sessions and room signaling are told,
//! placement forgets who left, chat is relayed.

use std::time::Instant;

use huddle_core::{Event, MediaKind, ParticipantId, Role, Sfu};
use tracing::{debug, info, warn};

use super::Shared;
use crate::signaling::messages::{Kind, ServerMessage};

/// Longest chat message relayed, in characters.
const MAX_CHAT_CHARS: usize = 2000;

/// Tells HTTP sessions and room signaling what happened in the core.
pub(super) fn on_event(sfu: &mut Sfu, shared: &Shared, e: Event) {
    let (sessions, registry) = (&shared.sessions, &shared.registry);
    match e {
        Event::Joined {
            room,
            participant,
            role: Role::Publisher,
        } => registry.whip_joined(&room, participant),
        Event::Left {
            participant,
            reason,
            ..
        } => {
            info!(%participant, ?reason, "participant left");
            shared.placement().left(participant);
            sessions.end_participant(participant);
            registry.participant_left(participant);
        }
        Event::TrackPublished {
            participant,
            track,
            kind,
            ..
        } => {
            if let Some(label) = registry.label(participant) {
                let msg = ServerMessage::TrackPublished {
                    participant: label,
                    track: track.to_string(),
                    kind: kind_of(kind),
                };
                registry.broadcast_from(participant, msg);
            }
        }
        Event::TrackUnpublished {
            participant, track, ..
        } => {
            if let Some(label) = registry.label(participant) {
                let msg = ServerMessage::TrackUnpublished {
                    participant: label,
                    track: track.to_string(),
                };
                registry.broadcast_from(participant, msg);
            }
        }
        Event::Offer { participant, sdp } => {
            registry.send(participant, ServerMessage::Offer { sdp })
        }
        Event::Message {
            participant, data, ..
        } => relay_chat(sfu, registry, participant, &data),
        Event::CodecMismatch {
            subscriber,
            track,
            codecs,
        } => {
            warn!(%subscriber, %track, ?codecs, "track not forwarded: no common codec");
        }
        other => debug!(event = ?other),
    }
}

fn kind_of(kind: MediaKind) -> Kind {
    match kind {
        MediaKind::Audio => Kind::Audio,
        MediaKind::Video => Kind::Video,
    }
}

/// A chat message the page sent as `{"text": …}` goes to everyone else in its room as
/// `{"from", "name", "text", "at"}`; anything else is refused with an error to the sender.
fn relay_chat(
    sfu: &mut Sfu,
    registry: &crate::signaling::Registry,
    from: ParticipantId,
    data: &[u8],
) {
    #[derive(serde::Deserialize)]
    struct Chat {
        text: String,
    }
    let text = match serde_json::from_slice::<Chat>(data) {
        Ok(c) if !c.text.trim().is_empty() && c.text.chars().count() <= MAX_CHAT_CHARS => c.text,
        Ok(_) => {
            let reason = format!("chat messages must have 1-{MAX_CHAT_CHARS} characters");
            registry.send(from, ServerMessage::Error { reason });
            return;
        }
        Err(e) => {
            let reason = format!("chat message is not {{\"text\": …}}: {e}");
            registry.send(from, ServerMessage::Error { reason });
            return;
        }
    };
    let (Some(label), Some(name)) = (registry.label(from), registry.name(from)) else {
        return;
    };
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let out =
        serde_json::json!({ "from": label, "name": name, "text": text, "at": at }).to_string();
    let now = Instant::now();
    for peer in registry.room_peers(from) {
        sfu.send_message(now, peer, out.as_bytes());
    }
}
