//! Counters kept by publishers and viewers, and the receive-side bookkeeping.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::frames::{FrameAssembler, FramePacket, FrameStats};

/// Most latency samples kept per stream.
pub const MAX_LATENCY_SAMPLES: usize = 100_000;
/// Window of recent sequence numbers remembered to tell duplicates from reorders.
const SEQ_WINDOW: usize = 4096;
/// Highest huddle counter tracked for `counters_seen` (bitset of 8 MiB).
const MAX_TRACKED_COUNTER: u64 = 1 << 26;

/// What a publisher has sent.
#[derive(Clone, Debug, Default)]
pub struct PublisherStats {
    /// Opus packets written.
    pub audio_packets_sent: u64,
    /// Video packets written.
    pub video_packets_sent: u64,
    /// Video payload bytes written.
    pub video_bytes_sent: u64,
    /// Keyframes sent (periodic, first, and on request).
    pub keyframes_sent: u64,
    /// PLI/FIR received.
    pub keyframe_requests: u64,
    /// ICE + DTLS up.
    pub connected: bool,
}

/// What a viewer has received on one kind of media.
#[derive(Clone, Debug, Default)]
pub struct StreamStats {
    /// RTP packets received.
    pub packets: u64,
    /// RTP payload bytes received.
    pub bytes: u64,
    /// Payloads that failed the regenerate-and-compare check.
    pub payload_mismatches: u64,
    /// Audio of a viewer: Opus RED packets received (on the RED payload type it negotiated).
    pub red_packets: u64,
    /// Audio of a viewer: blocks of those RED packets whose payload type was not the Opus
    /// payload type that RED carries.
    pub red_block_mismatches: u64,
    /// Sequence numbers skipped and not (yet) filled by a late packet.
    pub seq_gaps: u64,
    /// Packets that arrived below the highest sequence number seen (not duplicates).
    pub seq_reorders: u64,
    /// Packets whose sequence number was already seen.
    pub duplicates: u64,
    /// First extended sequence number seen.
    pub first_seq: Option<u64>,
    /// Highest extended sequence number seen.
    pub last_seq: Option<u64>,
    /// Distinct SSRCs seen, in order of appearance.
    pub ssrcs: Vec<u32>,
    /// When the first packet arrived.
    pub first_packet_at: Option<Instant>,
    /// Video: whether the first packet received started a keyframe (lean: the first
    /// sample, which is the first packet unless str0m could not decrypt it).
    pub first_packet_is_keyframe: Option<bool>,
    /// Video: when the first keyframe start arrived.
    pub first_keyframe_at: Option<Instant>,
    /// Per packet: arrival wall clock minus the send time in the huddle header, in µs
    /// (first [`MAX_LATENCY_SAMPLES`] packets).
    pub latency_us: Vec<u64>,
    /// Distinct huddle counters seen (compare with the publisher's sent count for loss).
    pub counters_seen: u64,
    /// Huddle counter of the first verified payload.
    pub first_counter: Option<u64>,
    /// Highest huddle counter of a verified payload.
    pub last_counter: Option<u64>,
    /// Lean viewer ([`crate::LeanReceive`]): `packets`, `bytes`, sequence figures and
    /// `first_packet_at` come from every packet's cleartext RTP header, while payload checks
    /// (`payload_mismatches`, counters, latency, keyframes) come from the decrypted sample.
    pub lean: bool,
    /// Packets decrypted and checked (every packet unless `lean`).
    pub samples: u64,
    /// Frames a decoder could have decoded, and when ([`crate::frames`]): video frames
    /// rebuilt from RTP, audio packets one frame each. Empty for a lean stream.
    pub frames: FrameStats,
}

impl StreamStats {
    /// Distinct packets received: huddle counters seen, or for a lean stream (whose
    /// counters are only sampled) packets minus duplicates.
    pub fn distinct_received(&self) -> u64 {
        if self.lean {
            self.packets.saturating_sub(self.duplicates)
        } else {
            self.counters_seen
        }
    }
}

