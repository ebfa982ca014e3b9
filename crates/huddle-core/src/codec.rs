//! Which codecs huddle negotiates, and how a publisher's payload types map onto a subscriber's.

use str0m::Rtc;
use str0m::RtcConfig;
use str0m::format::{Codec, CodecConfig, PayloadParams};
use str0m::media::{Mid, Pt};

use crate::red::RedAction;

/// H264 profiles offered, all with packetization-mode 1: (pt, rtx pt, profile-level-id).
const H264_PROFILES: &[(u8, u8, u32)] = &[
    (127, 121, 0x42001f),
    (108, 109, 0x42e01f),
    (123, 119, 0x4d001f),
    (114, 115, 0x64001f),
];

/// Opus (with RED, RFC 2198, when the peer offers it), VP8, VP9, H264 (packetization-mode 1)
/// and AV1; nothing else.
pub(crate) fn configure(config: RtcConfig) -> RtcConfig {
    let mut config = config
        .clear_codecs()
        .enable_opus(true, true)
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
    let config = CodecConfig::new_from_payload_params(subscriber.to_vec());
    let mut map = PtTable::default();
    for p in publisher {
        let exact = config.match_params(*p).map(|s| s.pt());
        if let Some(pt) = exact.or_else(|| baseline_peer(p, subscriber)) {
            map.set(p.pt(), pt);
        }
    }
    map
}

/// For each of the publisher's RED payload types, what a subscriber gets: the subscriber's
/// RED payload type when it negotiated RED for the same Opus (block payload types rewritten
/// from the publisher's Opus to its own), or else its plain Opus payload type and the primary
/// block alone. Adds the payload types to `pts`.
pub(crate) fn red_map(
    publisher: &[PayloadParams],
    subscriber: &[PayloadParams],
    pts: &mut PtTable<Pt>,
) -> PtTable<RedAction> {
    let mut actions = PtTable::default();
    for p in publisher {
        let (Some(red), Some(to)) = (p.red(), pts.get(p.pt())) else {
            continue;
        };
        match subscriber
            .iter()
            .find(|s| s.pt() == to)
            .and_then(|s| s.red())
        {
            Some(sub_red) => {
                pts.set(red, sub_red);
                actions.set(red, RedAction::Forward { from: p.pt(), to });
            }
            None => {
                pts.set(red, to);
                actions.set(red, RedAction::Primary);
            }
        }
    }
    actions
}

/// H.264 Baseline and Constrained Baseline (RFC 6184: profile_idc 66, the second with
/// constraint_set1) are different profiles to SDP, but a real-time encoder that announces
/// Baseline sends what a Constrained Baseline decoder takes (no FMO, ASO or redundant
/// slices). A subscriber that negotiated only one of them gets the other forwarded: a
/// viewer offering only 42e01f (what RFC 7742 requires) still sees a 42001f publisher.
fn baseline_peer(p: &PayloadParams, subscriber: &[PayloadParams]) -> Option<Pt> {
    let baseline = |p: &PayloadParams| {
        let spec = p.spec();
        (spec.codec == Codec::H264
            && spec
                .format
                .profile_level_id
                .is_some_and(|id| id >> 16 == 0x42))
        .then_some(spec.format.packetization_mode.unwrap_or(0))
    };
    let mode = baseline(p)?;
    subscriber
        .iter()
        .find(|s| baseline(s) == Some(mode))
        .map(|s| s.pt())
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
        let codec = (p.spec().codec, p.spec().clock_rate.get());
        table.set(p.pt(), codec);
        // RED carries this codec's frames (and is forwarded per subscriber: `red_map`).
        if let Some(red) = p.red() {
            table.set(red, codec);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::format::{CodecSpec, FormatParams};

    fn h264(pt: u8, profile: u32) -> PayloadParams {
        PayloadParams::new(
            pt.into(),
            None,
            CodecSpec {
                codec: Codec::H264,
                clock_rate: str0m::media::Frequency::NINETY_KHZ,
                channels: None,
                format: FormatParams {
                    packetization_mode: Some(1),
                    profile_level_id: Some(profile),
                    ..FormatParams::default()
                },
            },
        )
    }

    /// Opus as str0m configures it (111, in-band FEC), with RED on 63 or not.
    fn opus(red: bool) -> PayloadParams {
        let mut c = CodecConfig::empty();
        c.enable_opus(true, red);
        c.params()[0]
    }

    #[test]
    fn red_is_forwarded_as_red_or_as_its_primary_opus() {
        let publisher = [opus(true)];
        assert_eq!(publisher[0].red(), Some(63.into()));
        assert_eq!(publisher[0].spec().format.use_inband_fec, Some(true));
        // Both negotiated RED: forwarded as RED (block payload types rewritten from the
        // publisher's Opus to the subscriber's, the same here; see `red`'s tests).
        let both = [opus(true)];
        let mut pts = pt_map(&publisher, &both);
        let actions = red_map(&publisher, &both, &mut pts);
        assert_eq!(pts.get(111.into()), Some(111.into()));
        assert_eq!(pts.get(63.into()), Some(63.into()));
        assert_eq!(
            actions.get(63.into()),
            Some(RedAction::Forward {
                from: 111.into(),
                to: 111.into()
            })
        );
        // A subscriber without RED: RED packets go out as its plain Opus.
        let plain = [opus(false)];
        let mut pts = pt_map(&publisher, &plain);
        let actions = red_map(&publisher, &plain, &mut pts);
        assert_eq!(pts.get(63.into()), Some(111.into()));
        assert_eq!(actions.get(63.into()), Some(RedAction::Primary));
        // A publisher without RED: nothing to do.
        let mut pts = pt_map(&plain, &both);
        assert!(red_map(&plain, &both, &mut pts).is_empty());
        // The codec table admits RED packets as the Opus they carry.
        assert_eq!(
            codec_table(&publisher).get(63.into()),
            Some((Codec::Opus, 48_000))
        );
    }

    #[test]
    fn baseline_and_constrained_baseline_are_forwarded_to_each_other() {
        let publisher = [h264(99, 0x42001f), h264(101, 0x42e01f)];
        let viewer = [h264(102, 0x42e01f)];
        let map = pt_map(&publisher, &viewer);
        assert_eq!(map.get(101.into()), Some(102.into()), "exact match");
        assert_eq!(
            map.get(99.into()),
            Some(102.into()),
            "baseline to constrained baseline"
        );
        // High profile is not Baseline's family: no forwarding to a baseline-only viewer.
        let high = [h264(110, 0x64001f)];
        assert!(pt_map(&high, &viewer).is_empty());
    }
}
