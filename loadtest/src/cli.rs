//! The command line, and running what it asks for.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use huddle_client::LeanReceive;

use crate::floor::{self, Floor, FloorLimits};
use crate::janus::JanusProcess;
use crate::report::{BroadcastReport, write_json};
use crate::scenario::ramp::{RampOptions, RampReport};
use crate::scenario::{MediaShape, RunOptions, broadcast, meeting, ramp};
use crate::sut::{ExternalHuddle, HuddleProcess, Sut, default_huddle_bin};

/// Load tests for huddle with real WebRTC peers (WHIP publishers, WHEP viewers) on loopback.
#[derive(Debug, Parser)]
#[command(name = "huddle-loadtest", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub command: Cmd,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The huddle binary to start (default: `huddle` next to this executable, i.e.
    /// target/release/huddle, else target/debug/huddle).
    #[arg(long, global = true)]
    pub huddle_bin: Option<PathBuf>,
    /// Drive a server that is already running (`http://host:port`) instead of starting one.
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// With --url: the server's pid, so its CPU and memory can be measured.
    #[arg(long, global = true)]
    pub server_pid: Option<u32>,
    /// Pin the started server to this CPU (`taskset -c`).
    #[arg(long, global = true)]
    pub pin_server: Option<usize>,
    /// One more argument for the started server, e.g. `--server-arg=--workers=1`; repeatable.
    #[arg(long, global = true, allow_hyphen_values = true)]
    pub server_arg: Vec<String>,
    /// Pin the harness (all its threads) to this CPU.
    #[arg(long, global = true)]
    pub pin_harness: Option<usize>,
    /// Worker threads of the harness's tokio runtime (all peers share them).
    #[arg(long, global = true, default_value_t = 1)]
    pub harness_threads: usize,
    /// Write the report as JSON to this file.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// Video bitrate in bit/s (suffixes k and M allowed: 1.5M).
    #[arg(long, global = true, default_value = "1.5M", value_parser = parse_bitrate)]
    pub bitrate: u64,
    /// Video frames per second.
    #[arg(long, global = true, default_value_t = 30)]
    pub fps: u32,
    /// Seconds between periodic keyframes.
    #[arg(long, global = true, default_value_t = 2.0)]
    pub keyframe_secs: f64,
    #[arg(long, global = true, value_enum, default_value_t = Codec::Vp8)]
    pub codec: Codec,
    /// Length of the measurement window, seconds.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub seconds: f64,
    /// WHEP POSTs in flight at once.
    #[arg(long, global = true, default_value_t = 16)]
    pub connect_concurrency: usize,
    /// No progress line.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Lean viewers: count every packet from its cleartext RTP header, decrypt and check
    /// only one in --lean-sample per SSRC; no NACK negotiated.
    #[arg(long, global = true)]
    pub lean_viewers: bool,
    /// With --lean-viewers: decrypt and check one packet in this many per SSRC.
    #[arg(long, global = true, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub lean_sample: u32,
    /// With --lean-viewers: once media flows, each viewer reads its socket every this many
    /// ms (recvmmsg, kernel receive timestamps); 0 reads on every wake-up.
    #[arg(long, global = true, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub lean_read_ms: u64,
    /// The janus binary for --sut janus (default: `janus` on PATH; Debian package `janus`).
    #[arg(long, global = true)]
    pub janus_bin: Option<PathBuf>,
}

