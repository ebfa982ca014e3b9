//! One encoding of a track — its only one, or one simulcast layer (RFC 8853, named by its
//! `rid`): the SSRC it arrives on, how many bits it carries, the size of its pictures, its
//! current group of pictures and its keyframe requests.

use std::time::{Duration, Instant};

use str0m::media::Rid;
use str0m::rtp::Ssrc;

use crate::track::Packet;

/// At most this many encodings per track (browsers send three).
pub(crate) const MAX_LAYERS: usize = 4;

/// One encoding of a track.
#[derive(Debug)]
pub struct Layer {
    /// The simulcast layer's name; `None` for a track that is not simulcast.
    pub rid: Option<Rid>,
    pub(crate) ssrc: SourceSsrc,
    pub(crate) meter: RateMeter,
    /// The picture size its last keyframe announced (VP8, H.264).
    pub size: Option<(u32, u32)>,
    pub(crate) gop: GopCache,
    pub(crate) keyframe_requests: KeyframeThrottle,
}

impl Layer {
    pub(crate) fn new(rid: Option<Rid>, gop_limit: usize) -> Self {
        Layer {
            rid,
            ssrc: SourceSsrc::default(),
            meter: RateMeter::default(),
            size: None,
            gop: GopCache::new(gop_limit),
            keyframe_requests: KeyframeThrottle::default(),
        }
    }

    /// Bits per second over the last second.
    pub fn bitrate(&self, now: Instant) -> u64 {
        self.meter.rate(now)
    }

    /// It sent something in the last second.
    pub fn active(&self, now: Instant) -> bool {
        self.meter
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < RateMeter::WINDOW)
    }

    /// Notes one packet of this layer.
    pub(crate) fn record(&mut self, p: &Packet) {
        self.meter.add(p.arrival, p.payload.len() + RTP_OVERHEAD);
        if p.size.is_some() {
            self.size = p.size;
        }
        self.gop.push(p);
    }
}

/// Bytes on the wire per packet beyond the payload (RTP header and extensions, SRTP tag, UDP
/// and IP), for bitrates that compare with a bandwidth estimate.
const RTP_OVERHEAD: usize = 60;

/// Bytes in the last second, in ten 100 ms buckets.
#[derive(Debug, Default)]
pub(crate) struct RateMeter {
    buckets: [u64; 10],
    /// The bucket index (in 100 ms steps since `base`) the newest sample went to.
    head: u64,
    base: Option<Instant>,
    last: Option<Instant>,
}

impl RateMeter {
    const WINDOW: Duration = Duration::from_secs(1);
    const STEP_MS: u128 = 100;

    fn step(&self, at: Instant) -> u64 {
        self.base.map_or(0, |b| {
            u64::try_from(at.saturating_duration_since(b).as_millis() / Self::STEP_MS)
                .unwrap_or(u64::MAX)
        })
    }

    /// Clears the buckets that fell out of the window by `step`.
    fn advance(&mut self, step: u64) {
        if step <= self.head {
            return;
        }
        let gone = (step - self.head).min(self.buckets.len() as u64);
        for i in 1..=gone {
            let idx = ((self.head + i) % self.buckets.len() as u64) as usize;
            if let Some(b) = self.buckets.get_mut(idx) {
                *b = 0;
            }
        }
        self.head = step;
    }

    pub(crate) fn add(&mut self, at: Instant, bytes: usize) {
        self.base.get_or_insert(at);
        let step = self.step(at);
        self.advance(step);
        let idx = (self.head % self.buckets.len() as u64) as usize;
        if let Some(b) = self.buckets.get_mut(idx) {
            *b += bytes as u64;
        }
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    /// Bits per second over the window ending at `now`.
    pub(crate) fn rate(&self, now: Instant) -> u64 {
        let step = self.step(now);
        if self.base.is_none() || step >= self.head + self.buckets.len() as u64 {
            return 0;
        }
        // Buckets older than the window (relative to now) do not count.
        let stale = step.saturating_sub(self.head);
        let kept = self.buckets.len() as u64 - stale;
        (0..kept)
            .map(|age| {
                let idx = ((self.head + self.buckets.len() as u64 - age)
                    % self.buckets.len() as u64) as usize;
                self.buckets.get(idx).copied().unwrap_or(0)
            })
            .sum::<u64>()
            * 8
    }
}

/// The packets of the current group of pictures (from the last keyframe on), so that a new
/// subscriber can start decoding at once instead of waiting for the publisher's next keyframe.
#[derive(Debug)]
pub(crate) struct GopCache {
    limit: usize,
    packets: Vec<Packet>,
}

impl GopCache {
    pub(crate) fn new(limit: usize) -> Self {
        GopCache {
            limit,
            packets: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, p: &Packet) {
        if self.limit == 0 {
            return;
        }
        if p.keyframe_start {
            self.packets.clear();
        } else if self.packets.is_empty() {
            return;
        }
        if self.packets.len() >= self.limit {
            // GOP too long to replay: give up on it until the next keyframe.
            self.packets.clear();
            return;
        }
        self.packets.push(p.clone());
    }

    /// The cached packets with timestamps compressed so that a decoder catches up at once:
    /// frame k of F gets `last_ts - (F - 1 - k)`, one tick apart, ending on the real timestamp
    /// of the latest frame so that live packets continue seamlessly.
    pub(crate) fn replay(&self) -> Vec<Packet> {
        let frames = frame_count(&self.packets);
        let Some(last_ts) = self.packets.last().map(|p| p.ts) else {
            return Vec::new();
        };
        let mut frame = 0u32;
        let mut prev_ts = self.packets.first().map(|p| p.ts);
        self.packets
            .iter()
            .map(|p| {
                if Some(p.ts) != prev_ts {
                    frame += 1;
                    prev_ts = Some(p.ts);
                }
                let mut p = p.clone();
                p.ts = last_ts.wrapping_sub(frames.saturating_sub(1).saturating_sub(frame));
                p
            })
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }
}

fn frame_count(packets: &[Packet]) -> u32 {
    let mut count = 0u32;
    let mut prev = None;
    for p in packets {
        if Some(p.ts) != prev {
            count += 1;
            prev = Some(p.ts);
        }
    }
    count
}

/// The one SSRC a track forwards. A publisher that sends several encodings of one track
/// (simulcast layers) has only the first one forwarded; another SSRC takes over when the
/// current one has been silent for [`SourceSsrc::STALE`] (an encoder restart).
#[derive(Debug, Default)]
pub(crate) struct SourceSsrc {
    current: Option<(Ssrc, Instant)>,
}

impl SourceSsrc {
    const STALE: Duration = Duration::from_secs(1);

