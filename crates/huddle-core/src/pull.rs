//! A pull: this side's end of a session that receives a room's feed from another node, as
//! a viewer there, and turns it into [`Relay`] messages for a room here (an edge fed over a
//! [`RelayLink`](crate::RelayLink), exactly as one worker feeds another).
//!
//! The other node sees an ordinary WHEP viewer: the feed arrives encrypted, retransmissions
//! and bandwidth estimation work as for any viewer, and keyframe requests from the viewers
//! here go back as PLIs. Like the [`Sfu`](crate::Sfu) it is sans-IO: the caller POSTs
//! [`Pull::offer`]'s SDP, hands the answer to [`Pull::accept_answer`], and moves datagrams
//! and time in and out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::PayloadParams;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, info};

use crate::codec::{self, PtTable};
use crate::contain::contained;
use crate::sfu::{Datagram, Transmit, Transport};
use crate::track::Packet;
use crate::{CoreError, Relay, dtls};

/// Longest a pull waits for its session to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One section of the pulled session: what it carries and how to read its packets.
#[derive(Debug)]
struct Section {
    mid: Mid,
    kind: MediaKind,
    codecs: PtTable<(str0m::format::Codec, u32)>,
    /// Told to the room here (on its first packet, once the payload types are known).
    announced: bool,
}

/// This side of a pulled session.
#[derive(Debug)]
pub struct Pull {
    rtc: Rtc,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    /// The sections offered.
    mids: [(Mid, MediaKind); 2],
    sections: Vec<Section>,
    out: VecDeque<Relay>,
    transmits: VecDeque<Transmit>,
    created: Instant,
    /// When str0m wants time again.
    next: Instant,
    connected: bool,
    ended: Option<&'static str>,
    packets: u64,
}

