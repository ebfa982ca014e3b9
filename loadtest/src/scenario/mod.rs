//! What the scenarios share: a fleet of real peers, snapshots of their counters, and the
//! measurement window that turns two snapshots into figures.

pub mod broadcast;
pub mod cascade;
pub mod meeting;
pub mod ramp;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use huddle_client::{
    ClientOptions, LeanReceive, Publisher, PublisherStats, VideoCodec, Viewer, ViewerStats,
};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::procstat::{CpuSample, rss_bytes, rss_of};
use crate::report::{Percentiles, percentiles};
use crate::sut::Sut;

/// The shape of the synthetic media.
#[derive(Clone, Debug, Serialize)]
pub struct MediaShape {
    pub video_bitrate_bps: u64,
    pub fps: u32,
    pub keyframe_interval_s: f64,
    pub codec: &'static str,
}

impl MediaShape {
    fn codec(&self) -> VideoCodec {
        if self.codec == "h264" {
            VideoCodec::H264
        } else {
            VideoCodec::Vp8
        }
    }

    pub fn publisher_options(&self) -> ClientOptions {
        ClientOptions {
            video: Some(self.codec()),
            audio: true,
            video_bitrate_bps: self.video_bitrate_bps,
            fps: self.fps,
            keyframe_interval: Duration::from_secs_f64(self.keyframe_interval_s),
            ..ClientOptions::default()
        }
    }

    pub fn viewer_options(&self) -> ClientOptions {
        ClientOptions {
            video: Some(self.codec()),
            audio: true,
            request_keyframes: true,
            ..ClientOptions::default()
        }
    }
}

impl Default for MediaShape {
    fn default() -> Self {
        MediaShape {
            video_bitrate_bps: 1_500_000,
            fps: 30,
            keyframe_interval_s: 2.0,
            codec: "vp8",
        }
    }
}

/// How a scenario runs, independent of which one.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub media: MediaShape,
    /// Length of each measurement window.
    pub seconds: f64,
    /// Print a progress line once a second (to stderr).
    pub progress: bool,
    /// WHEP POSTs in flight at once.
    pub connect_concurrency: usize,
    /// Longest wait for new viewers to receive their first media.
    pub settle_timeout: Duration,
    /// CPUs the harness may use (for its saturation check): 100% × this = all of them.
    pub harness_cpus: f64,
    /// Lean viewers: count from RTP headers, decrypt and check a sample.
    pub lean: Option<LeanReceive>,
    /// Join storm: viewers join at this many per second (paced), not `connect_concurrency`
    /// at a time.
    pub join_rate: Option<f64>,
}

impl RunOptions {
    /// The pause between "every viewer receives" and the measurement window: join-time
    /// keyframe requests and bursts pass, and lean viewers switch to reading on their tick
    /// (after [`huddle_client::LEAN_SETTLE`]) before the window opens, so both of its edges
    /// see the same read backlog.
    pub fn settle_pause(&self) -> Duration {
        let pause = Duration::from_millis(500);
        match self.lean {
            Some(l) if !l.read_interval.is_zero() => {
                pause.max(huddle_client::LEAN_SETTLE + l.read_interval * 2)
            }
            _ => pause,
        }
    }

    /// What each viewer is started with.
    pub fn viewer_options(&self) -> ClientOptions {
        ClientOptions {
            lean: self.lean,
            ..self.media.viewer_options()
        }
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            media: MediaShape::default(),
            seconds: 10.0,
            progress: false,
            connect_concurrency: 16,
            settle_timeout: Duration::from_secs(15),
            harness_cpus: 1.0,
            lean: None,
            join_rate: None,
        }
    }
}

/// One viewer and when its join (WHEP POST) started.
#[derive(Debug)]
struct Member {
    viewer: Viewer,
    post_at: Instant,
}

/// Joins at a paced rate: what was asked and what the harness and SUT achieved.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Storm {
    /// Joins per second asked for (`--join-rate`).
    pub offered_per_s: f64,
    /// Joins started per second (POSTs sent: paced by the harness).
    pub started_per_s: f64,
    /// Successful joins ÷ (last answer − first POST).
    pub achieved_per_s: f64,
    /// First POST → last answer, seconds.
    pub seconds: f64,
}

