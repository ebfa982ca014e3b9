//! What a subscriber's receiver reports say about its downlink, ahead of the bandwidth
//! estimate.
//!
//! str0m emits its send-side estimate averaged over a few seconds, so when a subscriber's
//! link narrows the estimate stays above it for seconds, and then (after the heavy loss it
//! let through) falls below it. The receiver reports show the same narrowing within a report
//! interval: packets lost, and the round trip growing as the bottleneck's queue fills. From
//! those this keeps a *ceiling*: what the subscriber received of what was sent to it while its
//! link was congested. The layer allocation budgets with the lower of the estimate and the
//! ceiling, and pauses video only while the reports show the loss that says even the lowest
//! layer does not fit (an estimate that overshot downwards alone does not pause it).
//!
//! Random loss without a growing round trip (a lossy radio link) is not congestion: sending
//! less would not lose less, so it sets no ceiling unless it is heavy.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use str0m::media::Mid;

/// Reported loss from which a report counts as congested, with a growing round trip…
const LOSSY: f32 = 0.1;
/// …and without one.
const HEAVY_LOSS: f32 = 0.3;
/// How much the round trip must have grown over the least seen to say a queue is filling.
const QUEUE_GROWTH: Duration = Duration::from_millis(30);
/// The ceiling keeps this share of what was received, for the queue to drain.
const CEILING_SHARE: f64 = 0.9;
/// How long a ceiling holds after the last congested report (the estimate has caught up by
/// then: str0m averages it over three seconds).
const CEILING_HOLD: Duration = Duration::from_secs(3);
/// A report older than this says nothing about now.
const FRESH: Duration = Duration::from_millis(2500);
/// Receiver reports this soon after a switch down on a congested link report the loss of the
/// layer left behind, and so do those this soon after the next layer's first packet: what
/// str0m still queued of the old layer was dropped unsent, and the subscriber counts the
/// numbers it skipped as lost. Ignored. (A browser reports video every 0.5–1.5 s, and str0m
/// hands the reports over once a second: the report of the gap was seen 2.5 s after it.)
const SWITCH_GRACE: Duration = Duration::from_secs(3);
/// A look at the pacer's queue older than this says nothing about now (it is looked at every
/// 100 ms).
const BACKLOG_FRESH: Duration = Duration::from_millis(500);
/// A pacer whose oldest packet waited this long, its queue growing, holds more than the link
/// carries even of what was cut down to fit: evidence enough for a pause. (Once the layers
/// came down, str0m's pacer slows to about what the link carries, and what does not fit waits
/// in its queue rather than being lost: the receiver reports show little loss.)
const STUCK: Duration = Duration::from_millis(600);

/// One outgoing media section's last report.
#[derive(Clone, Copy, Debug)]
struct Sample {
    bytes: u64,
    at: Instant,
    /// Bits per second sent over the last interval (none before the second report).
    rate: Option<u64>,
    loss: f32,
    rtt: Option<Duration>,
}

/// A subscriber's downlink as its receiver reports show it.
#[derive(Debug, Default)]
pub(crate) struct Downlink {
    samples: FxHashMap<Mid, Sample>,
    least_rtt: Option<Duration>,
    /// The ceiling, bits per second, and until when it holds.
    ceiling: Option<(u64, Instant)>,
    /// When the last congested report came.
    congested_at: Option<Instant>,
    /// When the pacer's queue last showed the link congested ([`crate::pacer_queue`]), and
    /// the ceiling it set, until when that holds.
    backlogged_at: Option<Instant>,
    backlog_ceiling: Option<(u64, Instant)>,
    /// When the pacer's queue last showed a packet that had waited [`STUCK`].
    stuck_at: Option<Instant>,
    /// When a layer was last left behind on a switch down on a congested link, or the
    /// numbering gap that left last reached the subscriber.
    gap_at: Option<Instant>,
}

