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
pub(crate) fn pt_map(publisher: &[PayloadParams], subscriber: &[PayloadParams]) -> Vec<(Pt, Pt)> {
    let subscriber = CodecConfig::new_from_payload_params(subscriber.to_vec());
    publisher
        .iter()
        .filter_map(|p| Some((p.pt(), subscriber.match_params(*p)?.pt())))
        .collect()
}
