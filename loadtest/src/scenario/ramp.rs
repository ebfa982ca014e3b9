//! `ramp`: one publisher, viewers added `step` at a time, one window per step, until loss
//! exceeds the limit, the server saturates one core, or the harness cannot keep up.

use serde::Serialize;

use super::{Fleet, Joins, Memory, RunOptions, Window, fmt_pct, measure};
use crate::procstat::rss_of;
use crate::sut::Sut;

/// Ramp parameters.
#[derive(Clone, Debug, Serialize)]
pub struct RampOptions {
    pub step: usize,
    pub step_seconds: f64,
    pub max_steps: usize,
    /// Stop when a window's loss exceeds this, in percent.
    pub max_loss_pct: f64,
    /// Stop when received/expected falls short by more than this, in percent (looser than
    /// `max_loss_pct`: it carries the packets in flight at the window's edges).
    pub max_shortfall_pct: f64,
    /// Stop when the server uses this much of one core, in percent.
    pub max_server_cpu_pct: f64,
    /// Stop when median send→receive latency exceeds this (queues building up), ms.
    pub max_p50_latency_ms: f64,
}

impl Default for RampOptions {
    fn default() -> Self {
        RampOptions {
            step: 50,
            step_seconds: 10.0,
            max_steps: 8,
            max_loss_pct: 0.5,
            max_shortfall_pct: 2.0,
            max_server_cpu_pct: 95.0,
            max_p50_latency_ms: 100.0,
        }
    }
}

/// One step of the ramp.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub subscribers: usize,
    pub window: Window,
    /// The server's own figures for the step's window (huddle only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::server_window::ServerWindow>,
    pub server_rss_bytes: Option<u64>,
    /// Why the ramp stopped after this step, if it did.
    pub stop: Option<String>,
}

/// A finished ramp.
#[derive(Clone, Debug, Serialize)]
pub struct RampReport {
    pub scenario: &'static str,
    pub sut: String,
    pub media: super::MediaShape,
    pub ramp: RampOptions,
    pub harness_threads: usize,
    pub steps: Vec<Step>,
    /// Most subscribers at which every limit still held (None if the first step failed).
    pub knee_subscribers: Option<usize>,
    /// Why the ramp stopped ("max steps" if no limit was reached).
    pub stop_reason: String,
    pub joins: Joins,
    pub memory: Memory,
}

