//! Percentiles, the human tables and the JSON file.

use std::path::Path;

use serde::Serialize;

use crate::scenario::{Joins, Memory, Window, fmt_pct};

/// Percentiles of a sample (all zero when it is empty).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

fn pick(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted
        .get(i.min(sorted.len() - 1))
        .copied()
        .unwrap_or_default()
}

pub fn percentiles_f64(v: &mut [f64]) -> Percentiles {
    v.sort_by(|a, b| a.total_cmp(b));
    Percentiles {
        samples: v.len(),
        p50: pick(v, 0.50),
        p95: pick(v, 0.95),
        p99: pick(v, 0.99),
        p999: pick(v, 0.999),
        max: v.last().copied().unwrap_or(0.0),
    }
}

pub fn percentiles(v: &mut [u64]) -> Percentiles {
    let mut f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    percentiles_f64(&mut f)
}

/// A finished `broadcast` run.
#[derive(Clone, Debug, Serialize)]
pub struct BroadcastReport {
    pub scenario: &'static str,
    pub sut: String,
    pub media: crate::scenario::MediaShape,
    /// Lean viewers: one packet in this many per SSRC decrypted and checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lean_sample_one_in: Option<u32>,
    pub harness_threads: usize,
    pub window: Window,
    /// The server's own figures for the window (huddle only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::server_window::ServerWindow>,
    pub joins: Joins,
    pub memory: Memory,
    /// Set by `floor --with broadcast`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_floor: Option<f64>,
}

fn mib(b: Option<u64>) -> String {
    b.map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
        .unwrap_or_else(|| "n/a".into())
}

fn kib(b: Option<u64>) -> String {
    b.map(|b| format!("{:.0} KiB", b as f64 / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

pub fn print_window(w: &Window) {
    let row = |k: &str, v: String| println!("  {k:<34} {v}");
    row("window", format!("{:.1} s", w.seconds));
    row(
        "down-tracks receiving / expected",
        format!("{} / {}", w.down_tracks_receiving, w.down_tracks_expected),
    );
    row(
        "packets sent by publisher",
        format!("{} ({:.0}/s)", w.packets_sent, w.publisher_packets_per_s),
    );
    row(
        "forwarded expected / received",
        format!("{} / {}", w.packets_expected, w.packets_received),
    );
    row(
        "forwarded packets/s",
        format!("{:.0}", w.forwarded_packets_per_s),
    );
    if w.packets_checked != w.packets_received {
        row(
            "decrypted and checked (sample)",
            format!("{} of {}", w.packets_checked, w.packets_received),
        );
    }
    row(
        "loss",
        format!(
            "{:.4}%  (seq gaps {}, mismatches {}, duplicates {}; received/expected shortfall {:.4}%)",
            w.loss_pct, w.seq_gaps, w.payload_mismatches, w.duplicates, w.delivery_shortfall_pct
        ),
    );
    row(
        "keyframes: requests at pub / PLIs sent / keyframes",
        format!(
            "{} / {} / {}",
            w.keyframe_requests_at_publisher, w.plis_sent_by_viewers, w.keyframes_sent
        ),
    );
    row(
        "received bitrate total / per viewer",
        format!(
            "{:.1} / {:.3} Mbit/s",
            w.received_mbps_total, w.received_mbps_per_viewer
        ),
    );
    row(
        "send→receive latency p50/p99/p99.9",
        format!(
            "{:.0} / {:.0} / {:.0} µs (max {:.0}, {} samples)",
            w.latency_us.p50,
            w.latency_us.p99,
            w.latency_us.p999,
            w.latency_us.max,
            w.latency_us.samples
        ),
    );
    row("server CPU", fmt_pct(w.server_cpu_pct));
    row(
        "server CPU per forwarded packet",
        w.server_cpu_us_per_forwarded_packet
            .map(|u| format!("{u:.2} µs"))
            .unwrap_or_else(|| "n/a".into()),
    );
    row("harness CPU", fmt_pct(w.harness_cpu_pct));
    row(
        "harness CPU per received packet",
        w.harness_cpu_us_per_received_packet
            .map(|u| format!("{u:.2} µs"))
            .unwrap_or_else(|| "n/a".into()),
    );
    row(
        "machine CPU / of it other processes",
        format!(
            "{} / {}",
            fmt_pct(w.machine_cpu_pct),
            fmt_pct(w.others_cpu_pct)
        ),
    );
}

impl BroadcastReport {
    pub fn print(&self) {
        println!(
            "\nbroadcast: 1 publisher → {} viewers on {} ({:.2} Mbit/s video @ {} fps + Opus, {})",
            self.window.viewers,
            self.sut,
            self.media.video_bitrate_bps as f64 / 1e6,
            self.media.fps,
            self.media.codec
        );
        if let Some(n) = self.lean_sample_one_in {
            println!(
                "  lean viewers: counted from RTP headers, 1 in {n} per SSRC decrypted and checked"
            );
        }
        print_window(&self.window);
        if let Some(s) = &self.server {
            s.print();
        }
        print_joins(&self.joins, "POST");
        print_memory(&self.memory);
        if let Some(r) = self.ratio_to_floor {
            println!("  {:<34} {r:.1}×", "µs per forwarded packet / floor");
        }
        print_join_errors(&self.joins);
    }
}

/// Joins that worked, the join time from `start` (POST or join message) to first media, and
/// for WHEP-style joins the signalling time and a join storm's rates.
pub fn print_joins(j: &Joins, start: &str) {
    let row = |k: String, v: String| println!("  {k:<34} {v}");
    let pct = |p: &Percentiles| {
        format!(
            "{:.0} / {:.0} / {:.0} ms (max {:.0}, {} samples)",
            p.p50, p.p95, p.p99, p.max, p.samples
        )
    };
    row(
        "joins ok / attempted".into(),
        format!("{} / {}", j.attempted - j.failed, j.attempted),
    );
    if let Some(s) = &j.storm {
        row(
            "join storm: offered / started / ok".into(),
            format!(
                "{:.0} / {:.0} / {:.0} joins/s (first POST → last answer {:.2} s)",
                s.offered_per_s, s.started_per_s, s.achieved_per_s, s.seconds
            ),
        );
    }
    if j.signal_ms.samples > 0 {
        row(format!("{start}→answer p50/p95/p99"), pct(&j.signal_ms));
    }
    row(format!("{start}→first media p50/p95/p99"), pct(&j.join_ms));
}

pub fn print_join_errors(j: &Joins) {
    for e in &j.first_errors {
        println!("  join error: {e}");
    }
}

/// Server RSS (baseline, per participant) and the harness's RSS.
pub fn print_memory(m: &Memory) {
    let row = |k: &str, v: String| println!("  {k:<34} {v}");
    row(
        "server RSS (baseline) / per participant",
        format!(
            "{} ({}) / {}",
            mib(m.server_rss_bytes),
            mib(m.server_rss_baseline_bytes),
            kib(m.server_rss_per_participant_bytes)
        ),
    );
    row("harness RSS", mib(m.harness_rss_bytes));
}

/// Writes any report as pretty JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_picks() {
        let mut v: Vec<u64> = (1..=1000).collect();
        let p = percentiles(&mut v);
        assert_eq!(p.samples, 1000);
        assert_eq!(p.p50, 501.0);
        assert_eq!(p.p99, 990.0);
        assert_eq!(p.max, 1000.0);
        assert_eq!(percentiles(&mut []).p50, 0.0);
    }
}