/// One room's peers: a publisher and its viewers.
#[derive(Debug)]
pub struct Fleet {
    pub room: String,
    publisher: Option<Publisher>,
    viewers: Vec<Member>,
    pub join_failures: Vec<String>,
    /// Set by [`Fleet::add_viewers_paced`].
    pub storm: Option<Storm>,
}

/// Longest one viewer's join may take (each HTTP request has its own, shorter timeout).
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Most joins in flight during a paced storm.
const STORM_MAX_IN_FLIGHT: usize = 2048;

/// One viewer's join, bounded by [`JOIN_TIMEOUT`].
async fn join(view: crate::sut::SutFuture<Viewer>, post_at: Instant) -> Result<Member, String> {
    match tokio::time::timeout(JOIN_TIMEOUT, view).await {
        Ok(Ok(viewer)) => Ok(Member { viewer, post_at }),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("join took over {JOIN_TIMEOUT:?}")),
    }
}

impl Fleet {
    /// Publishes into `room` and waits until the publisher is connected.
    pub async fn publish(sut: &dyn Sut, room: &str, media: &MediaShape) -> Result<Fleet, String> {
        huddle_client::ensure_crypto_provider();
        let publisher = sut
            .publish(room, media.publisher_options())
            .await
            .map_err(|e| format!("publish to {room} on {}: {e}", sut.name()))?;
        publisher
            .wait_connected(Duration::from_secs(10))
            .await
            .map_err(|e| format!("publisher not connected: {e}"))?;
        Ok(Fleet {
            room: room.to_owned(),
            publisher: Some(publisher),
            viewers: Vec::new(),
            join_failures: Vec::new(),
            storm: None,
        })
    }

    pub fn viewer_count(&self) -> usize {
        self.viewers.len()
    }

    /// Connects `n` more viewers, `connect_concurrency` joins at a time (or, with
    /// `join_rate`, paced: see [`Fleet::add_viewers_paced`]).
    pub async fn add_viewers(&mut self, sut: &dyn Sut, n: usize, opts: &RunOptions) {
        if let Some(rate) = opts.join_rate {
            return self.add_viewers_paced(sut, n, rate, opts).await;
        }
        let sem = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
        let mut set = JoinSet::new();
        for _ in 0..n {
            // The permit is taken before the join's future is made, so `post_at` is when
            // this viewer's signalling really starts.
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let post_at = Instant::now();
            let view = sut.view(&self.room, opts.viewer_options());
            set.spawn(async move {
                let _permit = permit;
                join(view, post_at).await
            });
        }
        self.collect(set).await;
    }

    /// Connects `n` more viewers at `rate` per second: the i-th join starts at i / `rate`
    /// seconds whether or not the earlier ones are done (at most [`STORM_MAX_IN_FLIGHT`] in
    /// flight).
    pub async fn add_viewers_paced(
        &mut self,
        sut: &dyn Sut,
        n: usize,
        rate: f64,
        opts: &RunOptions,
    ) {
        let rate = rate.max(0.01);
        let sem = Arc::new(Semaphore::new(STORM_MAX_IN_FLIGHT));
        let mut set = JoinSet::new();
        let start = tokio::time::Instant::now();
        let mut first_post: Option<Instant> = None;
        let mut last_post = Instant::now();
        for i in 0..n {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let post_at = Instant::now();
            first_post.get_or_insert(post_at);
            last_post = post_at;
            let view = sut.view(&self.room, opts.viewer_options());
            set.spawn(async move {
                let _permit = permit;
                join(view, post_at).await
            });
        }
        let before = self.viewers.len();
        self.collect(set).await;
        let first = first_post.unwrap_or(last_post);
        let last_answer = self
            .viewers
            .iter()
            .skip(before)
            .map(|m| m.viewer.signaled_at())
            .max()
            .unwrap_or(first);
        let ok = self.viewers.len() - before;
        let seconds = last_answer.saturating_duration_since(first).as_secs_f64();
        let posts = last_post.saturating_duration_since(first).as_secs_f64();
        self.storm = Some(Storm {
            offered_per_s: rate,
            started_per_s: if posts > 0.0 {
                (n.saturating_sub(1)) as f64 / posts
            } else {
                0.0
            },
            achieved_per_s: if seconds > 0.0 {
                ok as f64 / seconds
            } else {
                0.0
            },
            seconds,
        });
    }

