//! Who is in which room as signaling sees it: names, mute state, and the outbox of each
//! member's WebSocket. Shared by the WebSocket tasks and the media loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use huddle_core::ParticipantId;
use tokio::sync::mpsc;

use super::messages::{Kind, ParticipantInfo, ServerMessage};

/// A member's queue of messages to its WebSocket, bounded: a page that does not read its
/// socket fast enough is disconnected, never buffered without bound.
pub type Outbox = mpsc::Sender<ServerMessage>;

/// Messages queued for one page before it counts as too slow.
pub const OUTBOX: usize = 256;

/// Queues `msg`; a full queue closes it (the socket task sees the end and disconnects).
fn push(outbox: &mut Option<Outbox>, label: &str, msg: &ServerMessage) {
    if let Some(tx) = outbox
        && let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(msg.clone())
    {
        tracing::warn!(
            member = label,
            "room socket not read fast enough: disconnected"
        );
        *outbox = None;
    }
}

#[derive(Debug)]
struct Member {
    info: ParticipantInfo,
    room: String,
    participant: Option<ParticipantId>,
    outbox: Option<Outbox>,
}

#[derive(Debug, Default)]
struct Inner {
    /// By label (the public id).
    members: HashMap<String, Member>,
    by_participant: HashMap<ParticipantId, String>,
}

#[derive(Clone, Debug, Default)]
pub struct Registry(Arc<Mutex<Inner>>);

static NEXT_LABEL: AtomicU64 = AtomicU64::new(1);

impl Inner {
    fn broadcast(&mut self, room: &str, except: &str, msg: &ServerMessage) {
        for (label, m) in &mut self.members {
            if m.room == room && label != except {
                push(&mut m.outbox, label, msg);
            }
        }
    }

    fn room_list(&self, room: &str, except: &str) -> Vec<ParticipantInfo> {
        let mut list: Vec<ParticipantInfo> = self
            .members
            .iter()
            .filter(|(label, m)| m.room == room && label.as_str() != except)
            .map(|(_, m)| m.info.clone())
            .collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A browser joins: returns its label and who is already there, and tells the others.
    pub fn join(&self, room: &str, name: &str, outbox: Outbox) -> (String, Vec<ParticipantInfo>) {
        let label = format!("m{}", NEXT_LABEL.fetch_add(1, Ordering::Relaxed));
        let info = ParticipantInfo {
            id: label.clone(),
            name: name.to_owned(),
            source: "browser".into(),
            audio_muted: false,
            video_muted: false,
        };
        let mut inner = self.lock();
        let others = inner.room_list(room, &label);
        inner.broadcast(
            room,
            &label,
            &ServerMessage::ParticipantJoined {
                participant: info.clone(),
            },
        );
        inner.members.insert(
            label.clone(),
            Member {
                info,
                room: room.to_owned(),
                participant: None,
                outbox: Some(outbox),
            },
        );
        (label, others)
    }

    /// The member's peer connection exists in the core.
    pub fn attach(&self, label: &str, participant: ParticipantId) {
        let mut inner = self.lock();
        if let Some(m) = inner.members.get_mut(label) {
            m.participant = Some(participant);
            inner.by_participant.insert(participant, label.to_owned());
        }
    }

    /// A WHIP publisher appeared in a room: it shows up like any participant.
    pub fn whip_joined(&self, room: &str, participant: ParticipantId) {
        let label = participant.to_string();
        let info = ParticipantInfo {
            id: label.clone(),
            name: format!("WHIP {label}"),
            source: "whip".into(),
            audio_muted: false,
            video_muted: false,
        };
        let mut inner = self.lock();
        inner.broadcast(
            room,
            &label,
            &ServerMessage::ParticipantJoined {
                participant: info.clone(),
            },
        );
        inner.by_participant.insert(participant, label.clone());
        inner.members.insert(
            label,
            Member {
                info,
                room: room.to_owned(),
                participant: Some(participant),
                outbox: None,
            },
        );
    }

    /// Removes a member by label and tells the room; returns its participant, if any.
    pub fn leave(&self, label: &str) -> Option<ParticipantId> {
        let mut inner = self.lock();
        let m = inner.members.remove(label)?;
        if let Some(p) = m.participant {
            inner.by_participant.remove(&p);
        }
        inner.broadcast(
            &m.room,
            label,
            &ServerMessage::ParticipantLeft {
                id: label.to_owned(),
            },
        );
        m.participant
    }

    /// The core removed a participant: forget it and tell the room (its own socket is told
    /// with an error and closes).
    pub fn participant_left(&self, participant: ParticipantId) {
        let label = self.lock().by_participant.get(&participant).cloned();
        if let Some(label) = label {
            if let Some(m) = self.lock().members.get_mut(&label) {
                let msg = ServerMessage::Error {
                    reason: "your connection to the media server was lost".into(),
                };
                push(&mut m.outbox, &label, &msg);
            }
            self.leave(&label);
        }
    }

    pub fn contains(&self, label: &str) -> bool {
        self.lock().members.contains_key(label)
    }

    pub fn label(&self, participant: ParticipantId) -> Option<String> {
        self.lock().by_participant.get(&participant).cloned()
    }

    pub fn name(&self, participant: ParticipantId) -> Option<String> {
        let inner = self.lock();
        let label = inner.by_participant.get(&participant)?;
        inner.members.get(label).map(|m| m.info.name.clone())
    }

    /// Sends to one participant's socket, if it has one.
    pub fn send(&self, participant: ParticipantId, msg: ServerMessage) {
        let mut inner = self.lock();
        let Some(label) = inner.by_participant.get(&participant).cloned() else {
            return;
        };
        if let Some(m) = inner.members.get_mut(&label) {
            push(&mut m.outbox, &label, &msg);
        }
    }

    /// Sends to every page in every room (the server is going away).
    pub fn broadcast_all(&self, msg: ServerMessage) {
        let mut inner = self.lock();
        for (label, m) in &mut inner.members {
            push(&mut m.outbox, label, &msg);
        }
    }

    /// Sends to everyone in `room`.
    pub fn broadcast_room(&self, room: &str, msg: ServerMessage) {
        self.lock().broadcast(room, "", &msg);
    }

    /// Sends to everyone in the participant's room but the participant.
    pub fn broadcast_from(&self, participant: ParticipantId, msg: ServerMessage) {
        let mut inner = self.lock();
        let Some(label) = inner.by_participant.get(&participant).cloned() else {
            return;
        };
        if let Some(room) = inner.members.get(&label).map(|m| m.room.clone()) {
            inner.broadcast(&room, &label, &msg);
        }
    }

    pub fn set_mute(&self, label: &str, kind: Kind, muted: bool) {
        let mut inner = self.lock();
        let Some(m) = inner.members.get_mut(label) else {
            return;
        };
        match kind {
            Kind::Audio => m.info.audio_muted = muted,
            Kind::Video => m.info.video_muted = muted,
        }
        let room = m.room.clone();
        inner.broadcast(
            &room,
            label,
            &ServerMessage::Mute {
                participant: label.to_owned(),
                kind,
                muted,
            },
        );
    }

    /// The other participants of `participant`'s room that have a peer connection.
    pub fn room_peers(&self, participant: ParticipantId) -> Vec<ParticipantId> {
        let inner = self.lock();
        let Some(room) = inner
            .by_participant
            .get(&participant)
            .and_then(|l| inner.members.get(l))
            .map(|m| m.room.clone())
        else {
            return Vec::new();
        };
        inner
            .members
            .values()
            .filter(|m| m.room == room)
            .filter_map(|m| m.participant)
            .filter(|p| *p != participant)
            .collect()
    }
}
