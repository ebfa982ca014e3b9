//! Offer/answer set-up: build the str0m `Rtc`, POST its offer, apply the answer.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::PayloadParams;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::{Candidate, Output, Rtc, RtcError};
use tokio::net::UdpSocket;

use crate::error::ClientError;
use crate::http::{SessionCreated, delete_session, post_offer, strip_candidates};
use crate::options::{ClientOptions, VideoCodec};

/// H.264 profile-level-id the publisher offers (constrained baseline 3.1).
const H264_PROFILE: u32 = 0x42e01f;

/// Builds an `Rtc` in RTP mode with the codecs this side offers.
pub(crate) fn build_rtc(opts: &ClientOptions, publish: bool) -> Rtc {
    crate::ensure_crypto_provider();
    let mut cfg = Rtc::builder()
        .set_rtp_mode(true)
        // Our packets are up to 1,200 bytes of payload; don't warn about them.
        .set_mtu(str0m::DATAGRAM_MTU_TARGET..=1500);
    if publish {
        cfg = cfg.clear_codecs().enable_opus(true, false);
        match opts.video {
            Some(VideoCodec::Vp8) | None => cfg = cfg.enable_vp8(true),
            Some(VideoCodec::H264) => {
                cfg.codec_config()
                    .add_h264(108.into(), Some(109.into()), true, H264_PROFILE);
            }
        }
    } else {
        // str0m's default video codecs, as a browser would offer: VP8, VP9, H264, AV1.
        cfg = cfg.enable_h265(false).enable_h266(false);
    }
    cfg.build(Instant::now())
}

/// Polls until `Timeout` on an `Rtc` that has no remote yet (nothing can be sent).
pub(crate) fn drain_idle(rtc: &mut Rtc) -> Result<(), RtcError> {
    loop {
        if let Output::Timeout(_) = rtc.poll_output()? {
            return Ok(());
        }
    }
}

/// A peer after signalling, before its drive task starts.
pub(crate) struct Negotiated {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    pub session: SessionCreated,
    pub audio_mid: Option<Mid>,
    pub video_mid: Option<Mid>,
}

/// Binds a socket, makes the offer, POSTs it and applies the answer.
pub(crate) async fn negotiate(
    url: &str,
    opts: &ClientOptions,
    publish: bool,
) -> Result<Negotiated, ClientError> {
    let socket = UdpSocket::bind(SocketAddr::new(opts.bind_ip, 0)).await?;
    let local = socket.local_addr()?;
    let mut rtc = build_rtc(opts, publish);
    let cand = Candidate::host(local, "udp")
        .map_err(|e| ClientError::Protocol(format!("host candidate {local}: {e}")))?;
    rtc.add_local_candidate(cand);
    drain_idle(&mut rtc)?;

    let dir = if publish {
        Direction::SendOnly
    } else {
        Direction::RecvOnly
    };
    let mut api = rtc.sdp_api();
    let audio_mid = opts
        .audio
        .then(|| api.add_media(MediaKind::Audio, dir, None, None, None));
    let video_mid = opts
        .video
        .map(|_| api.add_media(MediaKind::Video, dir, None, None, None));
    let (offer, pending): (_, SdpPendingOffer) = api
        .apply()
        .ok_or_else(|| ClientError::Protocol("nothing to offer: no audio and no video".into()))?;
    drain_idle(&mut rtc)?;

    let mut offer = offer.to_sdp_string();
    if opts.obs_like {
        offer = strip_candidates(&offer);
    }
    let session = post_offer(url, offer, opts.token.as_deref(), opts.http_timeout).await?;

    let applied = SdpAnswer::from_sdp_string(&session.answer)
        .map_err(|e| ClientError::Protocol(format!("unparsable answer SDP: {e}")))
        .and_then(|answer| Ok(rtc.sdp_api().accept_answer(pending, answer)?))
        .and_then(|()| Ok(drain_idle(&mut rtc)?));
    if let Err(e) = applied {
        // Don't leave a half-made session on the server.
        let _ = delete_session(
            &session.session_url,
            opts.token.as_deref(),
            opts.http_timeout,
        )
        .await;
        return Err(e);
    }
    Ok(Negotiated {
        rtc,
        socket,
        session,
        audio_mid,
        video_mid,
    })
}

/// The payload type the answer agreed on for `mid` whose params satisfy `want`.
pub(crate) fn negotiated_pt(
    rtc: &Rtc,
    mid: Mid,
    want: impl Fn(&PayloadParams) -> bool,
) -> Option<Pt> {
    let media = rtc.media(mid)?;
    let params = rtc.codec_config().params();
    media
        .remote_pts()
        .iter()
        .copied()
        .find(|pt| params.iter().any(|p| p.pt() == *pt && want(p)))
}
