//! Finds the participant a datagram belongs to in O(1): by the ICE ufrag in a STUN
//! request's USERNAME before ICE completes, then by the remote address.

use std::collections::HashMap;
use std::net::SocketAddr;

use rustc_hash::FxHashMap;
use str0m::ice::StunMessage;

use crate::{ParticipantId, Transport};

/// A peer's address as the demux knows it: the same address over UDP and over TCP are two.
pub(crate) type Remote = (Transport, SocketAddr);

/// Remote addresses remembered per participant (ICE may try several before it settles).
pub(crate) const MAX_ADDRS_PER_PARTICIPANT: usize = 8;

/// Where a datagram goes: the room (its key in the [`Sfu`](crate::Sfu)) and the participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub room: usize,
    pub participant: ParticipantId,
}

#[derive(Debug, Default)]
pub(crate) struct Demux {
    /// Keys are random strings from peers' STUN requests: SipHash, not Fx.
    by_ufrag: HashMap<String, Route>,
    by_addr: FxHashMap<Remote, Route>,
}

impl Demux {
    pub(crate) fn route(&self, source: Remote, contents: &[u8]) -> Option<Route> {
        // RFC 7983: a first byte of 0..=3 is STUN. A request names our ufrag first.
        if contents.first().is_some_and(|b| *b <= 3)
            && let Some(route) = StunMessage::parse(contents).ok().and_then(|m| {
                m.split_username()
                    .and_then(|(local, _)| self.by_ufrag.get(local))
            })
        {
            return Some(*route);
        }
        self.by_addr.get(&source).copied()
    }

    pub(crate) fn add_ufrag(&mut self, ufrag: &str, route: Route) {
        self.by_ufrag.insert(ufrag.to_owned(), route);
    }

    pub(crate) fn remove_ufrag(&mut self, ufrag: &str, id: ParticipantId) {
        if self
            .by_ufrag
            .get(ufrag)
            .is_some_and(|r| r.participant == id)
        {
            self.by_ufrag.remove(ufrag);
        }
    }

    /// Routes `addr` to `route` (the participant's ICE agent chose to send there).
    pub(crate) fn add_addr(&mut self, addr: Remote, route: Route) {
        self.by_addr.insert(addr, route);
    }

    pub(crate) fn forget_addr(&mut self, addr: Remote, id: ParticipantId) {
        if self.by_addr.get(&addr).is_some_and(|r| r.participant == id) {
            self.by_addr.remove(&addr);
        }
    }

    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.by_ufrag.len(), self.by_addr.len())
    }
}
