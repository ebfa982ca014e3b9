//! `broadcast --sut huddle,janus --rounds N`: the same broadcast on several SFUs, taking
//! turns (huddle, Janus, huddle, Janus, …), each freshly started and measured the same way,
//! so their CPU per forwarded packet comes from one invocation on the same machine state.

use serde::Serialize;

use crate::cli::{Common, SutKind};
use crate::report::BroadcastReport;
use crate::scenario::{RunOptions, broadcast, fmt_pct};

/// Every run, in order, and the per-SUT means.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub scenario: &'static str,
    pub viewers: usize,
    pub rounds: u32,
    pub runs: Vec<BroadcastReport>,
    pub summary: Vec<SutSummary>,
    /// Runs that failed: (SUT, round, why).
    pub failures: Vec<(String, u32, String)>,
}

/// One SUT over all its runs.
#[derive(Clone, Debug, Serialize)]
pub struct SutSummary {
    pub sut: String,
    pub runs: usize,
    pub mean_server_cpu_us_per_forwarded_packet: Option<f64>,
    pub mean_harness_cpu_us_per_received_packet: Option<f64>,
    pub mean_loss_pct: f64,
    pub mean_shortfall_pct: f64,
}

fn mean(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = v.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Runs `rounds` × `kinds` broadcasts, one after another, each SUT started before its run
/// and stopped after it.
pub async fn run(
    c: &Common,
    kinds: &[SutKind],
    rounds: u32,
    viewers: usize,
    opts: &RunOptions,
) -> Result<Comparison, String> {
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for round in 1..=rounds {
        for &kind in kinds {
            eprintln!("round {round}/{rounds}: {kind:?}, {viewers} viewers");
            let mut sut = match c.start(kind).await {
                Ok(s) => s,
                Err(e) => {
                    failures.push((format!("{kind:?}"), round, e));
                    continue;
                }
            };
            let r = broadcast::run(sut.as_ref(), viewers, opts, c.harness_threads).await;
            sut.stop();
            match r {
                Ok(r) => {
                    if !c.quiet {
                        r.print();
                    }
                    runs.push(r);
                }
                Err(e) => failures.push((format!("{kind:?}"), round, e)),
            }
        }
    }
    if runs.is_empty() {
        return Err(format!("every run failed: {failures:?}"));
    }
    let mut names: Vec<String> = runs.iter().map(|r| r.sut.clone()).collect();
    names.sort();
    names.dedup();
    let summary = names
        .into_iter()
        .map(|sut| {
            let mine: Vec<&BroadcastReport> = runs.iter().filter(|r| r.sut == sut).collect();
            let n = mine.len().max(1) as f64;
            SutSummary {
                runs: mine.len(),
                mean_server_cpu_us_per_forwarded_packet: mean(
                    mine.iter()
                        .map(|r| r.window.server_cpu_us_per_forwarded_packet),
                ),
                mean_harness_cpu_us_per_received_packet: mean(
                    mine.iter()
                        .map(|r| r.window.harness_cpu_us_per_received_packet),
                ),
                mean_loss_pct: mine.iter().map(|r| r.window.loss_pct).sum::<f64>() / n,
                mean_shortfall_pct: mine
                    .iter()
                    .map(|r| r.window.delivery_shortfall_pct)
                    .sum::<f64>()
                    / n,
                sut,
            }
        })
        .collect();
    Ok(Comparison {
        scenario: "broadcast",
        viewers,
        rounds,
        runs,
        summary,
        failures,
    })
}

fn us(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into())
}

impl Comparison {
    pub fn print(&self) {
        println!(
            "\nbroadcast, 1 publisher → {} viewers, {} round(s):",
            self.viewers, self.rounds
        );
        println!(
            "  {:<13} {:>11} {:>9} {:>9} {:>10} {:>8} {:>13} {:>9} {:>13} {:>7} {:>12}",
            "sut",
            "down-tracks",
            "fwd pkt/s",
            "loss %",
            "shortfall",
            "srv CPU",
            "µs/fwd pkt",
            "harn CPU",
            "µs/recv pkt",
            "others",
            "checked"
        );
        for r in &self.runs {
            let w = &r.window;
            println!(
                "  {:<13} {:>11} {:>9.0} {:>9.4} {:>9.2}% {:>8} {:>13} {:>9} {:>13} {:>7} {:>12}",
                r.sut,
                format!("{}/{}", w.down_tracks_receiving, w.down_tracks_expected),
                w.forwarded_packets_per_s,
                w.loss_pct,
                w.delivery_shortfall_pct,
                fmt_pct(w.server_cpu_pct),
                us(w.server_cpu_us_per_forwarded_packet),
                fmt_pct(w.harness_cpu_pct),
                us(w.harness_cpu_us_per_received_packet),
                fmt_pct(w.others_cpu_pct),
                format!(
                    "{}/{}",
                    w.packets_checked - w.payload_mismatches,
                    w.packets_checked
                ),
            );
        }
        println!("  mean CPU per forwarded packet:");
        for s in &self.summary {
            println!(
                "    {:<13} {} µs over {} run(s), loss {:.4}%",
                s.sut,
                us(s.mean_server_cpu_us_per_forwarded_packet),
                s.runs,
                s.mean_loss_pct
            );
        }
        if let [a, b] = &self.summary[..]
            && let (Some(x), Some(y)) = (
                a.mean_server_cpu_us_per_forwarded_packet,
                b.mean_server_cpu_us_per_forwarded_packet,
            )
            && x > 0.0
        {
            println!("    {} / {} = {:.2}×", b.sut, a.sut, y / x);
        }
        for (sut, round, e) in &self.failures {
            println!("  failed: {sut} round {round}: {e}");
        }
    }
}
