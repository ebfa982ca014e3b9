//! Offer/answer set-up: build the str0m `Rtc`, POST its offer, apply the answer.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, CodecConfig, PayloadParams};
use str0m::media::{Direction, MediaKind, Mid, Pt, Simulcast, SimulcastLayer};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Output, Rtc, RtcError};
use tokio::net::UdpSocket;

use crate::error::ClientError;
use crate::http::{SessionCreated, delete_session, post_offer, strip_candidates};
use crate::options::{ClientOptions, VideoCodec};
use crate::tcp::{TcpLink, only_tcp_candidates, passive_tcp_candidate};

/// H.264 profile-level-id the publisher offers (constrained baseline 3.1).
const H264_PROFILE: u32 = 0x42e01f;

/// Builds an `Rtc` in RTP mode with the codecs this side offers.
pub(crate) fn build_rtc(opts: &ClientOptions, publish: bool) -> Result<Rtc, ClientError> {
    crate::ensure_crypto_provider();
    let mut cfg = Rtc::builder()
        .set_rtp_mode(true)
        // Our packets are up to 1,200 bytes of payload; don't warn about them.
        .set_mtu(str0m::DATAGRAM_MTU_TARGET..=1500);
    if publish {
        cfg = cfg.clear_codecs().enable_opus(true, opts.red);
        match opts.video {
            Some(VideoCodec::Vp8) | None => cfg = cfg.enable_vp8(true),
            Some(VideoCodec::H264) => {
                cfg.codec_config()
                    .add_h264(108.into(), Some(109.into()), true, H264_PROFILE);
            }
        }
    } else {
        // str0m's default video codecs, as a browser would offer: VP8, VP9, H264, AV1.
        cfg = cfg
            .enable_h265(false)
            .enable_h266(false)
            .enable_opus(true, opts.red);
        if opts.lean.is_some() {
            lean_codecs(cfg.codec_config());
            cfg = cfg.set_extension_map(lean_extensions());
        }
    }
    if let Some(pts) = opts.audio_payload_types {
        let opus = crate::payload_types::opus_params(pts, opts.red)?;
        let codecs = cfg.codec_config();
        let params = std::iter::once(opus)
            .chain(
                codecs
                    .params()
                    .iter()
                    .filter(|p| p.spec().codec != Codec::Opus)
                    .copied(),
            )
            .collect();
        *codecs = CodecConfig::new_from_payload_params(params);
    }
    Ok(cfg.build(Instant::now()))
}

/// A lean viewer's codecs: the same, without RTX and without `nack` and `transport-cc`
/// feedback (PLI and FIR stay). It must not ask for, nor be sent again, the packets it
/// does not decrypt, and its transport-wide feedback would report them lost.
fn lean_codecs(codecs: &mut CodecConfig) {
    let params: Vec<PayloadParams> = codecs.params().to_vec();
    codecs.clear();
    for p in params {
        let spec = p.spec();
        codecs.add_config(
            p.pt(),
            None,
            spec.codec,
            spec.clock_rate,
            spec.channels,
            spec.format,
        );
    }
    for p in codecs.iter_mut() {
        p.set_fb_nack(false);
        p.set_fb_transport_cc(false);
    }
}

/// str0m's standard header extensions without transport-wide sequence numbers.
fn lean_extensions() -> ExtensionMap {
    let mut map = ExtensionMap::empty();
    for (id, ext) in ExtensionMap::standard().iter() {
        if *ext != Extension::TransportSequenceNumber {
            map.set(id, ext.clone());
        }
    }
    map
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
    /// [`ClientOptions::ice_tcp_only`]: the connection to the server's TCP candidate.
    pub tcp: Option<TcpLink>,
    /// The WHIP/WHEP session; `None` when another signalling carried the SDP.
    pub session: Option<SessionCreated>,
    /// When the answer arrived (or, answering, when it was delivered).
    pub signaled_at: Instant,
    pub audio_mid: Option<Mid>,
    pub video_mid: Option<Mid>,
}

/// A socket on `opts.bind_ip` and an `Rtc` with its host candidate, before any SDP.
async fn prepare(opts: &ClientOptions, publish: bool) -> Result<(Rtc, UdpSocket), ClientError> {
    let socket = UdpSocket::bind(SocketAddr::new(opts.bind_ip, 0)).await?;
    let local = socket.local_addr()?;
    let mut rtc = build_rtc(opts, publish)?;
    if !opts.ice_tcp_only {
        let cand = Candidate::host(local, "udp")
            .map_err(|e| ClientError::Protocol(format!("host candidate {local}: {e}")))?;
        rtc.add_local_candidate(cand);
    }
    drain_idle(&mut rtc)?;
    Ok((rtc, socket))
}

/// An offer with sendonly (publish) or recvonly m-lines, as `opts` asks.
struct Offer {
    sdp: String,
    pending: SdpPendingOffer,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
}

