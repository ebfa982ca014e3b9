//! What the media workers report, for `/metrics` and `/debug/stats`: each worker writes its
//! own slot about once a second (an uncontended lock), readers add the slots up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use huddle_core::SfuStats;

/// One worker's latest report.
#[derive(Clone, Debug)]
pub struct Report {
    pub stats: SfuStats,
    /// Microseconds from a receive batch to the send call of each datagram it produced,
    /// since the last reset.
    pub residence: Histogram<u64>,
    /// Relay messages dropped because the other worker's queue was full.
    pub relay_dropped: u64,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            stats: SfuStats::default(),
            residence: residence_histogram(),
            relay_dropped: 0,
        }
    }
}

/// An empty residence histogram: 1 µs to 10 s, 3 significant digits.
#[allow(clippy::expect_used)] // constant bounds, valid by construction
pub fn residence_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000, 3).expect("valid histogram bounds")
}

/// The reports of all workers, and the residence reset generation they watch.
#[derive(Clone, Debug)]
pub struct Board {
    slots: Arc<[Mutex<Report>]>,
    reset: Arc<AtomicU64>,
}

impl Board {
    pub fn new(workers: usize) -> Self {
        Board {
            slots: (0..workers)
                .map(|_| Mutex::new(Report::default()))
                .collect(),
            reset: Arc::new(AtomicU64::new(0)),
        }
    }

    fn slot(&self, worker: usize) -> Option<MutexGuard<'_, Report>> {
        // A worker that panicked while writing leaves a whole report behind: recover it.
        self.slots
            .get(worker)
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn write(&self, worker: usize, report: &Report) {
        if let Some(mut slot) = self.slot(worker) {
            slot.clone_from(report);
        }
    }

    /// The generation of residence resets; a worker clears its histogram when it changes.
    pub fn reset_generation(&self) -> u64 {
        self.reset.load(Ordering::Acquire)
    }

    /// Asks every worker to start its residence histogram afresh (a measurement window).
    pub fn reset_residence(&self) {
        self.reset.fetch_add(1, Ordering::AcqRel);
    }

    /// All workers' reports added up.
    pub fn total(&self) -> Report {
        let mut total = Report::default();
        for w in 0..self.slots.len() {
            if let Some(slot) = self.slot(w) {
                total.stats = total.stats + slot.stats;
                let _ = total.residence.add(&slot.residence);
                total.relay_dropped += slot.relay_dropped;
            }
        }
        total
    }

    /// Per-worker forwarded packets (to see how a broadcast splits).
    pub fn forwarded_per_worker(&self) -> Vec<u64> {
        (0..self.slots.len())
            .map(|w| self.slot(w).map_or(0, |s| s.stats.packets_forwarded))
            .collect()
    }
}

/// A residence quantile as a duration.
pub fn quantile(h: &Histogram<u64>, q: f64) -> Duration {
    Duration::from_micros(h.value_at_quantile(q))
}
