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
//!
//! A request str0m cannot act on is not always one it will act on later: its probe
//! controller refuses to probe while it last saw the estimate loss-limited, and it learns the
//! cause only when the estimate changes, so an estimate that stays put after a congested
//! spell is never probed past (measured: held at 610 kbit/s for 16 s after the link widened
//! to unlimited). So a retry after one that raised nothing, at most every
//! [`RESTART_EVERY`], restarts the estimator at the estimate instead: a fresh one probes at
//! three and six times its start (capped at twice the desired rate), which finds what the
//! link carries within a second, or confirms the estimate where the link is that narrow.

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
/// The least time between two restarts of the estimator. A link does not say when it widens:
/// this is how late, at worst, a held subscriber finds out. On a link as narrow as the
/// estimate, each restart costs two probes of 15 ms.
const RESTART_EVERY: Duration = LONGEST;

/// What to ask of the estimator instead of the desired rate the allocation chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Give it this desired rate (the dip, then the rise back).
    Desired(u64),
    /// Restart it at the current estimate, in bits per second.
    Restart(u64),
}

/// Where a subscriber's retries stand.
#[derive(Debug, Default)]
pub(crate) struct Reprobe {
    /// When the next retry is due, and the wait after it.
    due: Option<(Instant, Duration)>,
    /// When the dip was given.
    dipped: Option<Instant>,
    /// The estimate at the last retry.
    risen_at: Option<u64>,
    /// When the estimator was last restarted.
    restarted: Option<Instant>,
}

impl Reprobe {
    /// What to ask of the estimator now instead of `desired`: `held`, a video layer is held
    /// below what its subscriber wants by `estimate` on a clean link. `None` when `desired`
    /// stands.
    pub(crate) fn retry(
        &mut self,
        desired: u64,
        estimate: Option<u64>,
        held: bool,
        now: Instant,
    ) -> Option<Retry> {
        let Some(estimate) = estimate.filter(|_| held) else {
            // Restarts stay spaced out across spells: a link that keeps narrowing and
            // widening again is no reason to restart more often.
            *self = Reprobe {
                restarted: self.restarted,
                ..Reprobe::default()
            };
            return None;
        };
        let dip = Retry::Desired((desired as f64 * DIP) as u64);
        if let Some(at) = self.dipped {
            if now.saturating_duration_since(at) < DIP_HOLDS {
                return Some(dip);
            }
            // The rise: a probe request.
            self.dipped = None;
            return Some(Retry::Desired(desired));
        }
        let (due, wait) = *self.due.get_or_insert((now + FIRST, FIRST));
        if now < due {
            return None;
        }
        let fruitless = self.risen_at.map(|r| (estimate as f64) < r as f64 * RAISED);
        let next = if fruitless == Some(false) {
            FIRST
        } else {
            (wait * 2).min(LONGEST)
        };
        self.due = Some((now + next, next));
        self.risen_at = Some(estimate);
        let may_restart = self
            .restarted
            .is_none_or(|at| now.saturating_duration_since(at) >= RESTART_EVERY);
        if fruitless == Some(true) && may_restart {
            self.restarted = Some(now);
            return Some(Retry::Restart(estimate));
        }
        self.dipped = Some(now);
        Some(dip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const D: u64 = 2_400_000;

    /// What came of calls every 100 ms from `from` for `steps`: the times of the rises (probe
    /// requests) and of the restarts, in milliseconds.
    #[derive(Debug, Default, PartialEq)]
    struct Seen {
        rises: Vec<u64>,
        restarts: Vec<u64>,
    }

    fn run(r: &mut Reprobe, t0: Instant, from: u64, steps: u64, estimate: u64) -> Seen {
        let mut seen = Seen::default();
        let mut dipped = false;
        for k in from..from + steps {
            let now = t0 + MS * (100 * k as u32);
            match r.retry(D, Some(estimate), true, now) {
                Some(Retry::Desired(v)) if v < D => dipped = true,
                Some(Retry::Desired(v)) if v == D && dipped => {
                    dipped = false;
                    seen.rises.push(k * 100);
                }
                Some(Retry::Restart(e)) => {
                    assert_eq!(e, estimate, "restarted at the estimate");
                    seen.restarts.push(k * 100);
                }
                _ => {}
            }
        }
        seen
    }

    fn seen(rises: &[u64], restarts: &[u64]) -> Seen {
        Seen {
            rises: rises.to_vec(),
            restarts: restarts.to_vec(),
        }
    }

    #[test]
    fn a_held_layer_retries_less_often_while_nothing_is_raised_restarting_now_and_then() {
        let t0 = Instant::now();
        let mut r = Reprobe::default();
        // Retries after 1 s, then after 2, 4, 4, 4 s more. The first asks for a probe (its
        // rise 200 ms after its dip); each later one follows one that raised nothing: a
        // restart.
        let got = run(&mut r, t0, 0, 160, 400_000);
        assert_eq!(got, seen(&[1200], &[3000, 7000, 11_000, 15_000]));
    }

    #[test]
    fn a_probe_that_raised_the_estimate_is_followed_soon() {
        let t0 = Instant::now();
        let mut r = Reprobe::default();
        assert_eq!(run(&mut r, t0, 0, 20, 400_000), seen(&[1200], &[]));
        // The estimate doubled: the next retry one second after the last, a probe request
        // again; stuck there, the one after restarts.
        assert_eq!(run(&mut r, t0, 20, 25, 800_000), seen(&[3200], &[4000]));
    }

    #[test]
    fn nothing_is_changed_unless_held_and_congestion_starts_over() {
        let t0 = Instant::now();
        let mut r = Reprobe::default();
        assert_eq!(r.retry(D, Some(400_000), false, t0), None);
        assert_eq!(r.retry(D, None, true, t0), None);
        assert_eq!(run(&mut r, t0, 0, 40, 400_000), seen(&[1200], &[3000]));
        // Not held for a moment (congested): the first retry is a second away again, and the
        // next restart no sooner than 4 s after the last.
        assert_eq!(r.retry(D, Some(400_000), false, t0 + MS * 4000), None);
        assert_eq!(
            run(&mut r, t0, 40, 80, 400_000),
            seen(&[5200], &[7000, 11_000])
        );
    }
}
