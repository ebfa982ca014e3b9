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
    /// Schedules `id` at `at`. `scheduled` is the participant's own record of its earliest
    /// pending entry: a later deadline than that is not pushed (the earlier entry fires first
    /// and reschedules), so the heap holds few stale entries whatever the packet rate.
    pub(crate) fn schedule(
        &mut self,
        id: ParticipantId,
        at: Instant,
        scheduled: &mut Option<Instant>,
    ) {
        if scheduled.is_some_and(|s| s <= at) {
            return;
        }
        *scheduled = Some(at);
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
