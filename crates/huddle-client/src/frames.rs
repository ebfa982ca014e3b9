//! Frame-level reception: which video frames a decoder could have decoded, and when.
//!
//! Packets say little about what a viewer sees: one lost packet spoils its frame and, until
//! the next keyframe, every frame after it. [`FrameAssembler`] rebuilds frames from RTP the
//! way a decoder's jitter buffer does, and records when each became decodable:
//!
//! - a frame is the run of packets from the one after the previous frame's marker packet up
//!   to its own marker packet, all with the same RTP timestamp, with no sequence number
//!   missing;
//! - a frame is decodable when it is complete and it is a keyframe, or it directly follows
//!   (in sequence numbers) a decoded frame — so everything since the last keyframe was
//!   complete;
//! - when the chain is broken, the first complete keyframe after the break is decoded and
//!   the frames in between are skipped, as a decoder does; a frame that completes only after
//!   a later frame was decoded is skipped too (too late to show).
//!
//! Decoding happens in order and at once: a frame's decode time is the arrival of the packet
//! that made it (or the frame before it) decodable. The gaps between decode times are what a
//! viewer sees as freezes ([`FrameStats::longest_freeze`]).
//!
//! Audio has no such chain: every distinct packet is one 20 ms frame, recorded with
//! [`FrameStats::record_audio`], so the same gap measure gives audio continuity.
//!
//! Sequence numbers are the extended (64-bit) ones str0m reports, so no wrap-around logic is
//! needed here. Packets of an SSRC other than the first one's are handled the same way:
//! huddle keeps one outgoing sequence space per subscription, across layer switches.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Most decode times kept (at 30 fps, over half an hour).
pub const MAX_DECODE_TIMES: usize = 65_536;
/// Most packets held while waiting for a frame to complete; the oldest go first.
const MAX_PENDING_PACKETS: usize = 8_192;

/// What one received packet tells the assembler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramePacket {
    /// Extended RTP sequence number.
    pub seq: u64,
    /// RTP timestamp (the frame it belongs to).
    pub rtp_time: u32,
    /// RTP marker bit: the last packet of its frame.
    pub marker: bool,
    /// The first packet of a keyframe ([`crate::is_keyframe_start`]).
    pub keyframe_start: bool,
}

/// Frame-level figures of one received stream (a snapshot).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameStats {
    /// Frames decoded (video: in order, everything since their keyframe complete; audio:
    /// distinct packets).
    pub decoded: u64,
    /// Keyframes among them.
    pub keyframes_decoded: u64,
    /// Video frames skipped: some packets arrived, but the frame never became decodable
    /// before a later one was decoded.
    pub skipped: u64,
    /// When each frame was decoded, in order (the first [`MAX_DECODE_TIMES`]).
    pub decode_times: Vec<Instant>,
}

impl FrameStats {
    /// Notes one distinct audio packet arriving at `at` (one audio frame).
    pub fn record_audio(&mut self, at: Instant) {
        self.push(at, false);
    }

    fn push(&mut self, at: Instant, keyframe: bool) {
        self.decoded += 1;
        if keyframe {
            self.keyframes_decoded += 1;
        }
        if self.decode_times.len() < MAX_DECODE_TIMES {
            self.decode_times.push(at);
        }
    }

    /// When the first frame was decoded.
    pub fn first_decoded_at(&self) -> Option<Instant> {
        self.decode_times.first().copied()
    }

    /// When the last frame was decoded.
    pub fn last_decoded_at(&self) -> Option<Instant> {
        self.decode_times.last().copied()
    }

    /// Frames decoded in `[from, to)`.
    pub fn decoded_between(&self, from: Instant, to: Instant) -> u64 {
        self.decode_times
            .iter()
            .filter(|t| **t >= from && **t < to)
            .count() as u64
    }

    /// The longest gap between consecutive decoded frames since the first one.
    pub fn longest_freeze(&self) -> Duration {
        self.gaps().map(|(_, gap)| gap).max().unwrap_or_default()
    }

    /// The longest time without a decoded frame within `[from, to]`, counting from `from` to
    /// the first frame decoded in it and from the last one to `to` (the whole window if
    /// nothing was decoded in it), and the time at which that gap ended.
    pub fn longest_freeze_between(&self, from: Instant, to: Instant) -> (Duration, Instant) {
        let mut last = from;
        let mut worst = (Duration::ZERO, from);
        for &t in self
            .decode_times
            .iter()
            .filter(|t| **t >= from && **t <= to)
        {
            let gap = t.saturating_duration_since(last);
            if gap > worst.0 {
                worst = (gap, t);
            }
            last = t;
        }
        let tail = to.saturating_duration_since(last);
        if tail > worst.0 {
            worst = (tail, to);
        }
        worst
    }

