//! `meeting`: R rooms × N participants over the room WebSocket (`/rooms/{room}/ws`), each
//! publishing audio + video and receiving every other participant of its room.
//!
//! Each participant is a [`RoomMember`]: one peer connection, signalled like huddle's page
//! (join, one offer, then an answer to every server offer as others join). Rooms join in
//! parallel, the members of one room one after another, so every member but the first
//! joins a room where media is already flowing; its join time is `join` called → first
//! packet from any other member. Expected down-tracks: R × N × (N − 1) × 2.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use huddle_client::{MemberStats, RoomMember, ViewerStats};
use serde::Serialize;
use tokio::task::JoinSet;

use super::{Joins, MediaShape, Memory, RunOptions, Window, print_progress};
use crate::procstat::{CpuSample, rss_of};
use crate::report::{percentiles_f64, print_window};
use crate::sut::Sut;

/// One room's members.
#[derive(Debug)]
pub struct Room {
    pub name: String,
    members: Vec<RoomMember>,
    join_failures: Vec<String>,
}

impl Room {
    /// Joins `n` members one after another.
    async fn join(sut_url: String, name: String, n: usize, media: MediaShape) -> Room {
        let mut room = Room {
            name,
            members: Vec::new(),
            join_failures: Vec::new(),
        };
        for i in 0..n {
            let who = format!("{}-p{i}", room.name);
            match RoomMember::join(&sut_url, &who, media.publisher_options()).await {
                Ok(m) => room.members.push(m),
                Err(e) => room.join_failures.push(format!("{who}: {e}")),
            }
        }
        room
    }

    /// Every member receives audio and video from every other member.
    fn complete(&self) -> bool {
        let n = self.members.len();
        self.members.iter().all(|m| {
            let s = m.stats();
            s.received
                .values()
                .filter(|r| r.audio.packets > 0 && r.video.packets > 0)
                .count()
                >= n.saturating_sub(1)
        })
    }
}

/// All rooms.
#[derive(Debug)]
pub struct Meeting {
    pub rooms: Vec<Room>,
    /// Participants per room asked for.
    pub participants: usize,
}

/// Every member's counters at one instant.
#[derive(Clone, Debug)]
pub struct MeetingSnapshot {
    pub at: Instant,
    /// Per room, per member.
    pub rooms: Vec<Vec<MemberStats>>,
    pub server: CpuSample,
    pub harness: CpuSample,
}

impl Meeting {
    /// Joins `rooms` × `participants` members (rooms in parallel).
    pub async fn join(
        sut: &dyn Sut,
        rooms: usize,
        participants: usize,
        media: &MediaShape,
    ) -> Self {
        huddle_client::ensure_crypto_provider();
        let tag = std::process::id();
        let mut set = JoinSet::new();
        for r in 0..rooms {
            let name = format!("meeting-{tag}-r{r}");
            let Some(url) = sut.room_ws_url(&name) else {
                tracing::warn!("{} has no room WebSocket: meeting needs huddle", sut.name());
                break;
            };
            set.spawn(Room::join(url, name, participants, media.clone()));
        }
        let mut all = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(room) => all.push(room),
                Err(e) => tracing::warn!("room join task failed: {e}"),
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Meeting {
            rooms: all,
            participants,
        }
    }

    pub fn members(&self) -> impl Iterator<Item = &RoomMember> {
        self.rooms.iter().flat_map(|r| r.members.iter())
    }

    pub fn member_count(&self) -> usize {
        self.members().count()
    }

    pub fn join_failures(&self) -> Vec<String> {
        self.rooms
            .iter()
            .flat_map(|r| r.join_failures.iter().cloned())
            .collect()
    }

    /// Waits until every member receives every other member of its room, at most `timeout`.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.rooms.iter().all(Room::complete);
            if all || Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `join` called → first packet from any other member, for members that joined a room
    /// with someone already in it.
    pub fn join_times_ms(&self) -> Vec<f64> {
        self.rooms
            .iter()
            .flat_map(|r| r.members.iter().skip(1))
            .filter_map(|m| {
                let s = m.stats();
                let first = s
                    .received
                    .values()
                    .flat_map(|r| [r.audio.first_packet_at, r.video.first_packet_at])
                    .flatten()
                    .min()?;
                Some(
                    first
                        .saturating_duration_since(m.join_started())
                        .as_secs_f64()
                        * 1e3,
                )
            })
            .collect()
    }

    pub fn snapshot(&self, server_pid: Option<u32>) -> MeetingSnapshot {
        MeetingSnapshot {
            at: Instant::now(),
            rooms: self
                .rooms
                .iter()
                .map(|r| r.members.iter().map(RoomMember::stats).collect())
                .collect(),
            server: CpuSample::take(server_pid),
            harness: CpuSample::take(None),
        }
    }

    /// Latency samples of every member since the last call.
    pub fn take_latency(&self) -> Vec<u64> {
        self.members().flat_map(|m| m.take_latency()).collect()
    }

    /// Every member leaves (`leave`, then the peer closes), all at once.
    pub async fn leave(self) {
        let mut set = JoinSet::new();
        for m in self.rooms.into_iter().flat_map(|r| r.members) {
            set.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), m.leave()).await;
            });
        }
        while set.join_next().await.is_some() {}
    }
}

