//! A track: one media stream, received once and fanned out — published by a participant
//! here, or relayed in from another worker or node.

use std::sync::Arc;
use std::time::Instant;

use str0m::format::PayloadParams;
use str0m::media::{MediaKind, Mid, Pt, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, SeqNo, Ssrc};

use crate::codec::{self, PtTable};
use crate::layer::{Layer, MAX_LAYERS};
use crate::picture::Vp8Numbering;
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
    /// Its encodings: one, or a simulcast layer each, in the order they first arrived.
    pub(crate) layers: Vec<Layer>,
    gop_limit: usize,
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
            layers: Vec::new(),
            gop_limit: if kind == MediaKind::Video {
                gop_limit
            } else {
                0
            },
        }
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The index of the layer named `rid` (`None`: not simulcast), added on first sight.
    pub(crate) fn layer_for(&mut self, rid: Option<Rid>) -> Option<u8> {
        if let Some(i) = self.layers.iter().position(|l| l.rid == rid) {
            return u8::try_from(i).ok();
        }
        if self.layers.len() >= MAX_LAYERS {
            return None;
        }
        self.layers.push(Layer::new(rid, self.gop_limit));
        u8::try_from(self.layers.len() - 1).ok()
    }

    pub(crate) fn layer(&self, index: u8) -> Option<&Layer> {
        self.layers.get(usize::from(index))
    }

    pub(crate) fn layer_mut(&mut self, index: u8) -> Option<&mut Layer> {
        self.layers.get_mut(usize::from(index))
    }

    /// The layers sending now, lowest bitrate first.
    pub(crate) fn active_layers(&self, now: Instant) -> Vec<u8> {
        let mut active: Vec<(u64, u8)> = self
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.active(now))
            .filter_map(|(i, l)| Some((l.bitrate(now), u8::try_from(i).ok()?)))
            .collect();
        active.sort_unstable();
        active.into_iter().map(|(_, i)| i).collect()
    }

    /// More than one encoding: subscribers choose.
    pub fn is_simulcast(&self) -> bool {
        self.layers.len() > 1
    }

    /// Forget the encodings (a relayed track's publisher changed): they are learned anew.
    pub(crate) fn reset_layers(&mut self) {
        self.layers.clear();
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
    /// Which of its track's encodings it belongs to: the simulcast layer's name (kept when
    /// relayed) and its index in the track here.
    pub(crate) rid: Option<Rid>,
    pub(crate) layer: u8,
    /// On a keyframe's first packet, the picture size it announces.
    pub(crate) size: Option<(u32, u32)>,
    /// VP8: its payload descriptor, for picture numbering across source switches.
    pub(crate) vp8: Option<Vp8Numbering>,
}

impl Packet {
    pub(crate) fn from_rtp(
        p: RtpPacket,
        codec: Codec,
        clock_rate: u32,
        rid: Option<Rid>,
        layer: u8,
    ) -> Self {
        let keyframe_start = keyframe::is_keyframe_start(codec, &p.payload);
        let size = keyframe_start
            .then(|| keyframe::keyframe_size(codec, &p.payload))
            .flatten();
        let vp8 = (codec == Codec::Vp8)
            .then(|| Vp8Numbering::parse(&p.payload))
            .flatten();
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
            rid,
            layer,
            size,
            vp8,
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
