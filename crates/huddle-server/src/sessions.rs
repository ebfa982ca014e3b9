//! WHIP/WHEP sessions: the resource behind each `Location`, mapped to its participant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use huddle_core::ParticipantId;
use rand::RngCore;

/// Which endpoint created a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Whip,
    Whep,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Whip => "whip",
            Endpoint::Whep => "whep",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Session {
    pub participant: ParticipantId,
    pub endpoint: Endpoint,
    pub room: String,
    /// Current ETag value (quoted), which names the ICE session.
    pub etag: String,
    /// A digest of the credential that created it: only that one may PATCH or DELETE it.
    pub credential: Option<String>,
    /// Counts it against its client's limits while it lasts.
    pub ticket: Option<std::sync::Arc<crate::limits::Ticket>>,
    /// Set when the participant left on its own (DTLS close, ICE timeout): the session is kept
    /// a while so that the client's `DELETE` still gets its 200.
    pub ended_at: Option<Instant>,
}

/// How long an ended session answers `DELETE` before it is forgotten.
const TOMBSTONE: Duration = Duration::from_secs(60);

/// Sessions by id, shared by the HTTP handlers and the media loop (which removes the session
/// of a participant that left on its own, e.g. by ICE timeout).
#[derive(Clone, Debug, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, Session>>>);

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding this lock cannot leave the map half-updated: recover it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a session under a new unguessable id and returns the id.
    pub fn insert(&self, session: Session) -> String {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, s| s.ended_at.is_none_or(|at| now - at < TOMBSTONE));
        map.insert(id.clone(), session);
        id
    }

    /// A session, ended or not.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.lock().get(id).cloned()
    }

    pub fn set_etag(&self, id: &str, etag: String) {
        if let Some(s) = self.lock().get_mut(id) {
            s.etag = etag;
        }
    }

    pub fn remove(&self, id: &str) -> Option<Session> {
        self.lock().remove(id)
    }

    /// Marks the sessions of a participant that left as ended.
    pub fn end_participant(&self, participant: ParticipantId) {
        let now = Instant::now();
        for s in self
            .lock()
            .values_mut()
            .filter(|s| s.participant == participant)
        {
            s.ended_at.get_or_insert(now);
            s.ticket = None;
        }
    }

    /// Sessions whose participant is still there.
    pub fn len(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| s.ended_at.is_none())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// ETags are quoted strings (RFC 9110).
pub fn etag_for(ice_ufrag: &str) -> String {
    format!("\"{ice_ufrag}\"")
}