    pub(crate) fn admit(&mut self, ssrc: Ssrc, now: Instant) -> bool {
        match self.current {
            Some((s, last)) if s != ssrc && now < last + Self::STALE => false,
            _ => {
                self.current = Some((ssrc, now));
                true
            }
        }
    }
}

/// Merges keyframe requests for one track: at most one is sent per interval; requests in
/// between are remembered and sent when the interval ends.
#[derive(Debug, Default)]
pub(crate) struct KeyframeThrottle {
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    /// Returns true when a request should go out now; otherwise it is pending and
    /// [`due`](Self::due) says when.
    pub(crate) fn request(&mut self, now: Instant, interval: Duration) -> bool {
        match self.last_sent {
            Some(at) if now < at + interval => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    pub(crate) fn due(&self, interval: Duration) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(at)) => Some(at + interval),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use str0m::rtp::ExtensionValues;

    fn packet(seq: u64, ts: u32, key: bool) -> Packet {
        Packet {
            ssrc: 1.into(),
            seq: seq.into(),
            ts,
            pt: 96.into(),
            marker: false,
            payload: Arc::from(&[0u8][..]),
            ext: ExtensionValues::default(),
            arrival: Instant::now(),
            keyframe_start: key,
            clock_rate: 90_000,
            rid: None,
            layer: 0,
            size: None,
            vp8: None,
        }
    }

    #[test]
    fn gop_cache_starts_at_keyframe_and_compresses_time() {
        let mut gop = GopCache::new(100);
        gop.push(&packet(1, 0, false)); // before any keyframe: not cached
        assert_eq!(gop.len(), 0);
        gop.push(&packet(2, 3000, true));
        gop.push(&packet(3, 3000, false));
        gop.push(&packet(4, 6000, false));
        gop.push(&packet(5, 9000, false));
        let replay = gop.replay();
        let ts: Vec<u32> = replay.iter().map(|p| p.ts).collect();
        assert_eq!(ts, vec![8998, 8998, 8999, 9000]);
        gop.push(&packet(6, 12000, true));
        assert_eq!(gop.len(), 1);
    }

    #[test]
    fn gop_cache_gives_up_on_long_gops() {
        let mut gop = GopCache::new(3);
        gop.push(&packet(1, 0, true));
        gop.push(&packet(2, 1, false));
        gop.push(&packet(3, 2, false));
        gop.push(&packet(4, 3, false));
        assert_eq!(gop.len(), 0);
        assert!(gop.replay().is_empty());
    }

    #[test]
    fn one_ssrc_per_track_until_it_goes_silent() {
        let t0 = Instant::now();
        let mut s = SourceSsrc::default();
        assert!(s.admit(1.into(), t0));
        assert!(!s.admit(2.into(), t0 + Duration::from_millis(10)));
        assert!(s.admit(1.into(), t0 + Duration::from_millis(20)));
        assert!(s.admit(2.into(), t0 + Duration::from_millis(1100)));
        assert!(!s.admit(1.into(), t0 + Duration::from_millis(1110)));
    }

    #[test]
    fn keyframe_requests_are_merged() {
        let t0 = Instant::now();
        let i = Duration::from_millis(500);
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t0, i));
        assert!(!k.request(t0 + Duration::from_millis(10), i));
        assert!(!k.request(t0 + Duration::from_millis(20), i));
        assert_eq!(k.due(i), Some(t0 + i));
        assert!(k.request(t0 + i, i));
        assert_eq!(k.due(i), None);
    }
}
