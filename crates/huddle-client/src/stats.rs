//! Counters kept by publishers and viewers, and the receive-side bookkeeping.

use std::time::Instant;

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
    /// Video: whether the first packet received started a keyframe.
    pub first_packet_is_keyframe: Option<bool>,
    /// Video: when the first keyframe start arrived.
    pub first_keyframe_at: Option<Instant>,
    /// Per packet: arrival wall clock minus the send time in the huddle header, in µs
    /// (first [`MAX_LATENCY_SAMPLES`] packets).
    pub latency_us: Vec<u64>,
    /// Distinct huddle counters seen (compare with the publisher's sent count for loss).
    pub counters_seen: u64,
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
}

/// Receive-side state that is not part of the snapshot.
#[derive(Debug)]
pub(crate) struct StreamTracker {
    pub stats: StreamStats,
    seq_slots: Vec<u64>,
    counters: Vec<u64>,
}

impl Default for StreamTracker {
    fn default() -> Self {
        StreamTracker {
            stats: StreamStats::default(),
            seq_slots: vec![u64::MAX; SEQ_WINDOW],
            counters: Vec::new(),
        }
    }
}

impl StreamTracker {
    pub fn record(&mut self, r: Received) {
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += r.payload_len as u64;
        if !s.ssrcs.contains(&r.ssrc) {
            s.ssrcs.push(r.ssrc);
        }
        if s.first_packet_at.is_none() {
            s.first_packet_at = Some(r.at);
            s.first_packet_is_keyframe = r.keyframe_start;
        }
        if r.keyframe_start == Some(true) && s.first_keyframe_at.is_none() {
            s.first_keyframe_at = Some(r.at);
        }

        // Sequence bookkeeping on the extended sequence number.
        let slot = (r.seq % SEQ_WINDOW as u64) as usize;
        match s.last_seq {
            None => {
                s.first_seq = Some(r.seq);
                s.last_seq = Some(r.seq);
            }
            Some(max) if r.seq > max => {
                s.seq_gaps += r.seq - max - 1;
                s.last_seq = Some(r.seq);
            }
            Some(_) => {
                if self.seq_slots[slot] == r.seq {
                    s.duplicates += 1;
                } else {
                    s.seq_reorders += 1;
                    // A late packet fills a gap counted earlier.
                    s.seq_gaps = s.seq_gaps.saturating_sub(1);
                }
            }
        }
        self.seq_slots[slot] = r.seq;

        match r.verified {
            None => s.payload_mismatches += 1,
            Some((counter, send_us)) => {
                if s.latency_us.len() < MAX_LATENCY_SAMPLES {
                    s.latency_us.push(r.now_us.saturating_sub(send_us));
                }
                if counter < MAX_TRACKED_COUNTER {
                    let word = (counter / 64) as usize;
                    if self.counters.len() <= word {
                        self.counters.resize(word + 1, 0);
                    }
                    let bit = 1u64 << (counter % 64);
                    if self.counters[word] & bit == 0 {
                        self.counters[word] |= bit;
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
    }
}
