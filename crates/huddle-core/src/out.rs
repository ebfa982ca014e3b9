//! What a step of the core produces: datagrams to send, events to tell, relay messages, and
//! the bookkeeping the [`Sfu`](crate::Sfu) applies once a room has settled (the demux and
//! the timer heap live above the rooms).

use std::collections::VecDeque;
use std::time::Instant;

use crate::demux::Remote;
use crate::relay::{Relay, RelayLink};
use crate::{Event, ParticipantId, Transmit};

#[derive(Debug, Default)]
pub(crate) struct Out {
    pub transmits: VecDeque<Transmit>,
    pub events: VecDeque<Event>,
    pub relay: VecDeque<(RelayLink, Relay)>,
    pub counters: Counters,
    /// A participant's ICE agent sent to a new address (and the one it forgot, if any).
    pub learned: Vec<(ParticipantId, Remote, Option<Remote>)>,
    /// Participants that left their room, for the demux and the routes to forget.
    pub removed: Vec<Removed>,
    /// New earliest deadlines of participants.
    pub deadlines: Vec<(ParticipantId, Instant)>,
}

/// Running totals, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub datagrams_unrouted: u64,
    pub datagrams_malformed: u64,
    pub packets_received: u64,
    pub packets_forwarded: u64,
    pub packets_relayed: u64,
    pub keyframe_requests_sent: u64,
    /// Video layer changes decided (switches, pauses, resumes), by the reason for the new
    /// choice ([`crate::Reason::index`]).
    pub layer_switches: [u64; crate::Reason::COUNT],
    pub pauses: u64,
    /// Subscribers' bandwidth estimators restarted to find a widened link ([`crate::reprobe`]).
    pub estimator_restarts: u64,
    /// NACKs from subscribers, retransmissions answering them, NACKs sent to publishers.
    pub nacks_received: u64,
    pub retransmissions: u64,
    pub nacks_sent: u64,
    /// Participants woken by their own deadline (str0m's timers or huddle's).
    pub timer_wakeups: u64,
}

/// What the demux knew of a participant that left.
#[derive(Debug)]
pub(crate) struct Removed {
    pub id: ParticipantId,
    pub ufrag: String,
    pub addrs: Vec<Remote>,
}
