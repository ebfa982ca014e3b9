//! A bandwidth cap: a token bucket in front of a byte-limited queue (tail drop), as a
//! bottleneck router does.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A cap on one direction of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// Sustained rate, bits per second.
    pub rate_bps: u64,
    /// Bytes that may go at once after a quiet spell.
    pub burst_bytes: usize,
    /// Bytes the queue holds before it drops arrivals.
    pub queue_bytes: usize,
}

impl Cap {
    /// `rate_bps` with a burst of four full packets and a queue of 200 ms at that rate.
    pub fn new(rate_bps: u64) -> Cap {
        Cap {
            rate_bps,
            burst_bytes: 4 * 1500,
            queue_bytes: (rate_bps / 8 / 5).max(3000) as usize,
        }
    }
}

/// The bucket and its queue.
#[derive(Debug)]
pub(crate) struct Shaper {
    cap: Cap,
    tokens: f64,
    at: Option<Instant>,
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
}

impl Shaper {
    pub fn new(cap: Cap) -> Self {
        Shaper {
            cap,
            tokens: cap.burst_bytes as f64,
            at: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    /// A new cap; what is queued stays and drains at the new rate.
    pub fn set_cap(&mut self, cap: Cap) {
        self.cap = cap;
        self.tokens = self.tokens.min(cap.burst_bytes as f64);
    }

    /// Everything queued, in order (the cap is being lifted).
    pub fn drain(&mut self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.queued_bytes = 0;
        self.queue.drain(..)
    }

    fn refill(&mut self, now: Instant) {
        let since = self
            .at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.tokens = (self.tokens + since.as_secs_f64() * self.cap.rate_bps as f64 / 8.0)
            .min(self.cap.burst_bytes as f64);
        self.at = Some(now);
    }

    /// Queues a packet arriving at `now`; false if the queue was full and it was dropped.
    pub fn enqueue(&mut self, now: Instant, packet: Vec<u8>) -> bool {
        if self.queue.is_empty() {
            self.refill(now);
        }
        if self.queued_bytes + packet.len() > self.cap.queue_bytes && !self.queue.is_empty() {
            return false;
        }
        self.queued_bytes += packet.len();
        self.queue.push_back(packet);
        true
    }

    /// When the packet at the head may leave.
    pub fn next_ready(&self) -> Option<Instant> {
        let head = self.queue.front()?;
        let at = self.at?;
        let missing = head.len() as f64 - self.tokens;
        if missing <= 0.0 {
            return Some(at);
        }
        let rate = self.cap.rate_bps.max(1) as f64 / 8.0;
        Some(at + Duration::from_secs_f64(missing / rate))
    }

    /// The head packet and when it left, if it may leave by `now`.
    pub fn release(&mut self, now: Instant) -> Option<(Vec<u8>, Instant)> {
        let ready = self.next_ready().filter(|t| *t <= now)?;
        self.refill(ready);
        let packet = self.queue.pop_front()?;
        self.tokens = (self.tokens - packet.len() as f64).max(0.0);
        self.queued_bytes -= packet.len();
        Some((packet, ready))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_throughput_to_its_rate_and_drops_what_overflows() {
        let t0 = Instant::now();
        let cap = Cap::new(500_000);
        let mut s = Shaper::new(cap);
        // Offer 1 Mbit/s for 10 s: 1,000-byte packets every 8 ms.
        let (mut sent, mut dropped, mut last) = (0usize, 0, t0);
        for i in 0..1250u64 {
            let now = t0 + Duration::from_millis(8 * i);
            if !s.enqueue(now, vec![0; 1000]) {
                dropped += 1;
            }
            while let Some((p, at)) = s.release(now) {
                sent += p.len();
                last = at;
            }
        }
        let secs = last.duration_since(t0).as_secs_f64();
        let rate = sent as f64 * 8.0 / secs;
        assert!((rate - 500_000.0).abs() < 500_000.0 * 0.03, "{rate} bit/s");
        assert!(dropped > 500, "{dropped} dropped");
        // The queue holds at most ~200 ms of it.
        assert!(s.queued_bytes <= cap.queue_bytes);
    }

    #[test]
    fn under_the_cap_packets_pass_at_once() {
        let t0 = Instant::now();
        let mut s = Shaper::new(Cap::new(1_000_000));
        for i in 0..100u64 {
            let now = t0 + Duration::from_millis(20 * i);
            assert!(s.enqueue(now, vec![0; 1000]));
            let (_, at) = s.release(now).unwrap();
            assert_eq!(at, now);
        }
    }

    #[test]
    fn a_higher_cap_drains_the_queue_faster() {
        let t0 = Instant::now();
        let slow_cap = Cap {
            rate_bps: 80_000,
            burst_bytes: 2000,
            queue_bytes: 20_000,
        };
        let mut s = Shaper::new(slow_cap);
        for _ in 0..10 {
            assert!(s.enqueue(t0, vec![0; 1000]));
        }
        // The burst lets two go at once; the third waits 100 ms at 80 kbit/s.
        assert!(s.release(t0).is_some() && s.release(t0).is_some());
        assert!(s.release(t0).is_none());
        let slow = s.next_ready().unwrap();
        assert_eq!(slow, t0 + Duration::from_millis(100));
        s.set_cap(Cap::new(8_000_000));
        assert!(s.next_ready().unwrap() < slow);
        assert_eq!(s.drain().count(), 8);
        assert_eq!(s.next_ready(), None);
    }
}