/// A system under test the harness can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SutKind {
    /// huddle (the binary next to this one, or --huddle-bin; --url for a running one).
    Huddle,
    /// huddle started with `--bandwidth-estimation false`: no estimator, layer allocation or
    /// pacing per viewer; next to `huddle`, what those cost per forwarded packet.
    HuddleNoBwe,
    /// Janus VideoRoom (Debian's janus, started on loopback with its own config).
    Janus,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Codec {
    Vp8,
    H264,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WithScenario {
    Broadcast,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// One publisher → N viewers.
    Broadcast {
        #[arg(long, default_value_t = 50)]
        viewers: usize,
        /// Systems under test, comma-separated (`huddle,janus`): each round runs the
        /// broadcast on each of them in turn, each freshly started, with the same peers.
        #[arg(long, value_delimiter = ',', default_value = "huddle")]
        sut: Vec<SutKind>,
        /// How many times to go through --sut (huddle, janus, huddle, janus, … for 2).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
        rounds: u32,
        /// Join storm: viewers join at this many per second, paced, instead of
        /// --connect-concurrency at a time.
        #[arg(long, value_parser = parse_rate)]
        join_rate: Option<f64>,
    },
    /// One publisher on node A of a three-node cluster (a `redis-server` started here,
    /// `--cascade-after 1`), N viewers on nodes B and C, which pull the room once each; then
    /// the same on one node. Reports each node's CPU and the relay's cost per forwarded packet.
    Cascade {
        #[arg(long, default_value_t = 20)]
        viewers: usize,
    },
    /// Add viewers step by step until loss > --max-loss, the server saturates one core, or
    /// the harness cannot keep up; report the knee.
    Ramp {
        #[arg(long, default_value_t = 50)]
        step: usize,
        #[arg(long, default_value_t = 10.0)]
        step_seconds: f64,
        #[arg(long, default_value_t = 8)]
        max_steps: usize,
        /// Loss limit, percent.
        #[arg(long, default_value_t = 0.5)]
        max_loss: f64,
        /// Received-vs-expected shortfall limit, percent.
        #[arg(long, default_value_t = 2.0)]
        max_shortfall: f64,
        /// Median latency limit, ms.
        #[arg(long, default_value_t = 100.0)]
        max_p50_latency_ms: f64,
        /// Server CPU limit, percent of one core.
        #[arg(long, default_value_t = 95.0)]
        max_server_cpu: f64,
        /// Write an SVG plot of the steps here.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Measure the per-packet floor (AES-128-GCM seal + sendmmsg); optionally run a scenario
    /// and express huddle's CPU per forwarded packet as a multiple of it.
    Floor {
        #[arg(long)]
        with: Option<WithScenario>,
        #[arg(long, default_value_t = 100)]
        viewers: usize,
        /// Most packets per floor loop.
        #[arg(long, default_value_t = 2_000_000)]
        max_packets: u64,
        /// Longest time per floor loop, seconds.
        #[arg(long, default_value_t = 3.0)]
        max_seconds: f64,
    },
    /// R rooms × N participants over the room WebSocket, each publishing audio + video and
    /// receiving all others of its room.
    Meeting {
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        #[arg(long, default_value_t = 4)]
        participants: usize,
    },
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("rate {s:?}: {e}"))?;
    if !(v > 0.0 && v <= 100_000.0) {
        return Err(format!("rate {s:?} must be in (0, 100000]"));
    }
    Ok(v)
}

fn parse_bitrate(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1e3),
        Some('m' | 'M') => (&s[..s.len() - 1], 1e6),
        _ => (s, 1.0),
    };
    let v: f64 = num.parse().map_err(|e| format!("bitrate {s:?}: {e}"))?;
    if v.is_nan() || v <= 0.0 {
        return Err(format!("bitrate {s:?} must be positive"));
    }
    Ok((v * mul) as u64)
}

