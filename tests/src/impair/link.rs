//! One direction of an impaired link, sans-IO: packets go in with [`Link::push`] and come
//! out with [`Link::poll`] on a clock the caller gives, after loss, duplication, the cap's
//! queue, delay and reordering. Deterministic for a seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::loss::{Loss, LossState};
use super::rng::Rng;
use super::shaper::{Cap, Shaper};

/// What one direction of a link does to packets, in this order: loses them ([`Loss`]),
/// duplicates them, queues them behind a bandwidth cap, delays them and holds some back so
/// later ones overtake them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    pub loss: Loss,
    /// Probability that a packet is sent twice.
    pub duplicate: f64,
    /// Bandwidth cap (`None`: unlimited).
    pub cap: Option<Cap>,
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Probability that a packet is held back by `reorder_by` more.
    pub reorder: f64,
    pub reorder_by: Duration,
}

impl Impairment {
    /// Random loss with probability `p`, nothing else.
    pub fn random_loss(p: f64) -> Self {
        Impairment {
            loss: Loss::Random { p },
            ..Impairment::default()
        }
    }

    /// A bandwidth cap, nothing else.
    pub fn capped(rate_bps: u64) -> Self {
        Impairment {
            cap: Some(Cap::new(rate_bps)),
            ..Impairment::default()
        }
    }
}

/// Counts of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets that came in.
    pub received: u64,
    /// Lost by the loss model.
    pub lost: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Dropped because the cap's queue was full.
    pub queue_dropped: u64,
    /// Held back to be reordered.
    pub reordered: u64,
    /// Packets that came out, and their bytes.
    pub sent: u64,
    pub sent_bytes: u64,
}

/// One direction: see the module docs.
#[derive(Debug)]
pub struct Link {
    impairment: Impairment,
    rng: Rng,
    loss: LossState,
    shaper: Option<Shaper>,
    /// Packets on their way, by due time then arrival order.
    in_flight: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    order: u64,
    stats: LinkStats,
}

impl Link {
    pub fn new(impairment: Impairment, seed: u64) -> Self {
        Link {
            shaper: impairment.cap.map(Shaper::new),
            impairment,
            rng: Rng::new(seed),
            loss: LossState::default(),
            in_flight: BinaryHeap::new(),
            order: 0,
            stats: LinkStats::default(),
        }
    }

    pub fn impairment(&self) -> Impairment {
        self.impairment
    }

    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Changes what the link does from `now` on. Packets queued behind a cap stay queued
    /// under a new cap, or leave at once when the cap is lifted.
    pub fn set(&mut self, now: Instant, impairment: Impairment) {
        match (impairment.cap, self.shaper.as_mut()) {
            (Some(cap), Some(s)) => s.set_cap(cap),
            (Some(cap), None) => self.shaper = Some(Shaper::new(cap)),
            (None, Some(s)) => {
                let queued: Vec<Vec<u8>> = s.drain().collect();
                self.shaper = None;
                self.impairment = impairment;
                for p in queued {
                    self.delay(now, p);
                }
            }
            (None, None) => {}
        }
        self.impairment = impairment;
    }

    /// A packet arriving at `now`.
    pub fn push(&mut self, now: Instant, packet: Vec<u8>) {
        self.stats.received += 1;
        if self.loss.lose(&self.impairment.loss, &mut self.rng) {
            self.stats.lost += 1;
            return;
        }
        if self.rng.chance(self.impairment.duplicate) {
            self.stats.duplicated += 1;
            self.admit(now, packet.clone());
        }
        self.admit(now, packet);
    }

    fn admit(&mut self, now: Instant, packet: Vec<u8>) {
        if self.shaper.is_none() {
            self.delay(now, packet);
            return;
        }
        // Let out what was due before this arrival, so the queue is as it was then.
        self.release(now);
        if let Some(s) = self.shaper.as_mut()
            && !s.enqueue(now, packet)
        {
            self.stats.queue_dropped += 1;
        }
    }

    /// Moves packets the cap lets go by `now` on to the delay stage.
    fn release(&mut self, now: Instant) {
        while let Some((p, at)) = self.shaper.as_mut().and_then(|s| s.release(now)) {
            self.delay(at, p);
        }
    }

    fn delay(&mut self, left_at: Instant, packet: Vec<u8>) {
        let mut due = left_at + self.impairment.delay;
        if self.rng.chance(self.impairment.reorder) {
            self.stats.reordered += 1;
            due += self.impairment.reorder_by;
        }
        self.order += 1;
        self.in_flight.push(Reverse((due, self.order, packet)));
    }

