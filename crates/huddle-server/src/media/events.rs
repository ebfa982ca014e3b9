//! What a worker does with the core's events: HTTP sessions and room signaling are told,
//! placement forgets who left, chat is relayed.

use std::time::Instant;

use huddle_core::{Event, MediaKind, ParticipantId, Role, Sfu};
use tracing::{debug, info, warn};

use super::Shared;
use crate::diagnosis::Record;
use crate::signaling::messages::{Kind, ServerMessage, TrackQuality};

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
        Event::Diagnosis {
            room,
            participant,
            role,
            diagnosis,
        } => {
            let record = Record {
                participant,
                room,
                role,
                diagnosis: *diagnosis,
            };
            if let Some(failure) = crate::diagnosis::log_end(&record) {
                crate::telemetry::connection_failed(&failure);
                if role == Role::Member {
                    // Before it is dropped from signaling: the page shows why.
                    let label = registry.label(participant);
                    let body = crate::diagnosis::to_json(&record, label.as_deref());
                    registry.send(participant, ServerMessage::Diagnosis { diagnosis: body });
                }
            }
            shared.diagnoses.keep(record);
        }
        Event::Connected { participant } => {
            if let Some(record) = record_of(sfu, participant) {
                crate::diagnosis::log_if_slow(&record);
                crate::telemetry::connected(&record.diagnosis);
            }
        }
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
            mid,
            ..
        } => {
            if let Some(label) = registry.label(participant) {
                let msg = |mid| ServerMessage::TrackPublished {
                    participant: label.clone(),
                    track: track.to_string(),
                    kind: kind_of(kind),
                    mid,
                };
                registry.broadcast_from(participant, msg(None));
                registry.send(participant, msg(Some(mid.to_string())));
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
            let owner = sfu.track(track).and_then(|t| t.owner());
            if let Some(label) = owner.and_then(|o| registry.label(o)) {
                let reason = format!(
                    "it is sent in {}, a codec your browser did not negotiate",
                    codecs
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(" or ")
                );
                registry.send(
                    subscriber,
                    ServerMessage::TrackUnavailable {
                        participant: label,
                        track: track.to_string(),
                        reason,
                    },
                );
            }
        }
        Event::ActiveSpeaker { room, participant } => {
            let label = participant.and_then(|p| registry.label(p));
            registry.broadcast_room(&room, ServerMessage::Speaker { participant: label });
        }
        other => debug!(event = ?other),
    }
}

/// The diagnosis so far of a participant on this worker.
pub(super) fn record_of(sfu: &Sfu, id: ParticipantId) -> Option<Record> {
    let p = sfu.participant(id)?;
    Some(Record {
        participant: id,
        room: sfu.room_of_participant(id)?.to_owned(),
        role: p.role,
        diagnosis: p.diagnosis().clone(),
    })
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

/// What each member was last told of its video quality.
#[derive(Debug, Default)]
pub(super) struct Told(std::collections::HashMap<ParticipantId, ServerMessage>);

/// Tells every member what it receives of each video track and why, when that changed.
pub(super) fn tell_quality(sfu: &Sfu, shared: &Shared, now: Instant, told: &mut Told) {
    let mut by_member: std::collections::HashMap<ParticipantId, ServerMessage> = Default::default();
    for room in sfu.rooms() {
        for row in sfu.subscriptions(now, &room.name) {
            let entry = by_member
                .entry(row.subscriber)
                .or_insert_with(|| ServerMessage::Quality {
                    estimate: row.estimate,
                    tracks: Vec::new(),
                });
            if let ServerMessage::Quality { tracks, .. } = entry {
                let layer = row.current.as_ref().or(row.target.as_ref());
                tracks.push(TrackQuality {
                    track: row.track.to_string(),
                    layer: layer.and_then(|l| l.rid).map(|r| r.to_string()),
                    width: layer.and_then(|l| l.size).map(|s| s.0),
                    height: layer.and_then(|l| l.size).map(|s| s.1),
                    bitrate: layer.map(|l| l.bitrate),
                    paused: row.paused,
                    reason: row.reason.to_string(),
                    text: row.reason.describe().to_owned(),
                });
            }
        }
    }
    told.0.retain(|id, _| by_member.contains_key(id));
    for (id, msg) in by_member {
        // Bitrates move all the time: tell again when the layer or its reason changes.
        let same = told.0.get(&id).is_some_and(|old| same_choices(old, &msg));
        if !same && shared.registry.label(id).is_some() {
            shared.registry.send(id, msg.clone());
            told.0.insert(id, msg);
        }
    }
}

fn same_choices(a: &ServerMessage, b: &ServerMessage) -> bool {
    let key = |m: &ServerMessage| match m {
        ServerMessage::Quality { tracks, .. } => tracks
            .iter()
            .map(|t| (t.track.clone(), t.layer.clone(), t.paused, t.reason.clone()))
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    key(a) == key(b)
}