    /// The gaps between consecutive decoded frames longer than `over`: (when the gap ended,
    /// its length), in order.
    pub fn freezes_over(&self, over: Duration) -> Vec<(Instant, Duration)> {
        self.gaps().filter(|(_, gap)| *gap > over).collect()
    }

    /// Each gap between consecutive decoded frames: (when it ended, its length).
    fn gaps(&self) -> impl Iterator<Item = (Instant, Duration)> + '_ {
        let times = &self.decode_times;
        times
            .iter()
            .zip(times.iter().skip(1))
            .map(|(a, b)| (*b, b.saturating_duration_since(*a)))
    }
}

/// One packet waiting in the assembler.
#[derive(Clone, Copy, Debug)]
struct Pending {
    rtp_time: u32,
    marker: bool,
}

/// Rebuilds video frames from RTP packets and decides which a decoder could decode: see the
/// module docs.
///
/// The figures go to a [`FrameStats`] the caller keeps (a stream's snapshot holds it).
#[derive(Debug, Default)]
pub struct FrameAssembler {
    /// Packets after the last decoded frame, by extended sequence number.
    pending: BTreeMap<u64, Pending>,
    /// Sequence numbers (in `pending`) of keyframes' first packets.
    keyframe_starts: BTreeSet<u64>,
    /// The marker packet of the last decoded frame.
    decoded_up_to: Option<u64>,
}

impl FrameAssembler {
    /// Takes one packet that arrived at `at`; decodes whatever it makes decodable, noting it
    /// in `stats`. Duplicates and packets of frames already decoded or skipped are ignored.
    pub fn push(&mut self, p: FramePacket, at: Instant, stats: &mut FrameStats) {
        if self.decoded_up_to.is_some_and(|d| p.seq <= d) || self.pending.contains_key(&p.seq) {
            return;
        }
        self.pending.insert(
            p.seq,
            Pending {
                rtp_time: p.rtp_time,
                marker: p.marker,
            },
        );
        if p.keyframe_start {
            self.keyframe_starts.insert(p.seq);
        }
        while self.decode_next(at, stats) {}
        self.bound();
    }

    /// Whether packets wait for a frame to complete.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Decodes the frame that follows the last decoded one if it is complete, or else the
    /// first complete keyframe after it; whether one was decoded.
    fn decode_next(&mut self, at: Instant, stats: &mut FrameStats) -> bool {
        if let Some(next) = self.decoded_up_to.map(|d| d + 1)
            && let Some(end) = self.complete_from(next)
        {
            let key = self.keyframe_starts.contains(&next);
            self.decode(end, key, at, stats);
            return true;
        }
        let key = self
            .keyframe_starts
            .iter()
            .copied()
            .find_map(|start| self.complete_from(start).map(|end| (start, end)));
        let Some((start, end)) = key else {
            return false;
        };
        stats.skipped += self.frames_before(start);
        self.decode(end, true, at, stats);
        true
    }

    /// The marker packet's sequence number if the frame starting at `start` is complete.
    fn complete_from(&self, start: u64) -> Option<u64> {
        let first = self.pending.get(&start)?;
        for (expect, (&seq, p)) in (start..).zip(self.pending.range(start..)) {
            if seq != expect || p.rtp_time != first.rtp_time {
                return None;
            }
            if p.marker {
                return Some(seq);
            }
        }
        None
    }

    /// Distinct frames (RTP timestamps) among the pending packets before `seq`.
    fn frames_before(&self, seq: u64) -> u64 {
        let mut times: Vec<u32> = self.pending.range(..seq).map(|(_, p)| p.rtp_time).collect();
        times.sort_unstable();
        times.dedup();
        times.len() as u64
    }

    fn decode(&mut self, end: u64, key: bool, at: Instant, stats: &mut FrameStats) {
        stats.push(at, key);
        self.decoded_up_to = Some(end);
        self.pending = self.pending.split_off(&(end + 1));
        self.keyframe_starts = self.keyframe_starts.split_off(&(end + 1));
    }