fn check(w: &Window, r: &RampOptions, opts: &RunOptions, best_pub_rate: f64) -> Option<String> {
    let mut why: Vec<String> = Vec::new();
    if w.loss_pct > r.max_loss_pct {
        why.push(format!("loss {:.3}% > {}%", w.loss_pct, r.max_loss_pct));
    }
    if w.delivery_shortfall_pct > r.max_shortfall_pct {
        why.push(format!(
            "received {:.3}% fewer packets than expected (> {}%)",
            w.delivery_shortfall_pct, r.max_shortfall_pct
        ));
    }
    if w.latency_us.p50 > r.max_p50_latency_ms * 1000.0 {
        why.push(format!(
            "queues building: p50 latency {:.0} ms > {} ms",
            w.latency_us.p50 / 1000.0,
            r.max_p50_latency_ms
        ));
    }
    if w.server_cpu_pct.is_some_and(|c| c >= r.max_server_cpu_pct) {
        why.push(format!(
            "server CPU {} ≥ {}% of one core",
            fmt_pct(w.server_cpu_pct),
            r.max_server_cpu_pct
        ));
    }
    let harness_limit = 95.0 * opts.harness_cpus;
    if w.harness_cpu_pct.is_some_and(|c| c >= harness_limit) {
        why.push(format!(
            "harness saturated: CPU {} ≥ {harness_limit:.0}%",
            fmt_pct(w.harness_cpu_pct)
        ));
    }
    if best_pub_rate > 0.0 && w.publisher_packets_per_s < 0.95 * best_pub_rate {
        why.push(format!(
            "harness cannot keep up: publisher sends {:.0} pkt/s, was {best_pub_rate:.0}",
            w.publisher_packets_per_s
        ));
    }
    if w.down_tracks_receiving < w.down_tracks_expected {
        why.push(format!(
            "only {}/{} down-tracks receiving",
            w.down_tracks_receiving, w.down_tracks_expected
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

pub async fn run(
    sut: &dyn Sut,
    ramp: &RampOptions,
    opts: &RunOptions,
    harness_threads: usize,
) -> Result<RampReport, String> {
    let pid = sut.pid();
    let baseline = pid.and_then(rss_of);
    let room = format!("loadtest-ramp-{}", std::process::id());
    let mut fleet = Fleet::publish(sut, &room, &opts.media).await?;
    let mut steps: Vec<Step> = Vec::new();
    let mut knee = None;
    let mut best_pub_rate: f64 = 0.0;
    let mut stop_reason = "max steps reached".to_owned();
    for i in 0..ramp.max_steps {
        let before = fleet.join_failures.len();
        fleet.add_viewers(sut, ramp.step, opts).await;
        let subscribers = fleet.viewer_count();
        let settled = fleet.settle(opts.settle_timeout).await;
        tokio::time::sleep(opts.settle_pause()).await;
        let label = format!("ramp {subscribers}");
        let counters = crate::server_window::open(sut).await;
        let window = measure(&fleet, pid, ramp.step_seconds, opts.progress, &label).await;
        let server = crate::server_window::close(sut, counters).await;
        let mut stop = check(&window, ramp, opts, best_pub_rate);
        if stop.is_none() && fleet.join_failures.len() > before {
            stop = Some(format!(
                "{} WHEP joins failed: {}",
                fleet.join_failures.len() - before,
                fleet.join_failures.last().cloned().unwrap_or_default()
            ));
        }
        if stop.is_none() && !settled {
            stop = Some("new viewers did not all receive media in time".into());
        }
        best_pub_rate = best_pub_rate.max(window.publisher_packets_per_s);
        eprintln!(
            "step {}: {subscribers} subscribers, {:.0} fwd pkt/s, loss {:.3}%, server CPU {}, {:.2} µs/pkt, harness CPU {}{}",
            i + 1,
            window.forwarded_packets_per_s,
            window.loss_pct,
            fmt_pct(window.server_cpu_pct),
            window
                .server_cpu_us_per_forwarded_packet
                .unwrap_or(f64::NAN),
            fmt_pct(window.harness_cpu_pct),
            stop.as_deref()
                .map(|s| format!(" → stop: {s}"))
                .unwrap_or_default()
        );
        let done = stop.is_some();
        if let Some(s) = &stop {
            stop_reason = s.clone();
        } else {
            knee = Some(subscribers);
        }
        steps.push(Step {
            subscribers,
            window,
            server,
            server_rss_bytes: pid.and_then(rss_of),
            stop,
        });
        if done {
            break;
        }
    }
    let joins = Joins::of(&fleet);
    let memory = Memory::of(pid, baseline, fleet.viewer_count() + 1);
    fleet.close(sut).await;
    Ok(RampReport {
        scenario: "ramp",
        sut: sut.name().to_owned(),
        media: opts.media.clone(),
        ramp: ramp.clone(),
        harness_threads,
        steps,
        knee_subscribers: knee,
        stop_reason,
        joins,
        memory,
    })
}

impl RampReport {
    pub fn print(&self) {
        println!(
            "\nramp on {}: +{} viewers every {:.0} s (1 publisher, {:.2} Mbit/s video @ {} fps + Opus)",
            self.sut,
            self.ramp.step,
            self.ramp.step_seconds,
            self.media.video_bitrate_bps as f64 / 1e6,
            self.media.fps
        );
        println!(
            "  {:>6} {:>8} {:>11} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}",
            "subs",
            "tracks",
            "fwd pkt/s",
            "loss %",
            "short %",
            "srv CPU",
            "µs/pkt",
            "lat p50",
            "lat p99",
            "res p99",
            "harn CPU",
            "others"
        );
        for s in &self.steps {
            let w = &s.window;
            println!(
                "  {:>6} {:>8} {:>11.0} {:>8.3} {:>9.3} {:>8} {:>9.2} {:>9.0} {:>9.0} {:>9} {:>10} {:>8}",
                s.subscribers,
                format!("{}/{}", w.down_tracks_receiving, w.down_tracks_expected),
                w.forwarded_packets_per_s,
                w.loss_pct,
                w.delivery_shortfall_pct,
                fmt_pct(w.server_cpu_pct),
                w.server_cpu_us_per_forwarded_packet.unwrap_or(f64::NAN),
                w.latency_us.p50,
                w.latency_us.p99,
                s.server
                    .as_ref()
                    .map_or("n/a".into(), |r| r.residence_us.p99.to_string()),
                fmt_pct(w.harness_cpu_pct),
                fmt_pct(w.others_cpu_pct),
            );
        }
        match self.knee_subscribers {
            Some(k) => println!("  knee: {k} subscribers (stopped: {})", self.stop_reason),
            None => println!(
                "  knee: below the first step (stopped: {})",
                self.stop_reason
            ),
        }
        println!(
            "  join time p50/p95: {:.0} / {:.0} ms; server RSS per participant: {}",
            self.joins.join_ms.p50,
            self.joins.join_ms.p95,
            self.memory
                .server_rss_per_participant_bytes
                .map(|b| format!("{:.0} KiB", b as f64 / 1024.0))
                .unwrap_or_else(|| "n/a".into())
        );
    }
}