impl Downlink {
    /// Folds in one section's egress report: `bytes` sent in all (str0m's running total),
    /// `loss` averaged over its receiver reports since the last one. True when the ceiling
    /// was set or lowered.
    pub(crate) fn report(
        &mut self,
        mid: Mid,
        bytes: u64,
        loss: Option<f32>,
        rtt: Option<Duration>,
        now: Instant,
    ) -> bool {
        let prev = self.samples.get(&mid).copied();
        let rate = prev.and_then(|prev| {
            let secs = now.saturating_duration_since(prev.at).as_secs_f64();
            (secs > 0.1).then(|| (bytes.saturating_sub(prev.bytes) as f64 * 8.0 / secs) as u64)
        });
        // No receiver report since the last: the loss last reported stands.
        let reported = loss.is_some();
        let loss = loss.or(prev.map(|p| p.loss)).unwrap_or(0.0);
        self.samples.insert(
            mid,
            Sample {
                bytes,
                at: now,
                rate,
                loss: loss.clamp(0.0, 1.0),
                rtt,
            },
        );
        if let Some(rtt) = rtt {
            self.least_rtt = Some(self.least_rtt.map_or(rtt, |l| l.min(rtt)));
        }
        if !reported {
            return false;
        }
        if self
            .gap_at
            .is_some_and(|f| now.saturating_duration_since(f) < SWITCH_GRACE)
        {
            // That loss is the old layer's (dropped at the bottleneck before the switch), not
            // a measure of what the new layer gets through.
            return false;
        }
        let fresh = || {
            self.samples
                .values()
                .filter(move |s| now.saturating_duration_since(s.at) <= FRESH)
        };
        let (mut sent, mut received) = (0.0, 0.0);
        for s in fresh() {
            let r = s.rate.unwrap_or(0) as f64;
            sent += r;
            received += r * f64::from(1.0 - s.loss);
        }
        if sent <= 0.0 {
            return false;
        }
        let loss = 1.0 - received / sent;
        let queueing = match (fresh().filter_map(|s| s.rtt).max(), self.least_rtt) {
            (Some(rtt), Some(least)) => rtt.saturating_sub(least) >= QUEUE_GROWTH,
            _ => false,
        };
        let congested = loss >= f64::from(HEAVY_LOSS) || (loss >= f64::from(LOSSY) && queueing);
        if !congested {
            return false;
        }
        self.congested_at = Some(now);
        let value = (received * CEILING_SHARE) as u64;
        let held = self.ceiling(now);
        let value = held.map_or(value, |h| h.min(value));
        self.ceiling = Some((value, now + CEILING_HOLD));
        held != Some(value) || held.is_none()
    }

    /// The pacer's queue shows the link congested, carrying about `value` bits per second.
    /// True when that set a ceiling. A ceiling already held stands: once the layers have
    /// come down, what the pacer sends while its estimate recovers from the loss says little
    /// about the link (measured: a tenth of it), and only receiver reports lower it further.
    /// `oldest`: how long the oldest packet queued has waited.
    pub(crate) fn backlogged(&mut self, value: u64, oldest: Duration, now: Instant) -> bool {
        self.backlogged_at = Some(now);
        if oldest >= STUCK {
            self.stuck_at = Some(now);
        }
        if self.backlog_ceiling(now).is_some() {
            return false;
        }
        self.backlog_ceiling = Some((value, now + CEILING_HOLD));
        true
    }

    /// What the pacer's queue says the subscriber can take at most, while it holds. Only
    /// simulcast video can act on it (by switching down): the receiver of a single encoding
    /// cannot be sent less, and holding its resends back for it loses packets for good.
    pub(crate) fn backlog_ceiling(&self, now: Instant) -> Option<u64> {
        self.backlog_ceiling
            .filter(|(_, until)| now < *until)
            .map(|(value, _)| value)
    }

    /// What the subscriber can take at most, while its link is known to be congested.
    pub(crate) fn ceiling(&self, now: Instant) -> Option<u64> {
        self.ceiling
            .filter(|(_, until)| now < *until)
            .map(|(value, _)| value)
    }

    /// The last report said the link was congested (not just that it was, a while ago).
    pub(crate) fn congested(&self, now: Instant) -> bool {
        self.backlogged_now(now) || self.reported_congested(now)
    }

    /// A layer was left behind on a switch down on a congested link, what str0m still queued
    /// of it dropped (see [`crate::participant::Participant::drop_abandoned`]), or the next
    /// source's first packet made that gap in the numbering visible: the receiver reports of
    /// the next [`SWITCH_GRACE`] count it as loss.
    pub(crate) fn numbering_gap(&mut self, now: Instant) {
        self.gap_at = Some(now);
    }

    /// The link is congested and says so in a way a pause can rest on: the latest receiver
    /// report, or a pacer that has held video for [`STUCK`] and still holds more.
    pub(crate) fn congested_for_a_pause(&self, now: Instant) -> bool {
        self.reported_congested(now)
            || self
                .stuck_at
                .is_some_and(|at| now.saturating_duration_since(at) <= BACKLOG_FRESH)
    }

    /// The pacer's queue showed the link congested just now.
    fn backlogged_now(&self, now: Instant) -> bool {
        self.backlogged_at
            .is_some_and(|at| now.saturating_duration_since(at) <= BACKLOG_FRESH)
    }

    /// The last receiver report said the link was congested.
    fn reported_congested(&self, now: Instant) -> bool {
        self.congested_at
            .is_some_and(|at| now.saturating_duration_since(at) <= FRESH)
            && self.latest_congested()
    }

