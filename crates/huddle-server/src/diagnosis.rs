//! Connectivity diagnosis as operators and pages see it: the core's record of each
//! participant's connection ([`huddle_core::Diagnosis`]) as JSON, kept a while after the
//! participant left, and logged when a connection failed or was slow.
//!
//! Reached at `GET /sessions/{id}/diagnosis` (admin, a WHIP/WHEP session id) and by a room
//! member itself with the WebSocket message `{"type":"diagnosis"}`; a member whose connection
//! fails is sent its diagnosis unasked.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use huddle_core::{Diagnosis, Failure, ParticipantId, Role};
use serde_json::{Value, json};
use tracing::{info, warn};

/// Diagnoses of participants that left, kept for this many of the latest.
const KEPT: usize = 1024;

/// A connection this slow (ICE and DTLS) is logged.
pub const SLOW: Duration = Duration::from_secs(3);

/// One participant's diagnosis with where it was.
#[derive(Clone, Debug)]
pub struct Record {
    pub participant: ParticipantId,
    pub room: String,
    pub role: Role,
    pub diagnosis: Diagnosis,
}

/// Records by participant, and the order they came in (oldest first).
type Kept = (HashMap<ParticipantId, Record>, VecDeque<ParticipantId>);

/// The diagnoses of participants that left, newest kept.
#[derive(Clone, Debug, Default)]
pub struct Diagnoses(Arc<Mutex<Kept>>);

impl Diagnoses {
    fn lock(&self) -> MutexGuard<'_, Kept> {
        // Insertions and removals leave the map consistent: a panic elsewhere cannot matter.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn keep(&self, record: Record) {
        let mut guard = self.lock();
        let (map, order) = &mut *guard;
        if map.insert(record.participant, record.clone()).is_none() {
            order.push_back(record.participant);
        }
        while order.len() > KEPT {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    pub fn get(&self, participant: ParticipantId) -> Option<Record> {
        self.lock().0.get(&participant).cloned()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Publisher => "publisher",
        Role::Viewer => "viewer",
        Role::Member => "member",
    }
}

/// The JSON of `GET /sessions/{id}/diagnosis` and of the WebSocket `diagnosis` message.
/// `label` is the participant's id in room signaling, if it has one.
pub fn to_json(r: &Record, label: Option<&str>) -> Value {
    let d = &r.diagnosis;
    let candidates = |cs: &[huddle_core::diagnosis::CandidateNote]| {
        cs.iter()
            .map(|c| json!({ "address": c.addr.to_string(), "type": c.kind, "protocol": c.protocol }))
            .collect::<Vec<_>>()
    };
    let failure = d.failure();
    let text = match (&failure, d.state()) {
        (Some(f), _) => f.to_string(),
        (None, "connecting") => format!("connecting; so far: {}", d.stuck_at()),
        (None, "connected") => "connected".to_owned(),
        (None, _) => "ended normally".to_owned(),
    };
    json!({
        "participant": label.map_or_else(|| r.participant.to_string(), str::to_owned),
        "room": r.room,
        "role": role_name(r.role),
        "state": d.state(),
        "reason": failure.as_ref().map(Failure::code),
        "stage": failure.as_ref().map(Failure::stage),
        "text": text,
        "local_candidates": candidates(&d.local),
        "remote_candidates": candidates(&d.remote),
        "remote_candidates_dropped": d.remote_dropped,
        "ice_states": d.ice_states.iter().map(|(at, s)| json!({ "at_ms": ms(*at), "state": s })).collect::<Vec<_>>(),
        "stun": {
            "received": d.stun_received,
            "sent": d.stun_sent,
            "first_received_ms": d.first_stun_received.map(ms),
        },
        "dtls": {
            "first_received_ms": d.dtls_received.map(ms),
            "first_sent_ms": d.dtls_sent.map(ms),
        },
        "pair": d.pair().map(|p| json!({
            "protocol": p.transport.name(),
            "local": p.local.to_string(),
            "remote": p.remote.to_string(),
            "remote_type": p.remote_kind,
            "relay": p.relayed(),
            "at_ms": ms(p.at),
        })),
        "pairs_seen": d.pairs.len(),
        "connect_ms": d.connect_time().map(ms),
        "error": d.error,
        "ended": d.ended.map(|(at, reason)| json!({ "at_ms": ms(at), "reason": format!("{reason:?}").to_lowercase() })),
    })
}

/// Logs a failed connection (warn) with the facts as fields; returns its failure.
pub fn log_end(r: &Record) -> Option<Failure> {
    let d = &r.diagnosis;
    let failure = d.failure()?;
    let pair = d.pair();
    warn!(
        participant = %r.participant,
        room = %r.room,
        role = role_name(r.role),
        reason = failure.code(),
        stage = failure.stage(),
        remote_candidates = d.remote.len(),
        stun_received = d.stun_received,
        stun_sent = d.stun_sent,
        dtls_started = d.dtls_received.or(d.dtls_sent).is_some(),
        relay = pair.map(|p| p.relayed()),
        connect_ms = d.connect_time().map(ms),
        lasted_ms = d.ended.map(|(at, _)| ms(at)),
        error = d.error.as_deref(),
        facts = %d.summary(),
        "connection failed: {failure}"
    );
    Some(failure)
}

/// Logs a connection that took longer than [`SLOW`] to come up.
pub fn log_if_slow(r: &Record) {
    let d = &r.diagnosis;
    let Some(took) = d.connect_time().filter(|t| *t > SLOW) else {
        return;
    };
    let pair = d.pair();
    info!(
        participant = %r.participant,
        room = %r.room,
        role = role_name(r.role),
        connect_ms = ms(took),
        first_stun_ms = d.first_stun_received.map(ms),
        dtls_start_ms = d.dtls_received.or(d.dtls_sent).map(ms),
        relay = pair.map(|p| p.relayed()),
        facts = %d.summary(),
        "slow connection: ICE and DTLS took {:.1} s",
        took.as_secs_f64()
    );
}