    async fn collect(&mut self, mut set: JoinSet<Result<Member, String>>) {
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(m)) => self.viewers.push(m),
                Ok(Err(e)) => self.join_failures.push(e),
                Err(e) => self.join_failures.push(e.to_string()),
            }
        }
    }

    /// Waits until every viewer has received audio and video, at most `timeout`.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.viewers.iter().all(|m| {
                let s = m.viewer.stats();
                s.audio.packets > 0 && s.video.packets > 0
            });
            if all || Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// POST → answer (signalling done) for every viewer that joined.
    pub fn signal_times_ms(&self) -> Vec<f64> {
        self.viewers
            .iter()
            .map(|m| {
                m.viewer
                    .signaled_at()
                    .saturating_duration_since(m.post_at)
                    .as_secs_f64()
                    * 1e3
            })
            .collect()
    }

    /// POST → first media packet for every viewer that has received any.
    pub fn join_times_ms(&self) -> Vec<f64> {
        self.viewers
            .iter()
            .filter_map(|m| {
                let s = m.viewer.stats();
                let first = [s.audio.first_packet_at, s.video.first_packet_at]
                    .into_iter()
                    .flatten()
                    .min()?;
                Some(first.duration_since(m.post_at).as_secs_f64() * 1e3)
            })
            .collect()
    }

    pub fn snapshot(&self, server_pid: Option<u32>) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            publisher: self
                .publisher
                .as_ref()
                .map(|p| p.stats())
                .unwrap_or_default(),
            viewers: self.viewers.iter().map(|m| m.viewer.stats()).collect(),
            server: CpuSample::take(server_pid),
            harness: CpuSample::take(None),
        }
    }

    /// Closes every peer (DELETE), 32 at a time, the publisher last; then lets the SUT
    /// release the room.
    pub async fn close(mut self, sut: &dyn Sut) {
        let sem = Arc::new(Semaphore::new(32));
        let mut set = JoinSet::new();
        for m in self.viewers.drain(..) {
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let _ = tokio::time::timeout(Duration::from_secs(5), m.viewer.close()).await;
            });
        }
        while set.join_next().await.is_some() {}
        if let Some(p) = self.publisher.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), p.close()).await;
        }
        match tokio::time::timeout(Duration::from_secs(10), sut.end_room(&self.room)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("ending room {} on {}: {e}", self.room, sut.name()),
            Err(_) => tracing::warn!("ending room {} on {} timed out", self.room, sut.name()),
        }
    }
}

/// Every peer's counters at one instant, with the server's and harness's CPU time.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at: Instant,
    pub publisher: PublisherStats,
    pub viewers: Vec<ViewerStats>,
    pub server: CpuSample,
    pub harness: CpuSample,
}

/// Figures over one measurement window (between two snapshots).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Window {
    pub seconds: f64,
    pub viewers: usize,
    pub down_tracks_expected: usize,
    pub down_tracks_receiving: usize,
    /// Packets the publisher sent (audio + video).
    pub packets_sent: u64,
    pub publisher_packets_per_s: f64,
    /// `packets_sent` × viewers: what the SFU should have forwarded.
    pub packets_expected: u64,
    /// Distinct packets the viewers received (duplicates not counted): huddle counters
    /// seen, or for lean viewers distinct RTP sequence numbers.
    pub packets_received: u64,
    /// Packets decrypted and checked byte for byte (all of them unless lean).
    pub packets_checked: u64,
    pub forwarded_packets_per_s: f64,
    /// Packets lost: RTP sequence gaps / (received + gaps), in percent. Exact (no in-flight
    /// error at the window's edges), but blind to a down-track that stopped altogether.
    pub loss_pct: f64,
    /// `1 − received / expected`, in percent: also counts silent or stalled down-tracks, but
    /// is off by the packets in flight at the window's edges (either sign).
    pub delivery_shortfall_pct: f64,
    /// RTP sequence gaps the viewers saw (unfilled).
    pub seq_gaps: u64,
    pub payload_mismatches: u64,
    pub duplicates: u64,
    /// PLI/FIR that reached the publisher, PLIs the viewers sent, keyframes sent.
    pub keyframe_requests_at_publisher: u64,
    pub plis_sent_by_viewers: u64,
    pub keyframes_sent: u64,
    /// Received payload bitrate, all viewers together and per viewer.
    pub received_mbps_total: f64,
    pub received_mbps_per_viewer: f64,
    /// One-way send → receive time (both peers' str0m + the SFU + loopback), µs.
    pub latency_us: Percentiles,
    pub server_cpu_pct: Option<f64>,
    pub server_cpu_us_per_forwarded_packet: Option<f64>,
    pub harness_cpu_pct: Option<f64>,
    /// Harness CPU time ÷ packets received (it also runs the publisher).
    pub harness_cpu_us_per_received_packet: Option<f64>,
    /// The whole machine's CPU use (percent of one core); minus server and harness, that is
    /// what other processes took from the same cores.
    pub machine_cpu_pct: Option<f64>,
    pub others_cpu_pct: Option<f64>,
}