impl Common {
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            media: MediaShape {
                video_bitrate_bps: self.bitrate,
                fps: self.fps,
                keyframe_interval_s: self.keyframe_secs,
                codec: match self.codec {
                    Codec::Vp8 => "vp8",
                    Codec::H264 => "h264",
                },
            },
            seconds: self.seconds,
            progress: !self.quiet,
            connect_concurrency: self.connect_concurrency,
            settle_timeout: Duration::from_secs(15),
            harness_cpus: if self.pin_harness.is_some() {
                1.0
            } else {
                self.harness_threads as f64
            },
            lean: self.lean_viewers.then_some(LeanReceive {
                sample_one_in: self.lean_sample,
                read_interval: Duration::from_millis(self.lean_read_ms),
            }),
            join_rate: None,
        }
    }

    /// Starts `kind` (huddle may also be `--url`).
    pub async fn start(&self, kind: SutKind) -> Result<Box<dyn Sut>, String> {
        match kind {
            SutKind::Huddle => self.sut().await,
            SutKind::HuddleNoBwe => {
                if self.url.is_some() {
                    return Err("--sut huddle-no-bwe starts its own huddle: not with --url".into());
                }
                let extra = ["--bandwidth-estimation".to_owned(), "false".to_owned()];
                Ok(Box::new(
                    self.huddle_process(&extra).await?.named("huddle-no-bwe"),
                ))
            }
            SutKind::Janus => {
                if self.pin_server.is_some() && which_taskset().is_none() {
                    return Err("--pin-server needs taskset (util-linux)".into());
                }
                let j = JanusProcess::start(self.janus_bin.as_deref(), self.pin_server)
                    .await
                    .map_err(|e| format!("janus: {e}"))?;
                eprintln!(
                    "started janus (pid {}{})",
                    j.pid().unwrap_or(0),
                    self.pin_server
                        .map(|c| format!(", pinned to CPU {c}"))
                        .unwrap_or_default()
                );
                Ok(Box::new(j))
            }
        }
    }

    /// Starts huddle, or wraps `--url`.
    pub async fn sut(&self) -> Result<Box<dyn Sut>, String> {
        if let Some(url) = &self.url {
            return Ok(Box::new(ExternalHuddle::new(url, self.server_pid)));
        }
        Ok(Box::new(self.huddle_process(&[]).await?))
    }

    /// Starts the huddle binary with --server-arg and `extra`.
    async fn huddle_process(&self, extra: &[String]) -> Result<HuddleProcess, String> {
        let bin = match &self.huddle_bin {
            Some(b) => b.clone(),
            None => default_huddle_bin().ok_or(
                "no huddle binary next to this executable; build it (cargo build --release --bin huddle) or pass --huddle-bin",
            )?,
        };
        if self.pin_server.is_some() && which_taskset().is_none() {
            return Err("--pin-server needs taskset (util-linux)".into());
        }
        let args: Vec<String> = self.server_arg.iter().chain(extra).cloned().collect();
        let p = HuddleProcess::start(&bin, self.pin_server, &args).await?;
        eprintln!(
            "started {} at {} (pid {}{})",
            bin.display(),
            p.base_url(),
            p.pid().unwrap_or(0),
            self.pin_server
                .map(|c| format!(", pinned to CPU {c}"))
                .unwrap_or_default()
        );
        Ok(p)
    }
}

fn which_taskset() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join("taskset"))
        .find(|p| p.is_file())
}

#[derive(Serialize)]
struct FloorJson<'a> {
    floor: &'a Floor,
    #[serde(skip_serializing_if = "Option::is_none")]
    broadcast: Option<&'a BroadcastReport>,
}