impl Pull {
    /// A pull that will receive audio and video on `local` (its own socket's address);
    /// returns it with the SDP offer to POST to the other node's WHEP endpoint.
    pub fn offer(now: Instant, local: SocketAddr) -> Result<(Pull, String), CoreError> {
        // The other node answers as the DTLS server; str0m's own DTLS (aws-lc-rs) is the
        // client here (huddle's OpenSSL DTLS serves peers only).
        let mut builder = Rtc::builder()
            .set_rtp_mode(true)
            .set_crypto_provider(std::sync::Arc::new(str0m::crypto::from_feature_flags()));
        if let Some(cert) = dtls::certificate() {
            builder = builder.set_dtls_cert(cert);
        }
        // The codecs a viewer would offer, RED included: what the origin sends RED, the
        // viewers here get as RED or as its primary, as from a local publisher.
        let mut rtc = codec::configure(builder).build(now);
        let candidate = Candidate::host(local, "udp")
            .map_err(|e| CoreError::OfferRejected(format!("local candidate {local}: {e}")))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let audio = change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let video = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| CoreError::OfferRejected("nothing to offer".into()))?;
        // No transport-wide congestion control: the other node then neither estimates nor
        // paces this session and sends the full layer (a link between nodes is not a
        // viewer's last mile; the viewers here get their own estimates).
        let sdp: String = offer
            .to_sdp_string()
            .split_inclusive('\n')
            .filter(|l| !l.contains("transport-cc") && !l.contains("transport-wide-cc"))
            .collect();
        let pull = Pull {
            rtc,
            local,
            pending: Some(pending),
            mids: [(audio, MediaKind::Audio), (video, MediaKind::Video)],
            sections: Vec::new(),
            out: VecDeque::new(),
            transmits: VecDeque::new(),
            created: now,
            next: now,
            connected: false,
            ended: None,
            packets: 0,
        };
        Ok((pull, sdp))
    }

    /// The other node's answer.
    pub fn accept_answer(&mut self, now: Instant, answer: &str) -> Result<(), CoreError> {
        let pending = self
            .pending
            .take()
            .ok_or_else(|| CoreError::AnswerRejected("no offer is pending".into()))?;
        let parsed = SdpAnswer::from_sdp_string(answer)
            .map_err(|e| CoreError::MalformedSdp(e.to_string()))?;
        contained("accepting a pull's answer", || {
            self.rtc.sdp_api().accept_answer(pending, parsed)
        })?
        .map_err(|e| CoreError::AnswerRejected(e.to_string()))?;
        for (mid, kind) in self.mids {
            if self.rtc.media(mid).is_none_or(|m| m.disabled()) {
                continue;
            }
            let params = codec::negotiated(&self.rtc, mid);
            self.sections.push(Section {
                mid,
                kind,
                codecs: codec::codec_table(&params),
                announced: false,
            });
        }
        self.drive(now);
        Ok(())
    }

    /// A datagram that arrived on the pull's socket.
    pub fn handle_datagram(&mut self, now: Instant, datagram: Datagram<'_>) {
        let Ok(receive) = Receive::new(
            Protocol::Udp,
            datagram.source,
            datagram.destination,
            datagram.contents,
        ) else {
            debug!(source = %datagram.source, "pull: not a datagram str0m reads; dropped");
            return;
        };
        self.input(now, Input::Receive(now, receive));
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.connected && now.duration_since(self.created) > CONNECT_TIMEOUT {
            self.end("did not connect in time");
            return;
        }
        self.input(now, Input::Timeout(now));
    }

    /// A viewer here needs a keyframe of the `kind` track.
    pub fn request_keyframe(&mut self, now: Instant, kind: MediaKind) {
        let Some(mid) = self.sections.iter().find(|s| s.kind == kind).map(|s| s.mid) else {
            return;
        };
        let _ = contained("requesting a keyframe", || {
            if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
            }
        });
        self.drive(now);
    }

    /// Ends the session (the caller DELETEs it at the other node).
    pub fn close(&mut self) {
        self.end("closed");
    }

    fn input(&mut self, now: Instant, input: Input<'_>) {
        if self.ended.is_some() {
            return;
        }
        match contained("a pull's input", || self.rtc.handle_input(input)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!("pull: str0m refused an input: {e}"),
            Err(_) => self.end("str0m failed"),
        }
        self.drive(now);
    }

    fn drive(&mut self, now: Instant) {
        while self.ended.is_none() {
            let output = match contained("polling a pull", || self.rtc.poll_output()) {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    debug!("pull: {e}");
                    self.end("session error");
                    return;
                }
                Err(_) => {
                    self.end("str0m failed");
                    return;
                }
            };
            match output {
                Output::Timeout(at) => {
                    self.next = at;
                    return;
                }
                Output::Transmit(t) => self.transmits.push_back(Transmit {
                    transport: Transport::Udp,
                    source: self.local,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Output::Event(e) => self.on_event(now, e),
            }
        }
    }

    fn on_event(&mut self, now: Instant, event: RtcEvent) {
        match event {
            RtcEvent::Connected => {
                info!(
                    after_ms = now.duration_since(self.created).as_millis() as u64,
                    "pull connected"
                );
                self.connected = true;
            }
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected)
                if self.connected =>
            {
                self.end("the other node stopped answering");
            }
            RtcEvent::Closed => self.end("closed by the other node"),
            RtcEvent::RtpPacket(p) => self.on_rtp(p),
            _ => {}
        }
    }

    fn on_rtp(&mut self, p: str0m::rtp::RtpPacket) {
        let mid = self
            .rtc
            .direct_api()
            .stream_rx(&p.header.ssrc)
            .map(|rx| rx.mid());
        let Some(s) = mid.and_then(|mid| self.sections.iter_mut().find(|s| s.mid == mid)) else {
            return;
        };
        let Some((codec, clock_rate)) = s.codecs.get(p.header.payload_type) else {
            return;
        };
        if !s.announced {
            s.announced = true;
            let params: Vec<PayloadParams> = codec::negotiated(&self.rtc, s.mid);
            self.out.push_back(Relay::Track {
                kind: s.kind,
                params,
            });
        }
        self.packets += 1;
        let kind = s.kind;
        let packet = Packet::from_rtp(p, codec, clock_rate, None, 0);
        self.out.push_back(Relay::Packet { kind, packet });
    }

    fn end(&mut self, why: &'static str) {
        if self.ended.is_some() {
            return;
        }
        info!(why, packets = self.packets, "pull ended");
        self.ended = Some(why);
        for s in &self.sections {
            if s.announced {
                self.out.push_back(Relay::Ended { kind: s.kind });
            }
        }
    }

    // --- outputs --------------------------------------------------------------------------

    /// The next message for the room here.
    pub fn poll_relay(&mut self) -> Option<Relay> {
        self.out.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Instant {
        if self.connected {
            self.next
        } else {
            self.next.min(self.created + CONNECT_TIMEOUT)
        }
    }

    /// Why it ended, once it has.
    pub fn ended(&self) -> Option<&'static str> {
        self.ended
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// RTP packets received.
    pub fn packets(&self) -> u64 {
        self.packets
    }
}
