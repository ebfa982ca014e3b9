//! What the server itself says about a measurement window: huddle's residence time (receive
//! batch → send call, per datagram: the SFU-added latency without the peers' scheduling), how
//! the fan-out spread over its media workers, and how often participants were woken by their
//! timers rather than by packets. Read from its `GET /debug/stats` (the harness
//! starts huddle with `--no-auth`); other SUTs report nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sut::Sut;

/// `/debug/stats` at one instant: the fields this module reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ServerCounters {
    residence_us: Residence,
    #[serde(default)]
    forwarded_per_worker: Vec<u64>,
    #[serde(default)]
    packets_forwarded: u64,
    #[serde(default)]
    timer_wakeups: u64,
}

/// Residence time since the last reset, microseconds.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
pub struct Residence {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The server's own figures between two [`ServerCounters`] (the first taken with a reset).
#[derive(Clone, Debug, Serialize)]
pub struct ServerWindow {
    /// Residence time over the window (its histogram restarted at the window's start; up to
    /// a second after its end included).
    pub residence_us: Residence,
    /// Datagrams each media worker forwarded in the window, percent of all.
    pub worker_share_pct: Vec<f64>,
    /// Participants woken by a deadline, per forwarded packet: besides the packets written to
    /// it, what drives a subscriber's `Rtc`.
    pub timer_wakeups_per_forwarded: f64,
}

impl ServerWindow {
    pub fn between(start: &ServerCounters, end: &ServerCounters) -> ServerWindow {
        let sent: Vec<u64> = end
            .forwarded_per_worker
            .iter()
            .enumerate()
            .map(|(i, n)| n.saturating_sub(start.forwarded_per_worker.get(i).copied().unwrap_or(0)))
            .collect();
        let total: u64 = sent.iter().sum();
        let forwarded = end
            .packets_forwarded
            .saturating_sub(start.packets_forwarded);
        let wakeups = end.timer_wakeups.saturating_sub(start.timer_wakeups);
        ServerWindow {
            timer_wakeups_per_forwarded: wakeups as f64 / forwarded.max(1) as f64,
            residence_us: end.residence_us,
            worker_share_pct: sent
                .iter()
                .map(|n| *n as f64 * 100.0 / total.max(1) as f64)
                .collect(),
        }
    }

    pub fn print(&self) {
        let r = &self.residence_us;
        let row = |k: &str, v: String| println!("  {k:<34} {v}");
        row(
            "residence p50/p99/p99.9 (server)",
            format!(
                "{} / {} / {} µs (max {}, {} datagrams)",
                r.p50, r.p99, r.p999, r.max, r.count
            ),
        );
        let shares: Vec<String> = self
            .worker_share_pct
            .iter()
            .map(|s| format!("{s:.1}%"))
            .collect();
        row("fan-out per media worker", shares.join(" / "));
        row(
            "timer wakeups per forwarded packet",
            format!("{:.3}", self.timer_wakeups_per_forwarded),
        );
    }
}

/// huddle's workers publish their counters once a second ([`ServerCounters`] lag by up to
/// that), and start a fresh residence histogram at the first publication after a reset.
const PUBLISHED_EVERY: Duration = Duration::from_millis(1100);

/// Restarts the SUT's residence histograms and returns its counters once that has taken
/// effect, to be the window's start; `None` (at once) for a SUT without counters.
pub async fn open(sut: &dyn Sut) -> Option<ServerCounters> {
    sut.counters(true).await?;
    tokio::time::sleep(PUBLISHED_EVERY).await;
    sut.counters(false).await
}

/// The window from `start` ([`open`]) to now, once the SUT has published up to now.
pub async fn close(sut: &dyn Sut, start: Option<ServerCounters>) -> Option<ServerWindow> {
    let start = start?;
    tokio::time::sleep(PUBLISHED_EVERY).await;
    Some(ServerWindow::between(&start, &sut.counters(false).await?))
}

/// huddle's `/debug/stats` under `base`; `reset` first restarts its residence histograms.
/// `None` when the server does not answer as expected (the report then goes without).
pub async fn fetch(base: &str, reset: bool) -> Option<ServerCounters> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?;
    if reset {
        let resp = client
            .post(format!("{base}/debug/residence/reset"))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            tracing::warn!("residence reset: {}", resp.status());
            return None;
        }
    }
    let resp = client
        .get(format!("{base}/debug/stats"))
        .send()
        .await
        .ok()?;
    serde_json::from_str(&resp.text().await.ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_of_the_window_not_of_all_time() {
        let start = ServerCounters {
            forwarded_per_worker: vec![1000, 0],
            packets_forwarded: 1000,
            timer_wakeups: 100,
            ..ServerCounters::default()
        };
        let end = ServerCounters {
            residence_us: Residence {
                count: 10,
                p50: 40,
                p99: 300,
                p999: 900,
                max: 1200,
            },
            forwarded_per_worker: vec![1600, 400],
            packets_forwarded: 2000,
            timer_wakeups: 500,
        };
        let w = ServerWindow::between(&start, &end);
        assert_eq!(w.worker_share_pct, vec![60.0, 40.0]);
        assert_eq!(w.timer_wakeups_per_forwarded, 0.4);
        assert_eq!(w.residence_us.p99, 300);
        let none = ServerWindow::between(&end, &end);
        assert_eq!(none.worker_share_pct, vec![0.0, 0.0]);
    }
}