/// Runs the command. Blocking parts (the floor) run on a blocking thread.
pub async fn execute(cli: Cli) -> Result<(), String> {
    let c = &cli.common;
    let opts = c.run_options();
    match &cli.command {
        Cmd::Broadcast {
            viewers,
            sut,
            rounds,
            join_rate,
        } => {
            let opts = RunOptions {
                join_rate: *join_rate,
                ..opts
            };
            if let ([only], 1) = (sut.as_slice(), *rounds) {
                let mut s = c.start(*only).await?;
                let r = broadcast::run(s.as_ref(), *viewers, &opts, c.harness_threads).await;
                s.stop();
                let r = r?;
                r.print();
                if let Some(p) = &c.json {
                    write_json(p, &r)?;
                }
            } else {
                let cmp = crate::compare::run(c, sut, *rounds, *viewers, &opts).await?;
                cmp.print();
                if let Some(p) = &c.json {
                    write_json(p, &cmp)?;
                }
            }
        }
        Cmd::Cascade { viewers } => {
            let bin = match &c.huddle_bin {
                Some(b) => b.clone(),
                None => default_huddle_bin().ok_or("no huddle binary; pass --huddle-bin")?,
            };
            let r = crate::scenario::cascade::run(&bin, *viewers, &opts, c.harness_threads).await?;
            r.print();
            if let Some(p) = &c.json {
                write_json(p, &r)?;
            }
        }
        Cmd::Ramp {
            step,
            step_seconds,
            max_steps,
            max_loss,
            max_shortfall,
            max_p50_latency_ms,
            max_server_cpu,
            plot,
        } => {
            let ro = RampOptions {
                step: *step,
                step_seconds: *step_seconds,
                max_steps: *max_steps,
                max_loss_pct: *max_loss,
                max_shortfall_pct: *max_shortfall,
                max_server_cpu_pct: *max_server_cpu,
                max_p50_latency_ms: *max_p50_latency_ms,
            };
            let mut sut = c.sut().await?;
            let r: Result<RampReport, String> =
                ramp::run(sut.as_ref(), &ro, &opts, c.harness_threads).await;
            sut.stop();
            let r = r?;
            r.print();
            if let Some(p) = &c.json {
                write_json(p, &r)?;
            }
            if let Some(p) = plot {
                crate::plot::ramp_svg(&r, p)?;
                eprintln!("plot written to {}", p.display());
            }
        }
        Cmd::Floor {
            with,
            viewers,
            max_packets,
            max_seconds,
        } => {
            let limits = FloorLimits {
                max_packets: *max_packets,
                max_time: Duration::from_secs_f64(*max_seconds),
            };
            let f = tokio::task::spawn_blocking(move || floor::measure(limits))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("floor: {e}"))?;
            f.print();
            let mut b = None;
            if let Some(WithScenario::Broadcast) = with {
                let mut sut = c.sut().await?;
                let r = broadcast::run(sut.as_ref(), *viewers, &opts, c.harness_threads).await;
                sut.stop();
                let mut r = r?;
                r.ratio_to_floor = r
                    .window
                    .server_cpu_us_per_forwarded_packet
                    .map(|us| f.ratio(us));
                r.print();
                match (
                    r.window.server_cpu_us_per_forwarded_packet,
                    r.ratio_to_floor,
                ) {
                    (Some(us), Some(ratio)) => println!(
                        "\nhuddle: {us:.2} µs CPU per forwarded packet = {ratio:.1}× the floor of {:.0} ns",
                        f.floor_ns_per_packet
                    ),
                    _ => println!("\nhuddle's CPU was not measured (no server pid)"),
                }
                b = Some(r);
            }
            if let Some(p) = &c.json {
                write_json(
                    p,
                    &FloorJson {
                        floor: &f,
                        broadcast: b.as_ref(),
                    },
                )?;
            }
        }
        Cmd::Meeting {
            rooms,
            participants,
        } => {
            let mut sut = c.sut().await?;
            let r = meeting::run(
                sut.as_ref(),
                *rooms,
                *participants,
                &opts,
                c.harness_threads,
            )
            .await;
            sut.stop();
            let r = r?;
            r.print();
            if let Some(p) = &c.json {
                write_json(p, &r)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates() {
        assert_eq!(parse_bitrate("1.5M").unwrap(), 1_500_000);
        assert_eq!(parse_bitrate("800k").unwrap(), 800_000);
        assert_eq!(parse_bitrate("64000").unwrap(), 64_000);
        assert!(parse_bitrate("-1").is_err());
    }

    #[test]
    fn parses() {
        let cli = Cli::try_parse_from([
            "huddle-loadtest",
            "ramp",
            "--step",
            "25",
            "--pin-server",
            "0",
            "--plot",
            "x.svg",
        ])
        .unwrap();
        assert!(matches!(cli.command, Cmd::Ramp { step: 25, .. }));
        assert_eq!(cli.common.pin_server, Some(0));
    }
}
