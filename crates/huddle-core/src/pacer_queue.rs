//! What str0m's pacer queue says about a subscriber's downlink, ahead of everything else.
//!
//! When a subscriber's link narrows, str0m's own (unsmoothed) estimate falls within a few
//! hundred milliseconds of transport-wide feedback, and its pacer sends at about that rate;
//! but the estimate it *emits* is averaged over three seconds, and receiver reports come once
//! a second. Meanwhile the layer chosen from the old estimate keeps being written, and the
//! pacer's queue grows: measured behind a 500 kbit/s cap with a 1.5 Mbit/s layer, its oldest
//! packet had waited 0.6 s a second after the cap and 2.1 s after two — and the keyframe of
//! the lower layer a switch waits for is queued behind all of it.
//!
//! So the queue is sampled every [`CHECK_EVERY`]: a queue whose oldest packet has waited
//! [`DELAY`] and that grew over the last [`WINDOW`] says the layers written do not fit; what
//! the subscriber's `Rtc` sent meanwhile is what its pacer lets out, about what the link
//! carries, and a share of it is the subscriber's ceiling. A queue that is long but shrinking
//! (a replayed group of pictures draining) says nothing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How often the queue is sampled.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(100);
/// A queue whose oldest packet waited this long, and growing, does not fit the link. A
/// keyframe of the full layer (tens of kilobytes) leaves the pacer in well under this.
const DELAY: Duration = Duration::from_millis(200);
/// What was sent is measured over this long (pacer bursts even out)…
const WINDOW: Duration = Duration::from_millis(300);
/// …from samples no further apart than this (the participant was driven all along).
const MAX_GAP: Duration = Duration::from_millis(500);
/// The ceiling keeps this share of what was sent: str0m paces at 1.1 times its own
/// estimate, which still overshoots a narrowed link when the queue is first seen (measured:
/// 1.3 Mbit/s sent into a 500 kbit/s cap), and the queue must drain. One step down to a
/// layer that fits costs one keyframe; two steps cost two, and a second drop of what is queued.
const SENT_SHARE: f64 = 0.4;
/// Samples kept: enough to span the window.
const KEPT: usize = 8;

/// One look at the queue: the bytes the subscriber's `Rtc` sent so far, and what its video
/// queues hold.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    sent: u64,
    queued: u64,
}

/// A subscriber's pacer queue over time.
#[derive(Debug, Default)]
pub(crate) struct PacerQueue {
    samples: VecDeque<Sample>,
    /// When the next sample is due.
    due: Option<Instant>,
}

impl PacerQueue {
    /// Whether a sample is due at `now`.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.due.is_none_or(|d| d <= now)
    }

    /// Takes one sample: `sent`, the bytes the subscriber's `Rtc` sent in all; `queued`, the
    /// payload bytes its video queues hold; `oldest`, how long the oldest of them has waited.
    /// The subscriber's ceiling in bits per second when the queue shows the link congested.
    pub(crate) fn sample(
        &mut self,
        now: Instant,
        sent: u64,
        queued: u64,
        oldest: Option<Duration>,
    ) -> Option<u64> {
        self.due = Some(now + CHECK_EVERY);
        if self
            .samples
            .back()
            .is_some_and(|b| now.saturating_duration_since(b.at) > MAX_GAP)
        {
            self.samples.clear();
        }
        if self.samples.len() >= KEPT {
            self.samples.pop_front();
        }
        self.samples.push_back(Sample {
            at: now,
            sent,
            queued,
        });
        // The newest sample at least a window old.
        let from = self
            .samples
            .iter()
            .rev()
            .find(|s| now.saturating_duration_since(s.at) >= WINDOW)?;
        let secs = now.saturating_duration_since(from.at).as_secs_f64();
        let rate = sent.saturating_sub(from.sent) as f64 * 8.0 / secs;
        let growing = queued > from.queued;
        if !growing || oldest.is_none_or(|o| o < DELAY) {
            return None;
        }
        Some((rate * SENT_SHARE) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Writes `write_bps` into a queue that drains (is sent) at `drain_bps`, sampling every
    /// 100 ms for `steps` samples; the last sample's verdict.
    fn run(
        q: &mut PacerQueue,
        t0: Instant,
        queued0: u64,
        write_bps: u64,
        drain_bps: u64,
        steps: u64,
    ) -> Option<u64> {
        let (mut sent, mut queued) = (0u64, queued0);
        let mut verdict = None;
        for k in 0..=steps {
            let now = t0 + MS * (100 * k as u32);
            let oldest = Duration::from_secs_f64(queued as f64 * 8.0 / drain_bps as f64);
            verdict = q.sample(now, sent, queued, (queued > 0).then_some(oldest));
            // The next 100 ms.
            let out = (queued + write_bps / 80).min(drain_bps / 80);
            sent += out;
            queued = queued + write_bps / 80 - out;
        }
        verdict
    }

    #[test]
    fn a_growing_queue_sets_a_ceiling_at_a_share_of_what_was_sent() {
        let t0 = Instant::now();
        let mut q = PacerQueue::default();
        // 1.5 Mbit/s written, 500 kbit/s sent: after 0.4 s the oldest packet has waited
        // 0.8 s and the queue keeps growing.
        let c = run(&mut q, t0, 0, 1_500_000, 500_000, 4).expect("congested");
        assert!((195_000..=205_000).contains(&c), "{c}");
    }

    #[test]
    fn a_short_or_shrinking_queue_says_nothing() {
        let t0 = Instant::now();
        // Sent faster than it is written: never long.
        let mut q = PacerQueue::default();
        assert_eq!(run(&mut q, t0, 0, 500_000, 1_650_000, 10), None);
        // A replayed GOP of 200 kB draining behind live packets: long, but shrinking.
        let mut q = PacerQueue::default();
        assert_eq!(run(&mut q, t0, 200_000, 1_500_000, 2_000_000, 10), None);
        // Growing, but only just started: the oldest packet has not waited long.
        let mut q = PacerQueue::default();
        assert_eq!(run(&mut q, t0, 0, 1_500_000, 1_400_000, 3), None);
    }

    #[test]
    fn a_rate_needs_a_window_of_samples_close_together() {
        let t0 = Instant::now();
        let mut q = PacerQueue::default();
        let long = Some(Duration::from_millis(500));
        assert_eq!(q.sample(t0, 0, 10_000, long), None);
        assert!(!q.due(t0 + MS * 50) && q.due(t0 + CHECK_EVERY));
        assert_eq!(
            q.sample(t0 + MS * 200, 10_000, 20_000, long),
            None,
            "window not spanned"
        );
        // A gap (not driven for a second) starts over.
        assert_eq!(q.sample(t0 + MS * 1200, 50_000, 30_000, long), None);
        assert_eq!(q.sample(t0 + MS * 1400, 60_000, 40_000, long), None);
        let c = q.sample(t0 + MS * 1500, 65_000, 50_000, long);
        // 15 kB in 300 ms: 400 kbit/s, 40% of it.
        assert!(c.is_some_and(|c| c.abs_diff(160_000) <= 1), "{c:?}");
    }
}