/// One received packet, as the viewer's drive loop sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    pub seq: u64,
    pub ssrc: u32,
    pub payload_len: usize,
    pub at: Instant,
    pub now_us: u64,
    /// Huddle header counter and send time, if the payload verified.
    pub verified: Option<(u64, u64)>,
    /// Video: whether this packet starts a keyframe.
    pub keyframe_start: Option<bool>,
    /// RTP timestamp.
    pub rtp_time: u32,
    /// RTP marker bit.
    pub marker: bool,
}

/// Receive-side state that is not part of the snapshot.
#[derive(Debug)]
pub(crate) struct StreamTracker {
    pub stats: StreamStats,
    seq_slots: Vec<u64>,
    counters: Vec<u64>,
    /// Latency samples go to `stats.latency_us` (copied by every snapshot) when true, else
    /// to `pending_latency`, which [`StreamTracker::take_latency`] drains.
    latency_in_stats: bool,
    pending_latency: Vec<u64>,
    /// Video frames waiting for their packets.
    frames: FrameAssembler,
}

impl Default for StreamTracker {
    fn default() -> Self {
        StreamTracker {
            stats: StreamStats::default(),
            seq_slots: vec![u64::MAX; SEQ_WINDOW],
            counters: Vec::new(),
            latency_in_stats: true,
            pending_latency: Vec::new(),
            frames: FrameAssembler::default(),
        }
    }
}

impl StreamTracker {
    /// A tracker whose latency samples stay out of the snapshot (see `take_latency`).
    pub fn with_latency_taken() -> Self {
        StreamTracker {
            latency_in_stats: false,
            ..StreamTracker::default()
        }
    }

    /// Latency samples since the last call (only without `latency_in_stats`).
    pub fn take_latency(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.pending_latency)
    }

    /// Records a packet received and checked (every packet of a full viewer).
    pub fn record(&mut self, r: Received) {
        let duplicates = self.stats.duplicates;
        self.record_header(r.seq, r.ssrc, r.payload_len, r.at);
        self.record_check(r);
        match r.keyframe_start {
            Some(keyframe_start) => {
                let p = FramePacket {
                    seq: r.seq,
                    rtp_time: r.rtp_time,
                    marker: r.marker,
                    keyframe_start,
                };
                self.frames.push(p, r.at, &mut self.stats.frames);
            }
            None if self.stats.duplicates == duplicates => self.stats.frames.record_audio(r.at),
            None => {}
        }
    }

    /// Video: packets wait behind a frame that cannot be decoded, and no frame was decoded
    /// for `for_at_least` (a decoder would ask for a keyframe).
    pub fn stalled(&self, at: Instant, for_at_least: std::time::Duration) -> bool {
        self.frames.has_pending()
            && self
                .stats
                .frames
                .last_decoded_at()
                .is_some_and(|t| at.saturating_duration_since(t) >= for_at_least)
    }

    /// A lean stream: from now on packets are counted by `record_header` and only samples
    /// go through `record_check`.
    pub fn set_lean(&mut self) {
        self.stats.lean = true;
    }

    /// The header-level bookkeeping of one packet: counts, bytes, SSRCs, sequence numbers.
    pub fn record_header(&mut self, seq: u64, ssrc: u32, payload_len: usize, at: Instant) {
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += payload_len as u64;
        if !s.ssrcs.contains(&ssrc) {
            s.ssrcs.push(ssrc);
        }
        if s.first_packet_at.is_none() {
            s.first_packet_at = Some(at);
        }
        self.record_seq(seq);
    }

    /// Packet `seq` was received (as far as the window of remembered numbers reaches).
    pub fn has_seen(&self, seq: u64) -> bool {
        let slot = (seq % SEQ_WINDOW as u64) as usize;
        self.seq_slots.get(slot) == Some(&seq)
    }

    /// Sequence bookkeeping on the extended sequence number.
    fn record_seq(&mut self, seq: u64) {
        let s = &mut self.stats;
        let slot = (seq % SEQ_WINDOW as u64) as usize;
        match s.last_seq {
            None => {
                s.first_seq = Some(seq);
                s.last_seq = Some(seq);
            }
            Some(max) if seq > max => {
                s.seq_gaps += seq - max - 1;
                s.last_seq = Some(seq);
            }
            Some(_) => {
                if self.seq_slots.get(slot) == Some(&seq) {
                    s.duplicates += 1;
                } else {
                    s.seq_reorders += 1;
                    // A late packet fills a gap counted earlier.
                    s.seq_gaps = s.seq_gaps.saturating_sub(1);
                }
            }
        }
        if let Some(remembered) = self.seq_slots.get_mut(slot) {
            *remembered = seq;
        }
    }

    /// The payload-level bookkeeping of one decrypted packet: check, latency, counters,
    /// keyframes.
    pub fn record_check(&mut self, r: Received) {
        let s = &mut self.stats;
        s.samples += 1;
        if s.first_packet_is_keyframe.is_none() {
            s.first_packet_is_keyframe = r.keyframe_start;
        }
        if r.keyframe_start == Some(true) && s.first_keyframe_at.is_none() {
            s.first_keyframe_at = Some(r.at);
        }
        match r.verified {
            None => s.payload_mismatches += 1,
            Some((counter, send_us)) => {
                let latency = r.now_us.saturating_sub(send_us);
                if !self.latency_in_stats {
                    if self.pending_latency.len() < MAX_LATENCY_SAMPLES {
                        self.pending_latency.push(latency);
                    }
                } else if s.latency_us.len() < MAX_LATENCY_SAMPLES {
                    s.latency_us.push(latency);
                }
                if s.first_counter.is_none() {
                    s.first_counter = Some(counter);
                }
                s.last_counter = Some(s.last_counter.map_or(counter, |c| c.max(counter)));
                if counter < MAX_TRACKED_COUNTER {
                    let word = (counter / 64) as usize;
                    if self.counters.len() <= word {
                        self.counters.resize(word + 1, 0);
                    }
                    let bit = 1u64 << (counter % 64);
                    if let Some(w) = self.counters.get_mut(word)
                        && *w & bit == 0
                    {
                        *w |= bit;
                        s.counters_seen += 1;
                    }
                }
            }
        }
    }
}