    fn latest_congested(&self) -> bool {
        let latest = self.samples.values().map(|s| s.at).max();
        latest.is_some_and(|l| Some(l) == self.congested_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Reports for one section every second at `rate` bits per second with `loss` and `rtt`.
    fn feed(d: &mut Downlink, t0: Instant, secs: u64, rate: u64, loss: f32, rtt_ms: u64) -> bool {
        let mid = Mid::from("1");
        let mut bytes = d.samples.get(&mid).map_or(0, |s| s.bytes);
        let mut changed = false;
        for k in 0..secs {
            bytes += rate / 8;
            changed |= d.report(
                mid,
                bytes,
                Some(loss),
                Some(MS * rtt_ms as u32),
                t0 + Duration::from_secs(k + 1),
            );
        }
        changed
    }

    #[test]
    fn loss_with_a_growing_round_trip_sets_a_ceiling_at_what_arrived() {
        let t0 = Instant::now();
        let mut d = Downlink::default();
        assert!(
            !feed(&mut d, t0, 3, 1_500_000, 0.0, 20),
            "clean: no ceiling"
        );
        assert_eq!(d.ceiling(t0 + Duration::from_secs(3)), None);
        // A 500 kbit/s bottleneck: two thirds lost, its queue adds 200 ms.
        let at = t0 + Duration::from_secs(3);
        assert!(feed(&mut d, at, 1, 1_500_000, 0.66, 220));
        let now = at + Duration::from_secs(1);
        let c = d.ceiling(now).unwrap();
        assert!((400_000..=480_000).contains(&c), "{c}");
        assert!(d.congested(now));
        // Clean again (a lower layer fits): no longer congested, the ceiling holds a while…
        let at = now;
        feed(&mut d, at, 1, 200_000, 0.0, 30);
        let now = at + Duration::from_secs(1);
        assert!(!d.congested(now));
        assert_eq!(d.ceiling(now), Some(c));
        // …and then lapses.
        assert_eq!(d.ceiling(now + CEILING_HOLD), None);
    }

    #[test]
    fn random_loss_without_queueing_is_not_congestion_unless_heavy() {
        let t0 = Instant::now();
        let mut d = Downlink::default();
        feed(&mut d, t0, 2, 1_000_000, 0.0, 20);
        let at = t0 + Duration::from_secs(2);
        assert!(!feed(&mut d, at, 3, 1_000_000, 0.15, 21));
        assert_eq!(d.ceiling(at + Duration::from_secs(3)), None);
        assert!(feed(
            &mut d,
            at + Duration::from_secs(3),
            1,
            1_000_000,
            0.5,
            21
        ));
    }

    #[test]
    fn a_ceiling_only_comes_down_while_it_holds() {
        let t0 = Instant::now();
        let mut d = Downlink::default();
        feed(&mut d, t0, 2, 1_000_000, 0.0, 20);
        let at = t0 + Duration::from_secs(2);
        feed(&mut d, at, 1, 1_000_000, 0.5, 120);
        let first = d.ceiling(at + Duration::from_secs(1)).unwrap();
        // Less sent, less lost: what arrived is less, so the ceiling comes down to it; a
        // report of more arriving later does not raise it.
        feed(&mut d, at + Duration::from_secs(1), 1, 600_000, 0.5, 120);
        let second = d.ceiling(at + Duration::from_secs(2)).unwrap();
        assert!(second < first, "{second} < {first}");
        feed(&mut d, at + Duration::from_secs(2), 1, 3_000_000, 0.4, 120);
        assert_eq!(d.ceiling(at + Duration::from_secs(3)), Some(second));
    }

    #[test]
    fn the_loss_of_a_numbering_gap_is_not_congestion() {
        let t0 = Instant::now();
        let mut d = Downlink::default();
        feed(&mut d, t0, 2, 300_000, 0.0, 20);
        // The next layer's first packet shows the numbers of what was dropped unsent.
        let at = t0 + Duration::from_secs(2);
        d.numbering_gap(at);
        assert!(!feed(&mut d, at, 2, 300_000, 0.5, 20), "within the grace");
        assert_eq!(d.ceiling(at + Duration::from_secs(2)), None);
        let after = at + SWITCH_GRACE;
        assert!(
            feed(&mut d, after, 1, 300_000, 0.5, 20),
            "heavy loss after it"
        );
    }

    #[test]
    fn reports_without_loss_figures_or_rates_say_nothing() {
        let t0 = Instant::now();
        let mut d = Downlink::default();
        let mid = Mid::from("0");
        assert!(!d.report(mid, 1000, Some(0.9), None, t0), "no rate yet");
        assert!(!d.report(mid, 2000, None, None, t0 + MS * 1000));
        assert_eq!(d.ceiling(t0 + MS * 1000), None);
    }

    #[test]
    fn a_pacer_holding_video_too_long_is_evidence_for_a_pause() {
        let t0 = Instant::now();
        let ms = Duration::from_millis(1);
        let mut d = Downlink::default();
        assert!(d.backlogged(400_000, ms * 300, t0));
        assert!(d.congested(t0) && !d.congested_for_a_pause(t0));
        // A ceiling held stands; the queue's age is noted all the same.
        assert!(!d.backlogged(100_000, ms * 1200, t0 + ms * 900));
        assert!(d.congested_for_a_pause(t0 + ms * 900));
        assert_eq!(d.backlog_ceiling(t0 + ms * 900), Some(400_000));
        // It says nothing once the queue is no longer seen congested.
        assert!(!d.congested_for_a_pause(t0 + ms * 1500));
    }
}