    /// Forgets the oldest packets when too many wait (a stream that never completes).
    fn bound(&mut self) {
        while self.pending.len() > MAX_PENDING_PACKETS {
            if let Some((seq, _)) = self.pending.pop_first() {
                self.keyframe_starts.remove(&seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of `sizes` packets from seq 100, ts 3000 apart; frame `i` is a keyframe if
    /// `keys` contains it.
    fn frames(sizes: &[u64], keys: &[usize]) -> Vec<Vec<FramePacket>> {
        let mut seq = 100;
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                (0..n)
                    .map(|j| {
                        let p = FramePacket {
                            seq,
                            rtp_time: 3000 * i as u32,
                            marker: j == n - 1,
                            keyframe_start: j == 0 && keys.contains(&i),
                        };
                        seq += 1;
                        p
                    })
                    .collect()
            })
            .collect()
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// An assembler and the figures it keeps.
    #[derive(Default)]
    struct Rx {
        a: FrameAssembler,
        s: FrameStats,
    }

    impl Rx {
        fn push(&mut self, p: FramePacket, at: Instant) {
            self.a.push(p, at, &mut self.s);
        }

        fn stats(&self) -> &FrameStats {
            &self.s
        }
    }

    #[test]
    fn complete_frames_after_a_keyframe_decode_in_order() {
        let t0 = Instant::now();
        let mut a = Rx::default();
        for (i, f) in frames(&[3, 2, 2, 1], &[0]).into_iter().enumerate() {
            for p in f {
                a.push(p, ms(t0, 33 * i as u64));
            }
        }
        let s = a.stats();
        assert_eq!((s.decoded, s.keyframes_decoded, s.skipped), (4, 1, 0));
        assert_eq!(s.longest_freeze(), Duration::from_millis(33));
    }

    #[test]
    fn nothing_decodes_before_the_first_keyframe() {
        let t0 = Instant::now();
        let mut a = Rx::default();
        let f = frames(&[2, 2, 2, 2], &[2]);
        for p in f[1].iter().chain(&f[2]).chain(&f[3]) {
            a.push(*p, t0);
        }
        assert_eq!(a.stats().decoded, 2);
        assert_eq!(a.stats().keyframes_decoded, 1);
        assert_eq!(a.stats().skipped, 1);
    }

    #[test]
    fn a_lost_packet_stops_the_chain_until_it_is_retransmitted() {
        let t0 = Instant::now();
        let mut a = Rx::default();
        let f = frames(&[2, 3, 2, 2], &[0]);
        let lost = f[1][1];
        for (i, frame) in f.iter().enumerate() {
            for p in frame.iter().filter(|p| **p != lost) {
                a.push(*p, ms(t0, 33 * i as u64));
            }
        }
        assert_eq!(a.stats().decoded, 1);
        assert!(a.a.has_pending(), "frames wait behind the hole");
        // The retransmission completes frame 1, which releases 2 and 3 at once.
        a.push(lost, ms(t0, 200));
        assert!(!a.a.has_pending());
        let s = a.stats();
        assert_eq!(s.decoded, 4);
        assert_eq!(s.longest_freeze(), Duration::from_millis(200));
        assert_eq!(s.freezes_over(Duration::from_millis(100)).len(), 1);
    }

    #[test]
    fn a_lost_frame_is_skipped_at_the_next_keyframe() {
        let t0 = Instant::now();
        let mut a = Rx::default();
        let f = frames(&[2, 2, 2, 2, 2], &[0, 3]);
        for (i, frame) in f.iter().enumerate() {
            if i == 1 {
                continue; // lost entirely
            }
            for p in frame {
                a.push(*p, ms(t0, 100 * i as u64));
            }
        }
        let s = a.stats().clone();
        // 0, then 3 (keyframe) and 4; 2 skipped (nothing of 1 arrived).
        assert_eq!((s.decoded, s.keyframes_decoded, s.skipped), (3, 2, 1));
        assert_eq!(s.longest_freeze(), Duration::from_millis(300));
        // A late retransmission of frame 1 changes nothing.
        for p in &f[1] {
            a.push(*p, ms(t0, 600));
        }
        assert_eq!(a.stats().decoded, 3);
    }

    #[test]
    fn a_missing_marker_keeps_the_frame_incomplete() {
        let t0 = Instant::now();
        let mut a = Rx::default();
        let f = frames(&[2, 2, 2], &[0]);
        a.push(f[0][0], t0);
        a.push(f[0][1], t0);
        a.push(f[1][0], t0);
        a.push(f[2][0], t0);
        a.push(f[2][1], t0);
        assert_eq!(a.stats().decoded, 1);
    }

    #[test]
    fn duplicates_count_once() {
        let t0 = Instant::now();
        let mut a = Rx::default();
        for p in frames(&[2], &[0]).concat() {
            a.push(p, t0);
            a.push(p, t0);
        }
        assert_eq!(a.stats().decoded, 1);
    }

    #[test]
    fn windows_count_edges_as_freezes() {
        let t0 = Instant::now();
        let mut s = FrameStats::default();
        for m in [0, 100, 200, 900, 1000] {
            s.record_audio(ms(t0, m));
        }
        assert_eq!(s.decoded_between(ms(t0, 100), ms(t0, 950)), 3);
        let (gap, ended) = s.longest_freeze_between(ms(t0, 50), ms(t0, 2000));
        assert_eq!((gap, ended), (Duration::from_millis(1000), ms(t0, 2000)));
        let (gap, ended) = s.longest_freeze_between(ms(t0, 0), ms(t0, 1000));
        assert_eq!((gap, ended), (Duration::from_millis(700), ms(t0, 900)));
    }
}
