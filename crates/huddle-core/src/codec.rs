//! Which codecs huddle negotiates, and how a publisher's payload types map onto a subscriber's.

use str0m::Rtc;
use str0m::RtcConfig;
use str0m::format::{Codec, CodecConfig, PayloadParams};
use str0m::media::{Mid, Pt};

/// H264 profiles offered, all with packetization-mode 1: (pt, rtx pt, profile-level-id).
const H264_PROFILES: &[(u8, u8, u32)] = &[
    (127, 121, 0x42001f),
    (108, 109, 0x42e01f),
    (123, 119, 0x4d001f),
    (114, 115, 0x64001f),
];

/// Opus, VP8, VP9, H264 (packetization-mode 1) and AV1; nothing else.
pub(crate) fn configure(config: RtcConfig) -> RtcConfig {
    let mut config = config
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_vp9(true)
        .enable_av1(true);
    for &(pt, rtx, profile) in H264_PROFILES {
        config
            .codec_config()
            .add_h264(pt.into(), Some(rtx.into()), true, profile);
    }
    config
}

/// The negotiated payload parameters of one media section of `rtc`.
pub(crate) fn negotiated(rtc: &Rtc, mid: Mid) -> Vec<PayloadParams> {
    let Some(media) = rtc.media(mid) else {
        return Vec::new();
    };
    media
        .remote_pts()
        .iter()
        .filter_map(|pt| rtc.codec_config().find(|p| p.pt() == *pt))
        .filter(|p| p.spec().codec != Codec::Unknown)
        .copied()
        .collect()
}

/// Maps each of the publisher's payload types to the subscriber's for the same codec
/// (same codec, clock rate and compatible format parameters, as str0m matches them).
pub(crate) fn pt_map(publisher: &[PayloadParams], subscriber: &[PayloadParams]) -> PtTable<Pt> {
    let subscriber = CodecConfig::new_from_payload_params(subscriber.to_vec());
    let mut map = PtTable::default();
    for p in publisher {
        if let Some(s) = subscriber.match_params(*p) {
            map.set(p.pt(), s.pt());
        }
    }
    map
}

/// Something per RTP payload type (0–127), found without searching: the forwarding path
/// looks up a packet's codec and its subscriber's payload type this way.
#[derive(Clone, Debug)]
pub(crate) struct PtTable<T: Copy>([Option<T>; 128]);

impl<T: Copy> Default for PtTable<T> {
    fn default() -> Self {
        PtTable([None; 128])
    }
}

impl<T: Copy> PtTable<T> {
    pub(crate) fn get(&self, pt: Pt) -> Option<T> {
        self.0.get(usize::from(*pt)).copied().flatten()
    }

    pub(crate) fn set(&mut self, pt: Pt, value: T) {
        if let Some(slot) = self.0.get_mut(usize::from(*pt)) {
            *slot = Some(value);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

/// Codec and clock rate by payload type, for the payload types of `params`.
pub(crate) fn codec_table(params: &[PayloadParams]) -> PtTable<(Codec, u32)> {
    let mut table = PtTable::default();
    for p in params {
        table.set(p.pt(), (p.spec().codec, p.spec().clock_rate.get()));
    }
    table
}
