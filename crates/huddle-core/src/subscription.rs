//! A subscription: one track forwarded to one outgoing `mid` of a subscriber, with the
//! rewriting that makes the subscriber see one contiguous stream.

use std::collections::VecDeque;
use std::time::Instant;

use str0m::media::{MediaKind, Mid, Pt};
use str0m::rtp::Ssrc;

use crate::TrackId;
use crate::choice::Choice;
use crate::codec::PtTable;
use crate::picture::PictureIds;
use crate::red::RedAction;
use crate::track::Packet;

/// Outgoing sequence numbers start here, far enough from zero that reordered packets from
/// before the first one still fit, and far below 65,536 so that the SRTP rollover counter a
/// new receiver assumes (0) is right even when the publisher is already past a rollover.
const FIRST_OUT_SEQ: u64 = 1_000;

/// One outgoing media section of a participant and what, if anything, feeds it.
#[derive(Debug)]
pub struct Subscription {
    /// The subscriber's `mid` this subscription writes to.
    pub mid: Mid,
    /// Audio or video.
    pub kind: MediaKind,
    /// The track forwarded, when there is one.
    pub track: Option<TrackId>,
    /// Publisher payload type → subscriber payload type, for the codecs both negotiated.
    pub(crate) pt_map: PtTable<Pt>,
    /// The publisher's RED payload types, and what this subscriber gets of their payloads.
    pub(crate) red: PtTable<RedAction>,
    pub(crate) rewriter: Rewriter,
    /// VP8 picture numbers, continued across the sources the rewriter switches between.
    pub(crate) pictures: PictureIds,
    /// The SSRC of the subscriber's send stream on `mid`, once known.
    pub(crate) tx_ssrc: Option<Ssrc>,
    /// The track's packets currently use a codec the subscriber did not negotiate.
    pub(crate) codec_mismatch: bool,
    /// Packets waiting to be written at the catch-up pace, oldest first.
    pub(crate) backlog: VecDeque<Packet>,
    /// Video: which of the track's layers it receives, and why.
    pub(crate) choice: Choice,
    /// Packets written to it (retransmissions not counted).
    pub(crate) written: u64,
}

impl Subscription {
    pub(crate) fn new(mid: Mid, kind: MediaKind) -> Self {
        Subscription {
            mid,
            kind,
            track: None,
            pt_map: PtTable::default(),
            red: PtTable::default(),
            rewriter: Rewriter::new(kind == MediaKind::Video),
            pictures: PictureIds::default(),
            tx_ssrc: None,
            codec_mismatch: false,
            backlog: VecDeque::new(),
            choice: Choice::default(),
            written: 0,
        }
    }

    /// Stops forwarding: no track, nothing queued; the next source starts on a keyframe.
    pub(crate) fn detach(&mut self) {
        self.track = None;
        self.pt_map = PtTable::default();
        self.red = PtTable::default();
        self.codec_mismatch = false;
        self.backlog.clear();
        self.rewriter.reset_source();
        self.choice.reset();
    }

    pub(crate) fn map_pt(&self, pt: Pt) -> Option<Pt> {
        self.pt_map.get(pt)
    }
}

/// Per-subscriber SSRC-independent rewriting of sequence numbers and RTP timestamps.
///
/// Packets are rewritten by an *offset* fixed when a source starts, never renumbered in
/// arrival order: upstream loss, reordering and duplicates stay visible downstream, so that
/// NACK and jitter buffers work. When the source changes (another publisher, a new SSRC) the
/// offsets are chosen so that the output continues where it stopped, and video waits for a
/// keyframe of the new source.
#[derive(Debug)]
pub struct Rewriter {
    video: bool,
    source: Option<Ssrc>,
    seq_offset: u64,
    ts_offset: u32,
    /// First outgoing sequence number of the current source: anything below belongs to the
    /// previous source's numbering and is never reused.
    floor: u64,
    /// Highest outgoing sequence number written, and the timestamp and time that went with it.
    last: Option<(u64, u32, Instant)>,
    /// How many sources have started: what the numbering of the current one is keyed on.
    generation: u32,
}

/// Sequence number and timestamp to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewritten {
    pub seq: u64,
    pub ts: u32,
}