fn make_offer(rtc: &mut Rtc, opts: &ClientOptions, publish: bool) -> Result<Offer, ClientError> {
    let dir = if publish {
        Direction::SendOnly
    } else {
        Direction::RecvOnly
    };
    let mut api = rtc.sdp_api();
    let audio_mid = opts
        .audio
        .then(|| api.add_media(MediaKind::Audio, dir, None, None, None));
    let simulcast = (publish && !opts.simulcast.is_empty()).then(|| {
        let mut s = Simulcast::new();
        for l in &opts.simulcast {
            s.add_send_layer(SimulcastLayer::new(l.rid));
        }
        s
    });
    let video_mid = opts
        .video
        .map(|_| api.add_media(MediaKind::Video, dir, None, None, simulcast));
    let (offer, pending): (_, SdpPendingOffer) = api
        .apply()
        .ok_or_else(|| ClientError::Protocol("nothing to offer: no audio and no video".into()))?;
    drain_idle(rtc)?;
    let mut sdp = offer.to_sdp_string();
    if opts.obs_like {
        sdp = strip_candidates(&sdp);
    }
    Ok(Offer {
        sdp,
        pending,
        audio_mid,
        video_mid,
    })
}

fn apply_answer(rtc: &mut Rtc, pending: SdpPendingOffer, answer: &str) -> Result<(), ClientError> {
    let answer = SdpAnswer::from_sdp_string(answer)
        .map_err(|e| ClientError::Protocol(format!("unparsable answer SDP: {e}")))?;
    rtc.sdp_api().accept_answer(pending, answer)?;
    drain_idle(rtc)?;
    Ok(())
}

/// Binds a socket, makes the offer, POSTs it and applies the answer.
pub(crate) async fn negotiate(
    url: &str,
    opts: &ClientOptions,
    publish: bool,
) -> Result<Negotiated, ClientError> {
    let (mut rtc, socket) = prepare(opts, publish).await?;
    let offer = make_offer(&mut rtc, opts, publish)?;
    let session = post_offer(url, offer.sdp, opts.token.as_deref(), opts.http_timeout).await?;
    let signaled_at = Instant::now();
    let applied = if opts.ice_tcp_only {
        connect_tcp(&mut rtc, offer.pending, &session.answer)
            .await
            .map(Some)
    } else {
        apply_answer(&mut rtc, offer.pending, &session.answer).map(|()| None)
    };
    let tcp = match applied {
        Ok(tcp) => tcp,
        Err(e) => {
            // Don't leave a half-made session on the server.
            let _ = delete_session(
                &session.session_url,
                opts.token.as_deref(),
                opts.http_timeout,
            )
            .await;
            return Err(e);
        }
    };
    Ok(Negotiated {
        rtc,
        socket,
        tcp,
        session: Some(session),
        signaled_at,
        audio_mid: offer.audio_mid,
        video_mid: offer.video_mid,
    })
}

/// [`ClientOptions::ice_tcp_only`]: connects to the answer's passive TCP candidate, adds this
/// end as an active TCP candidate and applies the answer without its UDP candidates.
async fn connect_tcp(
    rtc: &mut Rtc,
    pending: SdpPendingOffer,
    answer: &str,
) -> Result<TcpLink, ClientError> {
    let to = passive_tcp_candidate(answer)
        .ok_or_else(|| ClientError::Protocol("the answer has no passive TCP candidate".into()))?;
    let (link, candidate) = TcpLink::connect(to).await?;
    rtc.add_local_candidate(candidate);
    drain_idle(rtc)?;
    apply_answer(rtc, pending, &only_tcp_candidates(answer))?;
    Ok(link)
}

/// Like [`negotiate`], but the offer goes to `exchange`, which returns the answer SDP.
pub(crate) async fn negotiate_with<F, Fut>(
    opts: &ClientOptions,
    publish: bool,
    exchange: F,
) -> Result<Negotiated, ClientError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<String, ClientError>>,
{
    let (mut rtc, socket) = prepare(opts, publish).await?;
    let offer = make_offer(&mut rtc, opts, publish)?;
    let answer = exchange(offer.sdp).await?;
    let signaled_at = Instant::now();
    apply_answer(&mut rtc, offer.pending, &answer)?;
    Ok(Negotiated {
        rtc,
        socket,
        tcp: None,
        session: None,
        signaled_at,
        audio_mid: offer.audio_mid,
        video_mid: offer.video_mid,
    })
}

/// The remote offers (receiving side): accepts `offer`, hands the answer SDP to `deliver`.
pub(crate) async fn answer_offer<F, Fut>(
    opts: &ClientOptions,
    offer: &str,
    deliver: F,
) -> Result<Negotiated, ClientError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), ClientError>>,
{
    let (mut rtc, socket) = prepare(opts, false).await?;
    let offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| ClientError::Protocol(format!("unparsable offer SDP: {e}")))?;
    let answer = rtc.sdp_api().accept_offer(offer)?;
    drain_idle(&mut rtc)?;
    let mut sdp = answer.to_sdp_string();
    if opts.obs_like {
        sdp = strip_candidates(&sdp);
    }
    deliver(sdp).await?;
    Ok(Negotiated {
        rtc,
        socket,
        tcp: None,
        session: None,
        signaled_at: Instant::now(),
        audio_mid: None,
        video_mid: None,
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
