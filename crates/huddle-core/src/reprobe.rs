//! Asking a subscriber's estimator to probe again while its video is held below what it
//! wants.
//!
//! str0m probes for more bandwidth when the desired rate it is given rises above its
//! estimate, but only then: a rise it could not act on (its loss controller still
//! recovering from a congested spell) is not replayed, and its own periodic probes come only
//! while the sender is well below its estimate, or after fifteen seconds of a stagnant one.
//! So a subscriber that moved down a layer behind a narrowed link could stay there for
//! fifteen seconds after the link widened again (measured). While a layer is held back by
//! the estimate on a clean link, the desired rate given to the estimator dips a little and
//! then rises back: each rise is a fresh request for a probe (at up to twice the estimate).
//! A probe that raised the estimate is followed by the next one soon; one that did not (the
//! link is what the estimate says) by the next one later and later. Congestion starts over.

use std::time::{Duration, Instant};

/// The first retry after a clean spell starts, and the retry after a probe that raised the
/// estimate.
const FIRST: Duration = Duration::from_secs(1);
/// The longest wait between retries.
const LONGEST: Duration = Duration::from_secs(4);
/// How long the dip holds before the rise (the estimator looks at the desired rate on its
/// own timer, within milliseconds).
const DIP_HOLDS: Duration = Duration::from_millis(200);
/// The dip's share of the desired rate.
const DIP: f64 = 0.85;
/// An estimate this much above the one at the last retry counts as raised.
const RAISED: f64 = 1.2;

/// Where a subscriber's retries stand.
#[derive(Debug, Default)]
pub(crate) struct Reprobe {
    /// When the next retry is due, and the wait after it.
    due: Option<(Instant, Duration)>,
    /// When the dip was given.
    dipped: Option<Instant>,
    /// The estimate at the last rise.
    risen_at: Option<u64>,
}

impl Reprobe {
    /// The desired rate to give the estimator now instead of `desired`: `held`, a video layer
    /// is held below what its subscriber wants by `estimate` on a clean link. `None` when
    /// `desired` stands.
    pub(crate) fn desired(
        &mut self,
        desired: u64,
        estimate: Option<u64>,
        held: bool,
        now: Instant,
    ) -> Option<u64> {
        let Some(estimate) = estimate.filter(|_| held) else {
            *self = Reprobe::default();
            return None;
        };
        if let Some(at) = self.dipped {
            if now.saturating_duration_since(at) < DIP_HOLDS {
                return Some((desired as f64 * DIP) as u64);
            }
            // The rise: a probe request.
            self.dipped = None;
            return Some(desired);
        }
        let (due, wait) = *self.due.get_or_insert((now + FIRST, FIRST));
        if now < due {
            return None;
        }
        let raised = self
            .risen_at
            .is_some_and(|r| estimate as f64 >= r as f64 * RAISED);
        let next = if raised {
            FIRST
        } else {
            (wait * 2).min(LONGEST)
        };
        self.due = Some((now + next, next));
        self.risen_at = Some(estimate);
        self.dipped = Some(now);
        Some((desired as f64 * DIP) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const D: u64 = 2_400_000;

    /// Calls every 100 ms from `from` for `steps`; the times a rise (a probe request) came.
    fn run(r: &mut Reprobe, t0: Instant, from: u64, steps: u64, estimate: u64) -> Vec<u64> {
        let mut rises = Vec::new();
        let mut dipped = false;
        for k in from..from + steps {
            let now = t0 + MS * (100 * k as u32);
            match r.desired(D, Some(estimate), true, now) {
                Some(v) if v < D => dipped = true,
                Some(v) if v == D && dipped => {
                    dipped = false;
                    rises.push(k * 100);
                }
                _ => {}
            }
        }
        rises
    }

    #[test]
    fn a_held_layer_asks_for_probes_less_often_while_they_raise_nothing() {
        let t0 = Instant::now();
        let mut r = Reprobe::default();
        // Dips after 1 s, then after 2, 4, 4, 4 s more; each rise 200 ms after its dip.
        let rises = run(&mut r, t0, 0, 160, 400_000);
        assert_eq!(rises, vec![1200, 3200, 7200, 11_200, 15_200]);
    }

    #[test]
    fn a_probe_that_raised_the_estimate_is_followed_soon() {
        let t0 = Instant::now();
        let mut r = Reprobe::default();
        assert_eq!(run(&mut r, t0, 0, 20, 400_000), vec![1200]);
        // The estimate doubled: the next retry one second after the last.
        assert_eq!(run(&mut r, t0, 20, 25, 800_000), vec![3200, 4200]);
    }

    #[test]
    fn nothing_is_changed_unless_held_and_congestion_starts_over() {
        let t0 = Instant::now();
        let mut r = Reprobe::default();
        assert_eq!(r.desired(D, Some(400_000), false, t0), None);
        assert_eq!(r.desired(D, None, true, t0), None);
        run(&mut r, t0, 0, 40, 400_000);
        // Not held for a moment (congested): the first retry is a second away again.
        assert_eq!(r.desired(D, Some(400_000), false, t0 + MS * 4000), None);
        assert_eq!(run(&mut r, t0, 41, 20, 400_000), vec![5300]);
    }
}