impl Rewriter {
    pub(crate) fn new(video: bool) -> Self {
        Rewriter {
            video,
            source: None,
            seq_offset: 0,
            ts_offset: 0,
            floor: FIRST_OUT_SEQ,
            last: None,
            generation: 0,
        }
    }

    /// The next packet must start a keyframe before anything is forwarded.
    pub(crate) fn reset_source(&mut self) {
        self.source = None;
    }

    /// Which source the packets rewritten now belong to: changes on every source start.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    pub(crate) fn waiting_for_keyframe(&self) -> bool {
        self.video && self.source.is_none()
    }

    /// Rewrites one packet; `None` means drop it (video waiting for a keyframe, or a packet
    /// from before the start of the current source).
    pub(crate) fn rewrite(
        &mut self,
        ssrc: Ssrc,
        seq: u64,
        ts: u32,
        clock_rate: u32,
        keyframe_start: bool,
        now: Instant,
    ) -> Option<Rewritten> {
        if self.source != Some(ssrc) {
            if self.video && !keyframe_start {
                return None;
            }
            self.start_source(ssrc, seq, ts, clock_rate, now);
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        // A reordered packet from before this source's first one would land on numbers the
        // previous source already used: drop it rather than send a stale number.
        if out_seq < self.floor || out_seq > u64::MAX / 2 {
            return None;
        }
        let out_ts = ts.wrapping_add(self.ts_offset);
        match self.last {
            Some((last_seq, _, _)) if out_seq <= last_seq => {}
            _ => self.last = Some((out_seq, out_ts, now)),
        }
        Some(Rewritten {
            seq: out_seq,
            ts: out_ts,
        })
    }

    fn start_source(&mut self, ssrc: Ssrc, seq: u64, ts: u32, clock_rate: u32, now: Instant) {
        let (next_seq, next_ts) = match self.last {
            None => (FIRST_OUT_SEQ, ts),
            Some((last_seq, last_ts, at)) => {
                // Advance the timestamp by the wall time that passed, at least one tick, so
                // jitter buffers see time move forward across the switch.
                let elapsed = now.saturating_duration_since(at).as_micros();
                let ticks = (elapsed * u128::from(clock_rate) / 1_000_000).max(1);
                let ticks = u32::try_from(ticks).unwrap_or(u32::MAX / 2);
                (last_seq + 1, last_ts.wrapping_add(ticks))
            }
        };
        self.source = Some(ssrc);
        self.generation = self.generation.wrapping_add(1);
        self.floor = next_seq;
        self.seq_offset = next_seq.wrapping_sub(seq);
        self.ts_offset = next_ts.wrapping_sub(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64, base: Instant) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn starts_near_zero_whatever_the_input_rollover() {
        let now = Instant::now();
        let mut r = Rewriter::new(false);
        let out = r.rewrite(7.into(), 5 * 65_536 + 12, 1000, 48_000, false, now);
        assert_eq!(
            out,
            Some(Rewritten {
                seq: FIRST_OUT_SEQ,
                ts: 1000
            })
        );
        let out = r.rewrite(7.into(), 5 * 65_536 + 13, 1960, 48_000, false, now);
        assert_eq!(out.map(|o| o.seq), Some(FIRST_OUT_SEQ + 1));
    }

    #[test]
    fn loss_and_reorder_stay_visible() {
        let now = Instant::now();
        let mut r = Rewriter::new(false);
        let s = |r: &mut Rewriter, seq| {
            r.rewrite(1.into(), seq, 0, 48_000, false, now)
                .map(|o| o.seq)
        };
        assert_eq!(s(&mut r, 100), Some(1000));
        assert_eq!(s(&mut r, 102), Some(1002)); // 101 lost upstream: the gap stays
        assert_eq!(s(&mut r, 101), Some(1001)); // late arrival keeps its place
        assert_eq!(s(&mut r, 102), Some(1002)); // duplicate stays a duplicate
    }

    #[test]
    fn video_waits_for_keyframe_then_switch_continues() {
        let base = Instant::now();
        let mut r = Rewriter::new(true);
        assert_eq!(
            r.rewrite(1.into(), 50, 9000, 90_000, false, at(0, base)),
            None
        );
        let first = r
            .rewrite(1.into(), 51, 9000, 90_000, true, at(0, base))
            .unwrap();
        assert_eq!(first.seq, FIRST_OUT_SEQ);
        let second = r
            .rewrite(1.into(), 52, 12_000, 90_000, false, at(33, base))
            .unwrap();
        // A new source (another publisher) with unrelated numbering: wait for its keyframe.
        assert_eq!(
            r.rewrite(2.into(), 40_000, 7, 90_000, false, at(100, base)),
            None
        );
        let switched = r
            .rewrite(2.into(), 40_001, 7, 90_000, true, at(100, base))
            .unwrap();
        assert_eq!(switched.seq, second.seq + 1);
        // 67 ms later at 90 kHz.
        assert_eq!(switched.ts, second.ts.wrapping_add(6030));
        let next = r
            .rewrite(2.into(), 40_002, 3007, 90_000, false, at(133, base))
            .unwrap();
        assert_eq!(next.seq, switched.seq + 1);
        assert_eq!(next.ts, switched.ts + 3000);
        // A straggler from before the switch point of the new source is dropped.
        assert_eq!(
            r.rewrite(2.into(), 40_000, 7, 90_000, false, at(140, base)),
            None
        );
    }

    #[test]
    fn a_source_reset_on_pause_resumes_the_same_ssrc_without_a_gap() {
        let base = Instant::now();
        let mut r = Rewriter::new(true);
        let first = r
            .rewrite(1.into(), 100, 0, 90_000, true, at(0, base))
            .unwrap();
        // Paused: the publisher's packets 101..=400 are skipped; the reset makes the next
        // keyframe of the same SSRC start a new source.
        r.reset_source();
        assert_eq!(
            r.rewrite(1.into(), 401, 270_000, 90_000, false, at(3000, base)),
            None,
            "waits for a keyframe"
        );
        let resumed = r
            .rewrite(1.into(), 402, 270_000, 90_000, true, at(3000, base))
            .unwrap();
        assert_eq!(resumed.seq, first.seq + 1, "no gap of the skipped packets");
        assert_eq!(resumed.ts, first.ts.wrapping_add(270_000));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// One source's packets: a start near some extended sequence number (rollovers
        /// included), then offsets from it: gaps (loss), going back (reordering), repeats.
        fn source() -> impl Strategy<Value = (u64, u32, Vec<i64>)> {
            (
                0u64..(5 * 65_536),
                any::<u32>(),
                prop::collection::vec(-20i64..40, 1..80),
            )
        }

        proptest! {
            #[test]
            fn rewriting_keeps_offsets_and_continues_across_sources(
                sources in prop::collection::vec(source(), 1..5),
            ) {
                let t0 = Instant::now();
                let mut r = Rewriter::new(false);
                let mut last_out: Option<u64> = None;
                for (n, (start, ts0, steps)) in sources.iter().enumerate() {
                    let ssrc: Ssrc = (n as u32 + 1).into();
                    let at = t0 + std::time::Duration::from_secs(n as u64);
                    let mut seq = *start;
                    let mut offset: Option<(u64, u32)> = None;
                    let mut first_of_source = true;
                    for step in steps {
                        seq = seq.saturating_add_signed(*step);
                        let ts = ts0.wrapping_add((seq as u32).wrapping_mul(960));
                        let Some(out) = r.rewrite(ssrc, seq, ts, 48_000, false, at) else {
                            // Only a straggler from before the source's first packet is dropped.
                            prop_assert!(!first_of_source);
                            continue;
                        };
                        prop_assert!(out.seq < 65_536 * 1024, "numbering stays small");
                        if first_of_source {
                            // A new source continues right after everything sent before.
                            let expected = last_out.map_or(FIRST_OUT_SEQ, |l| l + 1);
                            prop_assert_eq!(out.seq, expected);
                            first_of_source = false;
                        }
                        let this = (out.seq.wrapping_sub(seq), out.ts.wrapping_sub(ts));
                        // Loss, reordering and duplicates keep their shape: one offset.
                        prop_assert_eq!(*offset.get_or_insert(this), this);
                        last_out = Some(last_out.map_or(out.seq, |l| l.max(out.seq)));
                    }
                }
            }
        }
    }
}