impl Window {
    pub fn between(a: &Snapshot, b: &Snapshot) -> Window {
        let seconds = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
        let viewers = b.viewers.len();
        let sent_audio = b.publisher.audio_packets_sent - a.publisher.audio_packets_sent;
        let sent_video = b.publisher.video_packets_sent - a.publisher.video_packets_sent;
        let packets_sent = sent_audio + sent_video;
        let packets_expected = packets_sent * viewers as u64;
        let mut w = Window {
            seconds,
            viewers,
            down_tracks_expected: viewers * 2,
            packets_sent,
            publisher_packets_per_s: packets_sent as f64 / seconds,
            packets_expected,
            keyframe_requests_at_publisher: b.publisher.keyframe_requests
                - a.publisher.keyframe_requests,
            keyframes_sent: b.publisher.keyframes_sent - a.publisher.keyframes_sent,
            ..Window::default()
        };
        let mut latencies = Vec::new();
        let empty = ViewerStats::default();
        for (i, vb) in b.viewers.iter().enumerate() {
            let va = a.viewers.get(i).unwrap_or(&empty);
            w.add_down_tracks(va, vb);
            for (sa, sb) in [(&va.audio, &vb.audio), (&va.video, &vb.video)] {
                let from = sa.latency_us.len().min(sb.latency_us.len());
                latencies.extend(sb.latency_us.iter().skip(from));
            }
        }
        w.finish(&a.server, &b.server, &a.harness, &b.harness, &mut latencies);
        w
    }

    /// Adds one receiver's audio and video down-tracks (from one publisher) between two
    /// snapshots (`a` earlier); the bytes go to `received_mbps_total` until `finish`.
    pub fn add_down_tracks(&mut self, a: &ViewerStats, b: &ViewerStats) {
        for (sa, sb) in [(&a.audio, &b.audio), (&a.video, &b.video)] {
            self.packets_received += sb
                .distinct_received()
                .saturating_sub(sa.distinct_received());
            self.packets_checked += sb.samples.saturating_sub(sa.samples);
            if sb.packets > sa.packets {
                self.down_tracks_receiving += 1;
            }
            self.seq_gaps += sb.seq_gaps.saturating_sub(sa.seq_gaps);
            self.payload_mismatches += sb.payload_mismatches.saturating_sub(sa.payload_mismatches);
            self.duplicates += sb.duplicates.saturating_sub(sa.duplicates);
            // Bytes accumulate here (as Mbit) and become a rate in `finish`.
            self.received_mbps_total += sb.bytes.saturating_sub(sa.bytes) as f64 * 8.0 / 1e6;
        }
        self.plis_sent_by_viewers += b
            .keyframe_requests_sent
            .saturating_sub(a.keyframe_requests_sent);
    }

    /// Derived figures, CPU and latency percentiles, once every down-track is added.
    pub fn finish(
        &mut self,
        server_a: &CpuSample,
        server_b: &CpuSample,
        harness_a: &CpuSample,
        harness_b: &CpuSample,
        latencies: &mut [u64],
    ) {
        let w = self;
        let seconds = w.seconds;
        let packets_expected = w.packets_expected;
        w.forwarded_packets_per_s = w.packets_received as f64 / seconds;
        if packets_expected > 0 {
            w.delivery_shortfall_pct =
                (1.0 - w.packets_received as f64 / packets_expected as f64) * 100.0;
        }
        let seen = w.packets_received + w.seq_gaps;
        if seen > 0 {
            w.loss_pct = w.seq_gaps as f64 / seen as f64 * 100.0;
        }
        w.received_mbps_total /= seconds;
        w.received_mbps_per_viewer = w.received_mbps_total / w.viewers.max(1) as f64;
        w.latency_us = percentiles(latencies);
        w.server_cpu_pct = server_b.percent_since(server_a);
        w.harness_cpu_pct = harness_b.percent_since(harness_a);
        w.machine_cpu_pct = harness_b.machine_percent_since(harness_a);
        w.others_cpu_pct = w.machine_cpu_pct.map(|m| {
            (m - w.server_cpu_pct.unwrap_or(0.0) - w.harness_cpu_pct.unwrap_or(0.0)).max(0.0)
        });
        w.server_cpu_us_per_forwarded_packet = server_b
            .cpu_since(server_a)
            .filter(|_| w.packets_received > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / w.packets_received as f64);
        w.harness_cpu_us_per_received_packet = harness_b
            .cpu_since(harness_a)
            .filter(|_| w.packets_received > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / w.packets_received as f64);
    }
}