    /// The next packet due by `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.release(now);
        let Reverse((due, _, _)) = self.in_flight.peek()?;
        if *due > now {
            return None;
        }
        let Reverse((_, _, packet)) = self.in_flight.pop()?;
        self.stats.sent += 1;
        self.stats.sent_bytes += packet.len() as u64;
        Some(packet)
    }

    /// When [`Link::poll`] next has something.
    pub fn next_due(&self) -> Option<Instant> {
        let flight = self.in_flight.peek().map(|Reverse((due, _, _))| *due);
        let queued = self.shaper.as_ref().and_then(Shaper::next_ready);
        match (flight, queued) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// Pushes packets numbered 0..n every `every_ms`, polling as it goes and until the link
    /// is empty; returns (number, when it came out).
    fn drive(link: &mut Link, n: u32, every_ms: u64, t0: Instant) -> Vec<(u32, Instant)> {
        let mut out = Vec::new();
        let mut take = |link: &mut Link, now| {
            while let Some(p) = link.poll(now) {
                out.push((u32::from_be_bytes([p[0], p[1], p[2], p[3]]), now));
            }
        };
        for i in 0..n {
            let now = ms(t0, every_ms * i as u64);
            take(link, now);
            let mut p = i.to_be_bytes().to_vec();
            p.resize(1000, 0);
            link.push(now, p);
            take(link, now);
        }
        for _ in 0..100_000 {
            let Some(due) = link.next_due() else { break };
            take(link, due);
        }
        out
    }

    #[test]
    fn a_clean_link_delays_everything_by_the_same_amount() {
        let t0 = Instant::now();
        let imp = Impairment {
            delay: Duration::from_millis(30),
            ..Impairment::default()
        };
        let out = drive(&mut Link::new(imp, 1), 50, 10, t0);
        assert_eq!(out.len(), 50);
        for (k, (i, at)) in out.iter().enumerate() {
            assert_eq!(*i as usize, k);
            assert_eq!(*at, ms(t0, 10 * *i as u64 + 30));
        }
    }

    #[test]
    fn loss_duplicates_and_reordering_are_counted_and_repeat_for_a_seed() {
        let t0 = Instant::now();
        let imp = Impairment {
            loss: Loss::Random { p: 0.1 },
            duplicate: 0.05,
            reorder: 0.1,
            reorder_by: Duration::from_millis(25),
            ..Impairment::default()
        };
        let mut link = Link::new(imp, 3);
        let out = drive(&mut link, 2000, 10, t0);
        let s = link.stats();
        assert_eq!(s.received, 2000);
        assert_eq!(s.sent as usize, out.len());
        assert_eq!(s.sent, s.received - s.lost + s.duplicated);
        assert!((150..250).contains(&s.lost), "{s:?}");
        assert!((60..140).contains(&s.duplicated), "{s:?}");
        let overtaken = out.windows(2).filter(|w| w[1].0 < w[0].0).count();
        assert!(overtaken > 100, "{overtaken} reordered");
        let again = drive(&mut Link::new(imp, 3), 2000, 10, t0);
        assert_eq!(out, again);
    }

    #[test]
    fn a_lifted_cap_lets_the_queue_out_at_once_and_throughput_recovers() {
        let t0 = Instant::now();
        let mut link = Link::new(Impairment::capped(400_000), 5);
        // 800 kbit/s offered for 2 s: 1,000 bytes every 10 ms.
        let capped = drive_for(&mut link, t0, 0, 200);
        let rate = capped as f64 * 8000.0 / 2.0;
        assert!((rate - 400_000.0).abs() < 40_000.0, "capped {rate}");
        assert!(link.stats().queue_dropped > 50);
        link.set(ms(t0, 2000), Impairment::default());
        let lifted = drive_for(&mut link, t0, 200, 400);
        // Everything offered after the lift arrives (plus what was queued).
        assert!(lifted >= 200, "{lifted}");
    }

    /// Offers packets `from..to` (one every 10 ms), returns how many came out meanwhile.
    fn drive_for(link: &mut Link, t0: Instant, from: u64, to: u64) -> usize {
        let mut n = 0;
        for i in from..to {
            let now = ms(t0, 10 * i);
            link.push(now, vec![0; 1000]);
            while link.poll(now).is_some() {
                n += 1;
            }
        }
        n
    }
}