/// What a viewer has received.
#[derive(Clone, Debug, Default)]
pub struct ViewerStats {
    /// ICE + DTLS up.
    pub connected: bool,
    /// When it connected.
    pub connected_at: Option<Instant>,
    /// Audio stream.
    pub audio: StreamStats,
    /// Video stream.
    pub video: StreamStats,
    /// PLIs this viewer sent.
    pub keyframe_requests_sent: u64,
}

/// A chat message relayed by the SFU over the `chat` data channel.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatMessage {
    /// Sender's participant id.
    pub from: String,
    /// Sender's display name.
    pub name: String,
    pub text: String,
    /// The server's timestamp (`at`), as sent.
    pub at: Option<f64>,
}

/// What a [`crate::RoomMember`] has sent, received and been told.
#[derive(Clone, Debug, Default)]
pub struct MemberStats {
    /// Our participant id (from `welcome`).
    pub id: String,
    /// ICE + DTLS up.
    pub connected: bool,
    /// The room WebSocket is still open.
    pub signaling_open: bool,
    /// What we published.
    pub published: PublisherStats,
    /// What we received, per remote participant id (the msid stream id of the m-line).
    /// `connected_at` is when that participant's first packet arrived; `latency_us` is
    /// always empty here (see [`crate::RoomMember::take_latency`]).
    pub received: BTreeMap<String, ViewerStats>,
    /// Server `offer`s answered.
    pub server_offers: u64,
    /// Chat messages from the others.
    pub chat: Vec<ChatMessage>,
    /// Ids from `participant-joined`.
    pub joined: Vec<String>,
    /// Ids from `participant-left`.
    pub left: Vec<String>,
    /// Each `speaker` message: the active speaker's id (`None`: nobody) and when it came.
    pub speakers: Vec<(Option<String>, Instant)>,
    /// Each `track-published`: (participant id, track id).
    pub tracks: Vec<(String, String)>,
    /// Reasons from `error`, and local signalling failures.
    pub errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx(seq: u64, counter: u64) -> Received {
        Received {
            seq,
            ssrc: 7,
            payload_len: 100,
            at: Instant::now(),
            now_us: 1_000,
            verified: Some((counter, 900)),
            keyframe_start: None,
            rtp_time: 0,
            marker: false,
        }
    }

