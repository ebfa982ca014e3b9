//! Opus and its RED at payload types of the caller's choosing
//! ([`ClientOptions::audio_payload_types`](crate::ClientOptions::audio_payload_types)), as
//! a stack other than Chromium might number them.
//!
//! str0m configures Opus at 111 and RED at 63 and has no setter for the RED payload type,
//! but an answerer takes the offerer's payload types. So the parameters come from a local
//! exchange: one throwaway `Rtc` offers Opus, its SDP is renumbered, another accepts it, and
//! the Opus parameters that one negotiated (RED folded in) are the ones to configure.

use std::time::Instant;

use str0m::Rtc;
use str0m::change::SdpOffer;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, MediaKind};

use crate::error::ClientError;
use crate::options::AudioPayloadTypes;

/// str0m's own Opus and RED payload types.
const STR0M_OPUS: u8 = 111;
const STR0M_RED: u8 = 63;

/// Opus parameters at `pts.opus`, with RED at `pts.red` when `red`.
pub(crate) fn opus_params(pts: AudioPayloadTypes, red: bool) -> Result<PayloadParams, ClientError> {
    let fail = |what: String| ClientError::Options(format!("audio payload types {pts:?}: {what}"));
    let audio_only = || {
        Rtc::builder()
            .clear_codecs()
            .enable_opus(true, red)
            .build(Instant::now())
    };
    let mut offerer = audio_only();
    let mut api = offerer.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, _) = api.apply().ok_or_else(|| fail("no offer".into()))?;
    let sdp = renumber(&offer.to_sdp_string(), pts);
    let offer = SdpOffer::from_sdp_string(&sdp).map_err(|e| fail(e.to_string()))?;
    let mut answerer = audio_only();
    answerer
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| fail(e.to_string()))?;
    let opus = answerer
        .codec_config()
        .params()
        .iter()
        .find(|p| p.spec().codec == Codec::Opus)
        .copied()
        .ok_or_else(|| fail("no Opus negotiated".into()))?;
    let want_red = red.then(|| pts.red.into());
    if opus.pt() != pts.opus.into() || opus.red() != want_red {
        return Err(fail(format!(
            "negotiated Opus {} with RED {:?}",
            opus.pt(),
            opus.red()
        )));
    }
    Ok(opus)
}

/// `sdp` with str0m's Opus and RED payload types replaced by `pts` in the audio m-line and
/// in the attributes that name a payload type (`rtpmap`, `fmtp`, `rtcp-fb`, and RED's
/// `fmtp` list of the Opus payload types it carries).
fn renumber(sdp: &str, pts: AudioPayloadTypes) -> String {
    let map = |pt: &str| match pt.parse::<u8>() {
        Ok(STR0M_OPUS) => pts.opus.to_string(),
        Ok(STR0M_RED) => pts.red.to_string(),
        _ => pt.to_owned(),
    };
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        let renumbered = if line.starts_with("m=audio ") {
            let fields: Vec<&str> = line.split(' ').collect();
            fields
                .iter()
                .enumerate()
                .map(|(i, f)| if i >= 3 { map(f) } else { (*f).to_owned() })
                .collect::<Vec<_>>()
                .join(" ")
        } else if let Some((attr, rest)) = ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"]
            .iter()
            .find_map(|a| line.strip_prefix(a).map(|rest| (*a, rest)))
        {
            let (pt, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let value = if attr == "a=fmtp:" && pt == STR0M_RED.to_string() {
                value.split('/').map(map).collect::<Vec<_>>().join("/")
            } else {
                value.to_owned()
            };
            format!("{attr}{} {value}", map(pt))
        } else {
            line.to_owned()
        };
        out.push_str(&renumbered);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTS: AudioPayloadTypes = AudioPayloadTypes {
        opus: 109,
        red: 121,
    };

    #[test]
    fn opus_and_red_take_the_chosen_payload_types() {
        crate::ensure_crypto_provider();
        let opus = opus_params(PTS, true).unwrap();
        assert_eq!((opus.pt(), opus.red()), (109.into(), Some(121.into())));
        assert_eq!(opus.spec().format.use_inband_fec, Some(true));
        let plain = opus_params(PTS, false).unwrap();
        assert_eq!((plain.pt(), plain.red()), (109.into(), None));
    }

    #[test]
    fn only_the_audio_payload_types_are_renumbered() {
        let sdp = "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\na=rtpmap:111 opus/48000/2\r\n\
                   a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\n\
                   a=fmtp:63 111/111\r\na=rtcp-fb:111 transport-cc\r\na=mid:0\r\n";
        assert_eq!(
            renumber(sdp, PTS),
            "m=audio 9 UDP/TLS/RTP/SAVPF 109 121\r\na=rtpmap:109 opus/48000/2\r\n\
             a=fmtp:109 minptime=10;useinbandfec=1\r\na=rtpmap:121 red/48000/2\r\n\
             a=fmtp:121 109/109\r\na=rtcp-fb:109 transport-cc\r\na=mid:0\r\n"
        );
    }
}
