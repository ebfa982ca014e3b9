//! Finds the participant a datagram belongs to in O(1): by the ICE ufrag in a STUN
//! request's USERNAME before ICE completes, then by the remote address.

use std::collections::HashMap;
use std::net::SocketAddr;

use str0m::ice::StunMessage;

use crate::ParticipantId;

/// Remote addresses remembered per participant (ICE may try several before it settles).
pub(crate) const MAX_ADDRS_PER_PARTICIPANT: usize = 8;

#[derive(Debug, Default)]
pub(crate) struct Demux {
    by_ufrag: HashMap<String, ParticipantId>,
    by_addr: HashMap<SocketAddr, ParticipantId>,
}

impl Demux {
    pub(crate) fn route(&self, source: SocketAddr, contents: &[u8]) -> Option<ParticipantId> {
        // RFC 7983: a first byte of 0..=3 is STUN. A request names our ufrag first.
        if contents.first().is_some_and(|b| *b <= 3)
            && let Some(id) = StunMessage::parse(contents).ok().and_then(|m| {
                m.split_username()
                    .and_then(|(local, _)| self.by_ufrag.get(local))
            })
        {
            return Some(*id);
        }
        self.by_addr.get(&source).copied()
    }

    pub(crate) fn add_ufrag(&mut self, ufrag: &str, id: ParticipantId) {
        self.by_ufrag.insert(ufrag.to_owned(), id);
    }

    pub(crate) fn remove_ufrag(&mut self, ufrag: &str, id: ParticipantId) {
        if self.by_ufrag.get(ufrag) == Some(&id) {
            self.by_ufrag.remove(ufrag);
        }
    }

    /// Remembers that `id` talks to `addr`. Only addresses a participant's own ICE agent chose
    /// to send to are learned, so a forged STUN request cannot steal another peer's traffic.
    pub(crate) fn learn_addr(
        &mut self,
        addr: SocketAddr,
        id: ParticipantId,
        known: &mut Vec<SocketAddr>,
    ) {
        if known.contains(&addr) {
            return;
        }
        if known.len() >= MAX_ADDRS_PER_PARTICIPANT {
            let oldest = known.remove(0);
            self.forget_addr(oldest, id);
        }
        known.push(addr);
        self.by_addr.insert(addr, id);
    }

    pub(crate) fn forget_addr(&mut self, addr: SocketAddr, id: ParticipantId) {
        if self.by_addr.get(&addr) == Some(&id) {
            self.by_addr.remove(&addr);
        }
    }

    pub(crate) fn sizes(&self) -> (usize, usize) {
        (self.by_ufrag.len(), self.by_addr.len())
    }
}