    #[test]
    fn gaps_reorders_duplicates() {
        let mut t = StreamTracker::default();
        for (seq, c) in [(10, 0), (11, 1), (14, 4), (12, 2), (12, 2), (15, 5)] {
            t.record(rx(seq, c));
        }
        let s = &t.stats;
        assert_eq!(s.packets, 6);
        assert_eq!(s.first_seq, Some(10));
        assert_eq!(s.last_seq, Some(15));
        assert_eq!(s.seq_gaps, 1); // 13 still missing
        assert_eq!(s.seq_reorders, 1);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.counters_seen, 5);
        assert_eq!(s.latency_us, vec![100; 6]);
        assert_eq!(s.ssrcs, vec![7]);
        assert_eq!((s.first_counter, s.last_counter), (Some(0), Some(5)));
        // Audio: one frame per distinct packet.
        assert_eq!(s.frames.decoded, 5);
    }

    #[test]
    fn lean_counts_headers_and_checks_samples() {
        let mut t = StreamTracker::default();
        t.set_lean();
        for seq in (1..=40).filter(|s| *s != 20) {
            t.record_header(seq, 7, 1000, Instant::now());
            if seq % 16 == 1 {
                t.record_check(rx(seq, seq));
            }
        }
        let s = &t.stats;
        assert!(s.lean);
        assert_eq!((s.packets, s.bytes, s.seq_gaps), (39, 39_000, 1));
        assert_eq!(s.samples, 3);
        assert_eq!(s.counters_seen, 3);
        assert_eq!(s.distinct_received(), 39);
        assert_eq!(s.latency_us.len(), 3);
        // A full tracker's distinct count is its counters.
        let mut full = StreamTracker::default();
        full.record(rx(1, 1));
        full.record(rx(1, 1));
        assert_eq!(full.stats.distinct_received(), 1);
        assert_eq!(full.stats.samples, 2);
    }

    #[test]
    fn latency_taken_not_snapshotted() {
        let mut t = StreamTracker::with_latency_taken();
        for (seq, c) in [(1, 1), (2, 2), (3, 3)] {
            t.record(rx(seq, c));
        }
        assert!(t.stats.latency_us.is_empty());
        assert_eq!(t.take_latency(), vec![100; 3]);
        assert!(t.take_latency().is_empty());
    }

    fn video(seq: u64, key: bool, rtp_time: u32, at: Instant) -> Received {
        Received {
            seq,
            ssrc: 7,
            payload_len: 100,
            at,
            now_us: 1_000,
            verified: Some((seq, 900)),
            keyframe_start: Some(key),
            rtp_time,
            marker: true,
        }
    }

    #[test]
    fn video_stalls_while_frames_wait_behind_a_hole() {
        let t0 = Instant::now();
        let ms = |m| t0 + std::time::Duration::from_millis(m);
        let stall = std::time::Duration::from_millis(300);
        let mut t = StreamTracker::default();
        t.record(video(1, true, 0, t0));
        // Packet 2 lost: frame 3 waits.
        t.record(video(3, false, 6000, ms(100)));
        assert!(!t.stalled(ms(200), stall));
        assert!(t.stalled(ms(400), stall));
        // Its retransmission releases both.
        t.record(video(2, false, 3000, ms(450)));
        assert_eq!(t.stats.frames.decoded, 3);
        assert!(!t.stalled(ms(900), stall), "nothing waits");
    }
}