/// Figures between two snapshots; `latencies` are the samples taken in between.
pub fn window_between(
    a: &MeetingSnapshot,
    b: &MeetingSnapshot,
    participants: usize,
    latencies: &mut [u64],
) -> Window {
    let seconds = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let rooms = b.rooms.len();
    let mut w = Window {
        seconds,
        viewers: b.rooms.iter().map(Vec::len).sum(),
        down_tracks_expected: rooms * participants * participants.saturating_sub(1) * 2,
        ..Window::default()
    };
    let empty_member = MemberStats::default();
    let empty = ViewerStats::default();
    for (ra, rb) in a.rooms.iter().zip(&b.rooms) {
        let others = rb.len().saturating_sub(1) as u64;
        for (i, mb) in rb.iter().enumerate() {
            let ma = ra.get(i).unwrap_or(&empty_member);
            let (pa, pb) = (&ma.published, &mb.published);
            let sent = (pb.audio_packets_sent + pb.video_packets_sent)
                .saturating_sub(pa.audio_packets_sent + pa.video_packets_sent);
            w.packets_sent += sent;
            w.packets_expected += sent * others;
            w.keyframe_requests_at_publisher +=
                pb.keyframe_requests.saturating_sub(pa.keyframe_requests);
            w.keyframes_sent += pb.keyframes_sent.saturating_sub(pa.keyframes_sent);
            for (from, vb) in &mb.received {
                let va = ma.received.get(from).unwrap_or(&empty);
                w.add_down_tracks(va, vb);
            }
        }
    }
    w.publisher_packets_per_s = w.packets_sent as f64 / seconds;
    w.finish(&a.server, &b.server, &a.harness, &b.harness, latencies);
    w
}

/// A finished `meeting` run.
#[derive(Clone, Debug, Serialize)]
pub struct MeetingReport {
    pub scenario: &'static str,
    pub sut: String,
    pub media: MediaShape,
    pub harness_threads: usize,
    pub rooms: usize,
    pub participants_per_room: usize,
    /// `viewers` = participants; `packets_sent` = all participants together; expected
    /// forwarded = each one's sent × (members of its room − 1).
    pub window: Window,
    /// Join time: `join` → first packet from another member (all but each room's first).
    pub joins: Joins,
    pub memory: Memory,
    /// Server offers answered, all members together.
    pub server_offers: u64,
    /// `error` messages and local signalling errors, all members together.
    pub signaling_errors: usize,
}

impl MeetingReport {
    pub fn print(&self) {
        println!(
            "\nmeeting: {} rooms × {} participants on {} (each publishes {:.2} Mbit/s video @ {} fps + Opus, {}; receives all others)",
            self.rooms,
            self.participants_per_room,
            self.sut,
            self.media.video_bitrate_bps as f64 / 1e6,
            self.media.fps,
            self.media.codec
        );
        println!(
            "  (\"publisher\" = all participants together, \"viewer\" = participant, expected = sent × (room size − 1))"
        );
        print_window(&self.window);
        crate::report::print_joins(&self.joins, "join");
        let row = |k: &str, v: String| println!("  {k:<34} {v}");
        row(
            "server offers answered / errors",
            format!("{} / {}", self.server_offers, self.signaling_errors),
        );
        crate::report::print_memory(&self.memory);
        crate::report::print_join_errors(&self.joins);
    }
}

/// Runs the scenario against `sut` and returns the report (members gone, SUT left running).
pub async fn run(
    sut: &dyn Sut,
    rooms: usize,
    participants: usize,
    opts: &RunOptions,
    harness_threads: usize,
) -> Result<MeetingReport, String> {
    if rooms == 0 || participants < 2 {
        return Err("meeting needs --rooms ≥ 1 and --participants ≥ 2".into());
    }
    if sut.room_ws_url("probe").is_none() {
        return Err(format!(
            "meeting needs huddle's room WebSocket, which {} does not have",
            sut.name()
        ));
    }
    let pid = sut.pid();
    let baseline = pid.and_then(rss_of);
    let meeting = Meeting::join(sut, rooms, participants, &opts.media).await;
    let failures = meeting.join_failures();
    if meeting.member_count() == 0 {
        return Err(format!("no member could join: {:?}", failures.first()));
    }
    if !meeting.settle(opts.settle_timeout).await {
        tracing::warn!(
            "not every member received every other within {:?}",
            opts.settle_timeout
        );
    }
    // Let join-time keyframe requests and bursts pass before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let tty = std::io::stderr().is_terminal();
    meeting.take_latency(); // samples before the window
    let start = meeting.snapshot(pid);
    let mut prev = start.clone();
    let mut latencies = Vec::new();
    let end = start.at + Duration::from_secs_f64(opts.seconds);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        tokio::time::sleep((end - now).min(Duration::from_secs(1))).await;
        let snap = meeting.snapshot(pid);
        let mut fresh = meeting.take_latency();
        if opts.progress {
            let w = window_between(&prev, &snap, participants, &mut fresh.clone());
            print_progress("meeting", snap.at.duration_since(start.at), &w, tty);
        }
        latencies.append(&mut fresh);
        prev = snap;
    }
    if opts.progress && tty {
        eprintln!();
    }
    let window = window_between(&start, &prev, participants, &mut latencies);

    let mut times = meeting.join_times_ms();
    let joins = Joins {
        attempted: rooms * participants,
        failed: failures.len(),
        first_errors: failures.iter().take(3).cloned().collect(),
        join_ms: percentiles_f64(&mut times),
        ..Joins::default()
    };
    let memory = Memory::of(pid, baseline, meeting.member_count());
    let (server_offers, signaling_errors) =
        prev.rooms.iter().flatten().fold((0, 0), |(o, e), s| {
            (o + s.server_offers, e + s.errors.len())
        });
    meeting.leave().await;
    Ok(MeetingReport {
        scenario: "meeting",
        sut: sut.name().to_owned(),
        media: opts.media.clone(),
        harness_threads,
        rooms,
        participants_per_room: participants,
        window,
        joins,
        memory,
        server_offers,
        signaling_errors,
    })
}
