//! One deadline per participant in a binary heap, so that finding the next timeout and the
//! participants due at an instant never scans every participant.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::ParticipantId;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ParticipantId)>>,
}

impl Timers {
    /// Pushes a deadline. The participant keeps its own record of its earliest pending entry
    /// and only asks for earlier ones, so the heap holds few stale entries whatever the
    /// packet rate; a stale entry is recognised (and skipped) when it pops.
    pub(crate) fn push(&mut self, id: ParticipantId, at: Instant) {
        self.heap.push(Reverse((at, id)));
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry due at `now`; the caller checks it against the participant's record.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ParticipantId)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}
