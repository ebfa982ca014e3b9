//! A track: one media stream, received once and fanned out — published by a participant
//! here, or relayed in from another worker or node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpPacket, SeqNo, Ssrc};

use crate::codec::{self, PtTable};
use crate::relay::RelayLink;
use crate::{Codec, ParticipantId, TrackId, keyframe};

/// Where a track's packets come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A participant in this room publishes it on its `mid`.
    Local { owner: ParticipantId, mid: Mid },
    /// Another worker (or node) relays it in over `link`.
    Relay(RelayLink),
}

/// Which subscription of which participant receives a track: the participant and the slot
/// of its subscription (stable for the subscription's life).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SubRef {
    pub participant: ParticipantId,
    pub slot: usize,
}

/// One media stream.
#[derive(Debug)]
pub struct Track {
    pub id: TrackId,
    pub kind: MediaKind,
    pub source: Source,
    /// The payload types negotiated with the publisher for this stream.
    pub(crate) params: Vec<PayloadParams>,
    codecs: PtTable<(Codec, u32)>,
    /// Local subscribers.
    pub(crate) subscribers: Vec<SubRef>,
    /// Other workers or nodes this track is relayed to, once each.
    pub(crate) downstreams: Vec<RelayLink>,
    pub(crate) gop: GopCache,
    pub(crate) keyframe_requests: KeyframeThrottle,
    pub(crate) ssrc: SourceSsrc,
}

impl Track {
    pub(crate) fn new(
        id: TrackId,
        source: Source,
        kind: MediaKind,
        params: Vec<PayloadParams>,
        gop_limit: usize,
    ) -> Self {
        Track {
            id,
            kind,
            source,
            codecs: codec::codec_table(&params),
            params,
            subscribers: Vec::new(),
            downstreams: Vec::new(),
            gop: GopCache::new(if kind == MediaKind::Video {
                gop_limit
            } else {
                0
            }),
            keyframe_requests: KeyframeThrottle::default(),
            ssrc: SourceSsrc::default(),
        }
    }

    /// The publishing participant, for a local track.
    pub fn owner(&self) -> Option<ParticipantId> {
        match self.source {
            Source::Local { owner, .. } => Some(owner),
            Source::Relay(_) => None,
        }
    }

    pub fn codecs(&self) -> Vec<Codec> {
        let mut codecs: Vec<Codec> = self.params.iter().map(|p| p.spec().codec).collect();
        codecs.dedup();
        codecs
    }

    /// Codec and clock rate of one of the track's payload types.
    pub(crate) fn codec_of(&self, pt: Pt) -> Option<(Codec, u32)> {
        self.codecs.get(pt)
    }

    /// The relayed publisher changed codecs or payload types: forward by the new ones.
    pub(crate) fn set_params(&mut self, params: Vec<PayloadParams>) {
        self.codecs = codec::codec_table(&params);
        self.params = params;
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }
}

/// One received RTP packet, as forwarding needs it: cheap to clone (the payload is shared),
/// and `Send`, so that it can be relayed to another worker as it is.
#[derive(Clone, Debug)]
pub struct Packet {
    pub(crate) ssrc: Ssrc,
    pub(crate) seq: SeqNo,
    pub(crate) ts: u32,
    pub(crate) pt: Pt,
    pub(crate) marker: bool,
    pub(crate) payload: Arc<[u8]>,
    pub(crate) ext: ExtensionValues,
    pub(crate) arrival: Instant,
    pub(crate) keyframe_start: bool,
    pub(crate) clock_rate: u32,
}

impl Packet {
    pub(crate) fn from_rtp(p: RtpPacket, codec: Codec, clock_rate: u32) -> Self {
        let keyframe_start = keyframe::is_keyframe_start(codec, &p.payload);
        let h = &p.header;
        Packet {
            ssrc: h.ssrc,
            seq: p.seq_no,
            ts: h.timestamp,
            pt: h.payload_type,
            marker: h.marker,
            ext: ExtensionValues {
                audio_level: h.ext_vals.audio_level,
                voice_activity: h.ext_vals.voice_activity,
                video_orientation: h.ext_vals.video_orientation,
                ..ExtensionValues::default()
            },
            payload: p.payload,
            arrival: p.timestamp,
            keyframe_start,
            clock_rate,
        }
    }

    /// The payload, as the publisher sent it.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// When it arrived.
    pub fn arrival(&self) -> Instant {
        self.arrival
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