/// Measures one window of `seconds`, printing a progress line once a second.
pub async fn measure(
    fleet: &Fleet,
    server_pid: Option<u32>,
    seconds: f64,
    progress: bool,
    label: &str,
) -> Window {
    let start = fleet.snapshot(server_pid);
    let mut prev = start.clone();
    let end = start.at + Duration::from_secs_f64(seconds);
    let tty = std::io::stderr().is_terminal();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        tokio::time::sleep((end - now).min(Duration::from_secs(1))).await;
        let snap = fleet.snapshot(server_pid);
        if progress {
            let w = Window::between(&prev, &snap);
            print_progress(label, snap.at.duration_since(start.at), &w, tty);
        }
        prev = snap;
    }
    if progress && tty {
        eprintln!();
    }
    Window::between(&start, &prev)
}

/// One progress line (stderr; rewritten in place on a terminal).
pub fn print_progress(label: &str, elapsed: Duration, w: &Window, tty: bool) {
    let line = format!(
        "[{label} {:5.1}s] down-tracks {}/{}  fwd {:.0} pkt/s  loss {:.3}%  server CPU {}  harness CPU {}  others {}",
        elapsed.as_secs_f64(),
        w.down_tracks_receiving,
        w.down_tracks_expected,
        w.forwarded_packets_per_s,
        w.loss_pct,
        fmt_pct(w.server_cpu_pct),
        fmt_pct(w.harness_cpu_pct),
        fmt_pct(w.others_cpu_pct),
    );
    let mut err = std::io::stderr().lock();
    if tty {
        let _ = write!(err, "\r{line}\x1b[K");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

pub fn fmt_pct(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.1}%"))
        .unwrap_or_else(|| "n/a".into())
}

/// Join times: POST → answer (`signal_ms`) and POST → first media (`join_ms`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Joins {
    pub attempted: usize,
    pub failed: usize,
    pub first_errors: Vec<String>,
    pub join_ms: Percentiles,
    /// WHEP POST sent → 201 received (Janus: subscriber `join` → `start` acknowledged).
    pub signal_ms: Percentiles,
    /// Set for a paced join storm (`--join-rate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<Storm>,
}

impl Joins {
    pub fn of(fleet: &Fleet) -> Joins {
        let mut times = fleet.join_times_ms();
        let mut signal = fleet.signal_times_ms();
        Joins {
            attempted: fleet.viewer_count() + fleet.join_failures.len(),
            failed: fleet.join_failures.len(),
            first_errors: fleet.join_failures.iter().take(3).cloned().collect(),
            join_ms: crate::report::percentiles_f64(&mut times),
            signal_ms: crate::report::percentiles_f64(&mut signal),
            storm: fleet.storm.clone(),
        }
    }
}

/// Server memory: RSS now, before any peer joined, and per participant.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    pub server_rss_baseline_bytes: Option<u64>,
    pub server_rss_bytes: Option<u64>,
    pub participants: usize,
    /// (RSS − baseline) / participants.
    pub server_rss_per_participant_bytes: Option<u64>,
    pub harness_rss_bytes: Option<u64>,
}

impl Memory {
    pub fn of(pid: Option<u32>, baseline: Option<u64>, participants: usize) -> Memory {
        let now = pid.and_then(rss_of);
        Memory {
            server_rss_baseline_bytes: baseline,
            server_rss_bytes: now,
            participants,
            server_rss_per_participant_bytes: match (now, baseline) {
                (Some(n), Some(b)) if participants > 0 => {
                    Some(n.saturating_sub(b) / participants as u64)
                }
                _ => None,
            },
            harness_rss_bytes: rss_bytes(None),
        }
    }
}
