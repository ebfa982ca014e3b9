//! Accepting an offer: parse it, build the peer's `Rtc` with the server's candidates and
//! certificate, and write the answer. None of it needs a room, so a server does it off its
//! media loop ([`prepare`]) and hands the result to [`Sfu::admit`](crate::Sfu::admit): a
//! burst of joins costs the packet path nothing but the insertion.

use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::TcpType;
use str0m::{Candidate, Rtc};

use crate::contain::contained;
use crate::diagnosis::Diagnosis;
use crate::participant::{Participant, Role};
use crate::{CoreError, ParticipantId, SfuConfig, codec, dtls, sdp};

/// Where a receiver's bandwidth estimate starts; probing finds the rest within seconds.
const INITIAL_ESTIMATE: u64 = 1_500_000;

/// An accepted offer, ready to join a room.
#[derive(Debug)]
pub struct Prepared {
    pub(crate) participant: Participant,
    /// The audio and video sections, as str0m accepted them: (mid, kind, server's direction).
    pub(crate) sections: Vec<(Mid, MediaKind, Direction)>,
    answer: String,
}

impl Prepared {
    pub fn participant(&self) -> ParticipantId {
        self.participant.id
    }

    /// The SDP answer, ready for the HTTP body.
    pub fn answer(&self) -> &str {
        &self.answer
    }

    /// Local ICE ufrag: names the ICE session (WHIP uses it as the ETag).
    pub fn ice_ufrag(&self) -> &str {
        &self.participant.ufrag
    }

    /// Limits what a room member may do (its access token's grants): without `publish` what
    /// it offers to send is not published, without `subscribe` it is offered nothing.
    pub fn restrict(&mut self, publish: bool, subscribe: bool) {
        self.participant.may_publish = publish;
        self.participant.may_subscribe = subscribe;
    }
}

/// Accepts `offer` from a participant joining as `role`. `label` is its public id in room
/// signaling (the `msid` stream id of its tracks for others); `None` uses its participant id.
pub fn prepare(
    config: &SfuConfig,
    now: Instant,
    role: Role,
    label: Option<&str>,
    offer: &str,
) -> Result<Prepared, CoreError> {
    let parsed = sdp::parse_offer(offer)?;
    // Receivers that send transport-wide congestion control feedback get a bandwidth
    // estimate (for their video layers); publishers and receivers without TWCC do not, so
    // that nothing paces their media.
    let bwe = config.bandwidth_estimation && role != Role::Publisher && sdp::offers_twcc(offer);
    let (mut rtc, answer) = contained("accepting an offer", || accept(config, now, parsed, bwe))??;
    let ufrag = contained("reading ICE credentials", || {
        rtc.direct_api().local_ice_credentials().ufrag
    })?;
    let sections = contained("reading the offer's media", || media_sections(&rtc, offer))?;
    check_usable_media(&rtc, role, &sections)?;

    let id = config.ids.participant();
    let label = label.map_or_else(|| id.to_string(), str::to_owned);
    // The stream id of what the server sends this participant (WHEP: whichever publisher
    // is behind it; members get per-publisher streams in server offers).
    let answer = sdp::finish_local(
        answer,
        sdp::Local::Answer {
            offer,
            stream: &label,
        },
    );
    let mut diag = Diagnosis::new(now, &config.candidates, config.ice_tcp);
    for line in offer.lines() {
        let line = line.trim();
        if line.starts_with("a=candidate:")
            && let Ok(Some(c)) = sdp::parse_candidate(line)
        {
            diag.remote_candidate(&c);
        }
    }
    let mut participant = Participant::new(id, label, role, rtc, ufrag, now, diag);
    participant.bwe = bwe;
    participant.remote_ufrag = sdp::ice_ufrag(offer).map(str::to_owned);
    Ok(Prepared {
        participant,
        sections,
        answer,
    })
}

/// A new `Rtc` with the server's candidates and certificate that accepted `offer`.
fn accept(
    config: &SfuConfig,
    now: Instant,
    offer: SdpOffer,
    bwe: bool,
) -> Result<(Rtc, String), CoreError> {
    let mut builder = Rtc::builder()
        .set_rtp_mode(true)
        // Once a second: NACK and retransmission counts for the metrics.
        .set_stats_interval(Some(std::time::Duration::from_secs(1)))
        .set_crypto_provider(dtls::crypto_provider());
    if bwe {
        builder = builder.enable_bwe(Some(Bitrate::bps(INITIAL_ESTIMATE)));
    }
    if let Some(cert) = dtls::certificate() {
        builder = builder.set_dtls_cert(cert);
    }
    let mut rtc = codec::configure(builder).build(now);
    for addr in &config.candidates {
        let candidate = Candidate::host(*addr, "udp")
            .map_err(|e| CoreError::OfferRejected(format!("local candidate {addr}: {e}")))?;
        rtc.add_local_candidate(candidate);
    }
    if config.ice_tcp {
        // Passive: peers connect to us. str0m ranks TCP host candidates below UDP ones
        // (type preference 90 against 126), so UDP wins where both work.
        for addr in &config.candidates {
            let candidate = Candidate::builder()
                .tcp()
                .host(*addr)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| {
                    CoreError::OfferRejected(format!("local TCP candidate {addr}: {e}"))
                })?;
            rtc.add_local_candidate(candidate);
        }
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| CoreError::OfferRejected(e.to_string()))?;
    Ok((rtc, answer.to_sdp_string()))
}

/// The audio and video sections the offer declared, as str0m accepted them.
fn media_sections(rtc: &Rtc, offer: &str) -> Vec<(Mid, MediaKind, Direction)> {
    sdp::mids(offer)
        .filter_map(|mid| {
            let media = rtc.media(Mid::from(mid))?;
            (!media.disabled()).then(|| (media.mid(), media.kind(), media.direction()))
        })
        .collect()
}

/// A new participant must bring at least one audio or video section that huddle can forward
/// in the direction its role needs.
fn check_usable_media(
    rtc: &Rtc,
    role: Role,
    sections: &[(Mid, MediaKind, Direction)],
) -> Result<(), CoreError> {
    for (mid, _, direction) in sections {
        let direction_ok = match role {
            Role::Publisher => matches!(direction, Direction::RecvOnly | Direction::SendRecv),
            Role::Viewer => matches!(direction, Direction::SendOnly | Direction::SendRecv),
            // Members receive through later server offers and may publish nothing.
            Role::Member => return Ok(()),
        };
        if direction_ok && !codec::negotiated(rtc, *mid).is_empty() {
            return Ok(());
        }
    }
    let what = match role {
        Role::Publisher | Role::Member => "sends",
        Role::Viewer => "receives",
    };
    Err(CoreError::NoUsableMedia(format!(
        "{} usable audio/video section(s) in the offer, none {what} Opus, VP8, VP9, H264 (packetization-mode 1) or AV1",
        sections.len()
    )))
}
