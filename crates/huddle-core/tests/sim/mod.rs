//! A deterministic in-memory network for testing the core without sockets: str0m peers and
//! one [`Sfu`], datagrams delivered after a fixed latency, time advanced virtually from one
//! deadline to the next (the shape of quinn-proto's `Pair`).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use huddle_core::{Datagram, Event, ParticipantId, Sfu, SfuConfig, Transport};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc, RtcConfig};

pub const SFU_ADDR: &str = "127.0.0.1:4000";
pub const LATENCY: Duration = Duration::from_millis(5);
pub const FPS: u32 = 30;
pub const PACKETS_PER_FRAME: u64 = 3;

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

/// A received RTP packet as a test wants to look at it.
#[derive(Debug, Clone)]
pub struct Got {
    pub at: Instant,
    pub ssrc: u32,
    pub seq: u64,
    pub ts: u32,
    pub payload: Vec<u8>,
    pub kind: MediaKind,
}

pub struct Peer {
    pub name: &'static str,
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub deadline: Instant,
    pub id: Option<ParticipantId>,
    pub video: Option<(Mid, Pt, Codec)>,
    pub audio: Option<(Mid, Pt)>,
    pub mids: Vec<Mid>,
    pub got: Vec<Got>,
    pub wants_channel: bool,
    pub channel: Option<str0m::channel::ChannelId>,
    pub messages: Vec<Vec<u8>>,
    pub offers: u64,
    pub keyframe_requests: u64,
    pub connected: bool,
    /// Publisher state.
    pub frame: u64,
    pub video_seq: u64,
    pub audio_seq: u64,
    pub sent_video: Vec<Vec<u8>>,
    pub force_keyframe: bool,
    pub honour_pli: bool,
    pub gop_frames: u64,
    /// The audio level its audio packets carry (−dBov; `None`: no level extension).
    pub audio_level: Option<i8>,
    /// A simulcast publisher's layers (empty: one encoding).
    pub simulcast: Vec<SimLayer>,
    /// A peer that went silent: nothing it sends is delivered, nothing reaches it.
    pub unplugged: bool,
}

impl Peer {
    fn new(
        name: &'static str,
        addr: SocketAddr,
        now: Instant,
        config: impl FnOnce(RtcConfig) -> RtcConfig,
    ) -> Self {
        let mut rtc = config(Rtc::builder().set_rtp_mode(true)).build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Peer {
            name,
            rtc,
            addr,
            deadline: now,
            id: None,
            video: None,
            audio: None,
            mids: Vec::new(),
            got: Vec::new(),
            wants_channel: false,
            channel: None,
            messages: Vec::new(),
            offers: 0,
            keyframe_requests: 0,
            connected: false,
            frame: 0,
            video_seq: 100,
            audio_seq: 7000,
            sent_video: Vec::new(),
            force_keyframe: true,
            honour_pli: true,
            gop_frames: 60,
            audio_level: None,
            simulcast: Vec::new(),
            unplugged: false,
        }
    }

    pub fn received(&self, kind: MediaKind) -> impl Iterator<Item = &Got> {
        self.got.iter().filter(move |g| g.kind == kind)
    }
}

/// One layer of a simulcast publisher in the simulation.
#[derive(Clone, Debug)]
pub struct SimLayer {
    pub rid: &'static str,
    pub size: (u16, u16),
    /// Payload bytes per packet: the layers' bitrates differ accordingly.
    pub bytes: usize,
    pub seq: u64,
    pub sending: bool,
}

/// The standard three layers, quarter, half and full size.
pub fn three_layers() -> Vec<SimLayer> {
    [
        ("q", (320, 180), 300),
        ("h", (640, 360), 600),
        ("f", (1280, 720), 1100),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (rid, size, bytes))| SimLayer {
        rid,
        size,
        bytes,
        seq: 10_000 * (i as u64 + 1),
        sending: true,
    })
    .collect()
}

/// A VP8 payload of layer `layer` (its index, also the payload's last byte): a 15-bit
/// PictureID numbered per layer (as every encoder does), and on a key frame's first packet
/// the VP8 key frame header with the layer's picture size.
pub fn vp8_layer_payload(frame: u64, index: u64, key: bool, layer: u8, l: &SimLayer) -> Vec<u8> {
    let mut p = Vec::with_capacity(l.bytes);
    let picture = ((frame + 7_000 * u64::from(layer)) % 0x8000) as u16;
    p.push(if index == 0 { 0x90 } else { 0x80 });
    p.extend_from_slice(&[0x80, 0x80 | (picture >> 8) as u8, picture as u8]);
    if index == 0 {
        p.extend_from_slice(&[if key { 0x50 } else { 0x51 }, 0x01, 0x00]);
        if key {
            p.extend_from_slice(&[0x9d, 0x01, 0x2a]);
            p.extend_from_slice(&l.size.0.to_le_bytes());
            p.extend_from_slice(&l.size.1.to_le_bytes());
        }
    }
    p.extend_from_slice(&frame.to_be_bytes());
    p.extend_from_slice(&index.to_be_bytes());
    while p.len() < l.bytes - 1 {
        p.push((frame as u8).wrapping_mul(31).wrapping_add(p.len() as u8));
    }
    p.push(layer);
    p
}

/// The VP8 payload of packet `index` of frame `frame`: descriptor, frame tag on the first
/// packet (P bit clear for a keyframe), then bytes derived from both numbers.
pub fn vp8_payload(frame: u64, index: u64, key: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(1200);
    if index == 0 {
        p.push(0x10);
        p.extend_from_slice(&[if key { 0x50 } else { 0x51 }, 0x01, 0x00]);
    } else {
        p.push(0x00);
    }
    p.extend_from_slice(&frame.to_be_bytes());
    p.extend_from_slice(&index.to_be_bytes());
    while p.len() < 1100 {
        p.push((frame as u8).wrapping_mul(31).wrapping_add(p.len() as u8));
    }
    p
}

/// A second worker's `Sfu` (an edge), fed by relays from the first.
pub struct Edge {
    pub sfu: Sfu,
    pub addr: SocketAddr,
}

pub const EDGE_ADDR: &str = "127.0.0.1:4001";
/// Where a pull (the edge's session to the first `Sfu`, as from another node) receives.
pub const PULL_ADDR: &str = "127.0.0.1:4002";

pub struct Net {
    pub now: Instant,
    pub start: Instant,
    pub sfu: Sfu,
    pub sfu_addr: SocketAddr,
    pub edge: Option<Edge>,
    /// The edge's feed when it comes over a session to the first `Sfu` (a node's pull)
    /// rather than as relay messages from it.
    pub pull: Option<(huddle_core::Pull, huddle_core::RelayLink)>,
    /// Relay messages carried each way: (origin → edge, edge → origin).
    pub relayed: (u64, u64),
    pub peers: Vec<Peer>,
    pub events: Vec<Event>,
    /// (deliver at, from, to, bytes), in send order (one fixed latency keeps it sorted).
    wire: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    next_frame_at: Instant,
    next_audio_at: Instant,
}

impl Net {
    pub fn new() -> Self {
        Net::with_config(|c| c)
    }

    /// A network whose SFU has `edit` applied to its configuration.
    pub fn with_config(edit: impl FnOnce(SfuConfig) -> SfuConfig) -> Self {
        init();
        let now = Instant::now();
        let sfu_addr: SocketAddr = SFU_ADDR.parse().unwrap();
        Net {
            now,
            start: now,
            // The virtual clock and instant delivery make str0m's delay-based estimator see
            // congestion that is not there: forwarding is tested without it.
            sfu: Sfu::new(edit(SfuConfig {
                bandwidth_estimation: false,
                ..SfuConfig::new(vec![sfu_addr])
            })),
            sfu_addr,
            edge: None,
            pull: None,
            relayed: (0, 0),
            peers: Vec::new(),
            events: Vec::new(),
            wire: VecDeque::new(),
            next_frame_at: now,
            next_audio_at: now,
        }
    }

    fn add_peer(&mut self, name: &'static str) -> usize {
        self.add_peer_with(name, |c| c)
    }

    fn add_peer_with(
        &mut self,
        name: &'static str,
        config: impl FnOnce(RtcConfig) -> RtcConfig,
    ) -> usize {
        let n = self.peers.len() as u8 + 10;
        let addr: SocketAddr = format!("127.0.0.{n}:5000").parse().unwrap();
        self.peers.push(Peer::new(name, addr, self.now, config));
        self.peers.len() - 1
    }

    fn offer(
        &mut self,
        i: usize,
        dir: Direction,
        video: bool,
        audio: bool,
    ) -> (String, str0m::change::SdpPendingOffer) {
        let peer = &mut self.peers[i];
        let channel = peer.wants_channel;
        let mut api = peer.rtc.sdp_api();
        if channel {
            api.add_channel("chat".into());
        }
        if video {
            let simulcast = (dir == Direction::SendOnly && !peer.simulcast.is_empty()).then(|| {
                let mut s = str0m::media::Simulcast::new();
                for l in &peer.simulcast {
                    s.add_send_layer(str0m::media::SimulcastLayer::new(l.rid));
                }
                s
            });
            let mid = api.add_media(MediaKind::Video, dir, None, None, simulcast);
            peer.mids.push(mid);
        }
        if audio {
            let mid = api.add_media(MediaKind::Audio, dir, None, None, None);
            peer.mids.push(mid);
        }
        let (offer, pending): (SdpOffer, _) = api.apply().unwrap();
        (offer.to_sdp_string(), pending)
    }

    fn finish(
        &mut self,
        i: usize,
        pending: str0m::change::SdpPendingOffer,
        answer: &str,
        id: ParticipantId,
    ) {
        let peer = &mut self.peers[i];
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        peer.rtc.sdp_api().accept_answer(pending, answer).unwrap();
        peer.id = Some(id);
        self.pump(i);
    }

    /// A publisher with VP8 video (and Opus audio).
    pub fn publisher(&mut self, name: &'static str, room: &str) -> usize {
        self.sender(name, room, false, |o| o)
    }

    /// A publisher whose offer is edited before the SFU sees it.
    pub fn publisher_with(
        &mut self,
        name: &'static str,
        room: &str,
        edit: impl Fn(String) -> String,
    ) -> usize {
        self.sender(name, room, false, edit)
    }

    /// A room member: publishes VP8 + Opus and a data channel, receives the others through
    /// server offers (answered automatically in [`Net::run`]).
    pub fn member(&mut self, name: &'static str, room: &str) -> usize {
        self.sender(name, room, true, |o| o)
    }

    fn sender(
        &mut self,
        name: &'static str,
        room: &str,
        member: bool,
        edit: impl Fn(String) -> String,
    ) -> usize {
        let i = self.add_peer(name);
        self.sender_at(i, room, member, &edit)
    }

    fn sender_at(
        &mut self,
        i: usize,
        room: &str,
        member: bool,
        edit: &dyn Fn(String) -> String,
    ) -> usize {
        let name = self.peers[i].name;
        self.peers[i].wants_channel = member;
        let (offer, pending) = self.offer(i, Direction::SendOnly, true, true);
        let offer = edit(offer);
        let answer = if member {
            self.sfu.member(self.now, room, name, &offer).unwrap()
        } else {
            self.sfu.publish(self.now, room, &offer).unwrap()
        };
        self.finish(i, pending, &answer.sdp, answer.participant);
        let peer = &mut self.peers[i];
        for mid in peer.mids.clone() {
            let Some(media) = peer.rtc.media(mid) else {
                continue;
            };
            let kind = media.kind();
            let pts = media.remote_pts().to_vec();
            let params: Vec<_> = pts
                .iter()
                .filter_map(|pt| peer.rtc.codec_config().find(|p| p.pt() == *pt).copied())
                .collect();
            match kind {
                MediaKind::Video => {
                    let vp8 = params
                        .iter()
                        .find(|p| p.spec().codec == Codec::Vp8)
                        .unwrap();
                    peer.video = Some((mid, vp8.pt(), Codec::Vp8));
                }
                MediaKind::Audio => {
                    let opus = params
                        .iter()
                        .find(|p| p.spec().codec == Codec::Opus)
                        .unwrap();
                    peer.audio = Some((mid, opus.pt()));
                }
            }
        }
        assert!(peer.video.is_some() && peer.audio.is_some());
        i
    }

    /// A publisher sending its video as the three layers of [`three_layers`].
    pub fn simulcast_publisher(&mut self, name: &'static str, room: &str) -> usize {
        let i = self.add_peer(name);
        self.peers[i].simulcast = three_layers();
        self.sender_at(i, room, false, &|o| o)
    }

    /// A WHEP-style viewer receiving video and audio.
    pub fn viewer(&mut self, name: &'static str, room: &str) -> usize {
        let i = self.add_peer(name);
        let (offer, pending) = self.offer(i, Direction::RecvOnly, true, true);
        let answer = self.sfu.view(self.now, room, &offer).unwrap();
        self.finish(i, pending, &answer.sdp, answer.participant);
        i
    }

    /// A video-only viewer with its own codec configuration and an edited offer.
    pub fn viewer_with(
        &mut self,
        name: &'static str,
        room: &str,
        config: impl FnOnce(RtcConfig) -> RtcConfig,
        edit: impl Fn(String) -> String,
    ) -> Result<usize, huddle_core::CoreError> {
        let i = self.add_peer_with(name, config);
        let (offer, pending) = self.offer(i, Direction::RecvOnly, true, false);
        let answer = self.sfu.view(self.now, room, &edit(offer))?;
        self.finish(i, pending, &answer.sdp, answer.participant);
        Ok(i)
    }

    /// Adds a second worker (an edge), sharing the first one's ids.
    pub fn add_edge(&mut self) {
        let addr: SocketAddr = EDGE_ADDR.parse().unwrap();
        let config = SfuConfig {
            ids: self.sfu.config().ids.clone(),
            bandwidth_estimation: false,
            ..SfuConfig::new(vec![addr])
        };
        self.edge = Some(Edge {
            sfu: Sfu::new(config),
            addr,
        });
    }

    /// Relays `room`'s main feed from the first worker to the edge over `link`.
    pub fn relay(&mut self, room: &str, link: huddle_core::RelayLink) {
        let now = self.now;
        self.sfu.relay_to(now, room, link).unwrap();
        self.edge_sfu().relay_from(room, link).unwrap();
        self.drain_sfu();
    }

    /// Feeds the edge's `room` over `link` from a pull: a viewer session to the first `Sfu`.
    pub fn pull_to_edge(&mut self, room: &str, link: huddle_core::RelayLink) {
        let now = self.now;
        let (mut pull, offer) = huddle_core::Pull::offer(now, PULL_ADDR.parse().unwrap()).unwrap();
        let answer = self.sfu.view(now, room, &offer).unwrap();
        pull.accept_answer(now, &answer.sdp).unwrap();
        self.edge_sfu().relay_from(room, link).unwrap();
        self.pull = Some((pull, link));
        self.drain_sfu();
    }

    pub fn edge_sfu(&mut self) -> &mut Sfu {
        &mut self.edge.as_mut().expect("add_edge first").sfu
    }

    /// A viewer on the edge worker.
    pub fn edge_viewer(&mut self, name: &'static str, room: &str) -> usize {
        let i = self.add_peer(name);
        let (offer, pending) = self.offer(i, Direction::RecvOnly, true, true);
        let now = self.now;
        let answer = self.edge_sfu().view(now, room, &offer).unwrap();
        self.finish(i, pending, &answer.sdp, answer.participant);
        i
    }

    pub fn leave(&mut self, i: usize) {
        let id = self.peers[i].id.take().unwrap();
        if self.sfu.participant(id).is_some() {
            self.sfu.leave(self.now, id).unwrap();
        } else {
            let now = self.now;
            self.edge_sfu().leave(now, id).unwrap();
        }
        self.peers[i].unplugged = true;
        self.drain_sfu();
    }

    /// Drives peer `i`'s Rtc to its next timeout, putting what it sends on the wire.
    fn pump(&mut self, i: usize) {
        let now = self.now;
        let sfu_addr = self.sfu_addr;
        let peer = &mut self.peers[i];
        loop {
            match peer.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    if t <= now {
                        peer.rtc.handle_input(Input::Timeout(now)).unwrap();
                        continue;
                    }
                    peer.deadline = t;
                    break;
                }
                Output::Transmit(t) => {
                    if !peer.unplugged {
                        self.wire.push_back((
                            now + LATENCY,
                            t.source,
                            t.destination,
                            t.contents.into(),
                        ));
                    }
                }
                Output::Event(e) => match e {
                    RtcEvent::Connected => peer.connected = true,
                    RtcEvent::ChannelOpen(id, _) => peer.channel = Some(id),
                    RtcEvent::ChannelData(d) => peer.messages.push(d.data),
                    RtcEvent::KeyframeRequest(_) => {
                        peer.keyframe_requests += 1;
                        if peer.honour_pli {
                            peer.force_keyframe = true;
                        }
                    }
                    RtcEvent::RtpPacket(p) => {
                        let kind = if p.header.payload_type == peer_pt(&peer.rtc, Codec::Opus) {
                            MediaKind::Audio
                        } else {
                            MediaKind::Video
                        };
                        peer.got.push(Got {
                            at: now,
                            ssrc: *p.header.ssrc,
                            seq: *p.seq_no,
                            ts: p.header.timestamp,
                            payload: p.payload.to_vec(),
                            kind,
                        });
                    }
                    _ => {}
                },
            }
        }
        let _ = sfu_addr;
    }

    fn drain_sfu(&mut self) {
        loop {
            if let Some(edge) = &mut self.edge {
                // Relays are in-memory channels between workers: carried at once.
                let mut moved = false;
                while let Some((link, msg)) = self.sfu.poll_relay() {
                    edge.sfu.relay_in(self.now, link, msg);
                    self.relayed.0 += 1;
                    moved = true;
                }
                if let Some((pull, link)) = &mut self.pull {
                    while let Some(msg) = pull.poll_relay() {
                        edge.sfu.relay_in(self.now, *link, msg);
                        self.relayed.0 += 1;
                        moved = true;
                    }
                    while let Some(t) = pull.poll_transmit() {
                        self.wire.push_back((
                            self.now + LATENCY,
                            t.source,
                            t.destination,
                            t.contents,
                        ));
                    }
                }
                while let Some((link, msg)) = edge.sfu.poll_relay() {
                    self.relayed.1 += 1;
                    moved = true;
                    match &mut self.pull {
                        Some((pull, l)) if *l == link => match msg {
                            huddle_core::Relay::KeyframeRequest { kind, .. } => {
                                pull.request_keyframe(self.now, kind)
                            }
                            huddle_core::Relay::Unsubscribed => pull.close(),
                            _ => {}
                        },
                        _ => self.sfu.relay_in(self.now, link, msg),
                    }
                }
                while let Some(t) = edge.sfu.poll_transmit() {
                    self.wire
                        .push_back((self.now + LATENCY, t.source, t.destination, t.contents));
                }
                while let Some(e) = edge.sfu.poll_event() {
                    self.events.push(e);
                }
                if moved {
                    continue;
                }
            }
            while let Some(t) = self.sfu.poll_transmit() {
                self.wire
                    .push_back((self.now + LATENCY, t.source, t.destination, t.contents));
            }
            let Some(e) = self.sfu.poll_event() else {
                break;
            };
            match &e {
                // What a signaling layer does: hand the offer to the member, return its answer.
                Event::Offer { participant, sdp } => {
                    let Some(i) = self.peers.iter().position(|p| p.id == Some(*participant)) else {
                        panic!(
                            "offer for unknown {participant}: {:?}",
                            self.peers.iter().map(|p| p.id).collect::<Vec<_>>()
                        )
                    };
                    let offer = SdpOffer::from_sdp_string(sdp).unwrap();
                    let answer = self.peers[i].rtc.sdp_api().accept_offer(offer).unwrap();
                    self.peers[i].offers += 1;
                    self.pump(i);
                    self.sfu
                        .accept_answer(self.now, *participant, &answer.to_sdp_string())
                        .unwrap();
                }
                // And relay chat to everyone else in the room.
                Event::Message {
                    participant, data, ..
                } => {
                    let others: Vec<ParticipantId> = self
                        .peers
                        .iter()
                        .filter_map(|p| p.id)
                        .filter(|id| id != participant)
                        .collect();
                    for id in others {
                        self.sfu.send_message(self.now, id, data);
                    }
                }
                _ => {}
            }
            self.events.push(e);
        }
    }

    /// Sends a chat message on peer `i`'s data channel.
    pub fn say(&mut self, i: usize, text: &str) {
        let peer = &mut self.peers[i];
        let id = peer.channel.expect("data channel open");
        peer.rtc
            .channel(id)
            .unwrap()
            .write(false, text.as_bytes())
            .unwrap();
        self.pump(i);
    }

    /// Publishers send one video frame (several packets) every 1/FPS and audio every 20 ms.
    fn produce(&mut self) {
        let now = self.now;
        if now >= self.next_frame_at {
            self.next_frame_at += Duration::from_secs(1) / FPS;
            for i in 0..self.peers.len() {
                let peer = &mut self.peers[i];
                let Some((mid, pt, _)) = peer.video else {
                    continue;
                };
                if !peer.connected || peer.unplugged {
                    continue;
                }
                let key = peer.force_keyframe || peer.frame.is_multiple_of(peer.gop_frames);
                peer.force_keyframe = false;
                let ts = (peer.frame * 3000) as u32;
                for li in 0..peer.simulcast.len() {
                    for idx in 0..PACKETS_PER_FRAME {
                        let peer = &mut self.peers[i];
                        let Some(l) = peer.simulcast.get_mut(li).filter(|l| l.sending) else {
                            continue;
                        };
                        let payload = vp8_layer_payload(peer.frame, idx, key, li as u8, l);
                        let seq: SeqNo = l.seq.into();
                        l.seq += 1;
                        let rid = str0m::media::Rid::from(l.rid);
                        peer.sent_video.push(payload.clone());
                        let mut api = peer.rtc.direct_api();
                        let tx = api.stream_tx_by_mid(mid, Some(rid)).unwrap();
                        tx.write_rtp(
                            RtpWrite::new(pt, seq, ts, now, payload)
                                .marker(idx == PACKETS_PER_FRAME - 1)
                                .nackable(true),
                        );
                        self.pump(i);
                    }
                }
                for idx in 0..PACKETS_PER_FRAME {
                    if !self.peers[i].simulcast.is_empty() {
                        break;
                    }
                    let peer = &mut self.peers[i];
                    let payload = vp8_payload(peer.frame, idx, key);
                    peer.sent_video.push(payload.clone());
                    let seq: SeqNo = peer.video_seq.into();
                    peer.video_seq += 1;
                    let mut api = peer.rtc.direct_api();
                    let tx = api.stream_tx_by_mid(mid, None).unwrap();
                    tx.write_rtp(
                        RtpWrite::new(pt, seq, ts, now, payload)
                            .marker(idx == PACKETS_PER_FRAME - 1)
                            .nackable(true),
                    );
                    self.pump(i);
                }
                self.peers[i].frame += 1;
            }
        }
        if now >= self.next_audio_at {
            self.next_audio_at += Duration::from_millis(20);
            for i in 0..self.peers.len() {
                let peer = &mut self.peers[i];
                let Some((mid, pt)) = peer.audio else {
                    continue;
                };
                if !peer.connected || peer.unplugged {
                    continue;
                }
                let seq: SeqNo = peer.audio_seq.into();
                let ts = (peer.audio_seq * 960) as u32;
                peer.audio_seq += 1;
                let payload = peer.audio_seq.to_be_bytes().repeat(10);
                let ext = str0m::rtp::ExtensionValues {
                    audio_level: peer.audio_level,
                    voice_activity: peer.audio_level.map(|l| l > -50),
                    ..Default::default()
                };
                let mut api = peer.rtc.direct_api();
                api.stream_tx_by_mid(mid, None)
                    .unwrap()
                    .write_rtp(RtpWrite::new(pt, seq, ts, now, payload).ext_vals(ext));
                self.pump(i);
            }
        }
    }

    /// Runs the network for `d` of virtual time.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.drain_sfu();
            let mut next = end.min(self.next_frame_at).min(self.next_audio_at);
            if let Some(t) = self.sfu.poll_timeout() {
                next = next.min(t);
            }
            if let Some(t) = self.edge.as_ref().and_then(|e| e.sfu.poll_timeout()) {
                next = next.min(t);
            }
            if let Some((pull, _)) = &self.pull {
                next = next.min(pull.poll_timeout());
            }
            for p in &self.peers {
                if !p.unplugged {
                    next = next.min(p.deadline);
                }
            }
            if let Some((t, ..)) = self.wire.front() {
                next = next.min(*t);
            }
            self.now = next.max(self.now);

            // Everything due now: the SFU gets its datagrams as one batch (as from recvmmsg),
            // peers one by one.
            let mut to_sfu = Vec::new();
            let mut to_edge = Vec::new();
            let edge_addr = self.edge.as_ref().map(|e| e.addr);
            let pull_addr: SocketAddr = PULL_ADDR.parse().unwrap();
            while self.wire.front().is_some_and(|(t, ..)| *t <= self.now) {
                let (_, from, to, bytes) = self.wire.pop_front().unwrap();
                if to == self.sfu_addr {
                    to_sfu.push((from, to, bytes));
                } else if Some(to) == edge_addr {
                    to_edge.push((from, to, bytes));
                } else if let Some((pull, _)) = self.pull.as_mut().filter(|_| to == pull_addr) {
                    let datagram = Datagram {
                        transport: Transport::Udp,
                        source: from,
                        destination: to,
                        contents: &bytes,
                    };
                    pull.handle_datagram(self.now, datagram);
                } else if let Some(i) = self.peers.iter().position(|p| p.addr == to && !p.unplugged)
                {
                    let input = Input::Receive(
                        self.now,
                        Receive {
                            proto: Protocol::Udp,
                            source: from,
                            destination: to,
                            contents: bytes.as_slice().try_into().unwrap(),
                        },
                    );
                    self.peers[i].rtc.handle_input(input).unwrap();
                    self.pump(i);
                }
            }
            if !to_sfu.is_empty() {
                let batch = to_sfu.iter().map(|(from, to, bytes)| Datagram {
                    transport: Transport::Udp,
                    source: *from,
                    destination: *to,
                    contents: bytes,
                });
                self.sfu.handle_datagrams(self.now, batch);
            }
            if let Some(edge) = &mut self.edge {
                let batch = to_edge.iter().map(|(from, to, bytes)| Datagram {
                    transport: Transport::Udp,
                    source: *from,
                    destination: *to,
                    contents: bytes,
                });
                edge.sfu.handle_datagrams(self.now, batch);
                if edge.sfu.poll_timeout().is_some_and(|t| t <= self.now) {
                    edge.sfu.handle_timeout(self.now);
                }
            }
            if let Some((pull, _)) = &mut self.pull
                && pull.poll_timeout() <= self.now
            {
                pull.handle_timeout(self.now);
            }
            self.drain_sfu();
            if self.sfu.poll_timeout().is_some_and(|t| t <= self.now) {
                self.sfu.handle_timeout(self.now);
            }
            for i in 0..self.peers.len() {
                if !self.peers[i].unplugged && self.peers[i].deadline <= self.now {
                    let now = self.now;
                    self.peers[i].rtc.handle_input(Input::Timeout(now)).unwrap();
                    self.pump(i);
                }
            }
            self.produce();
            // Guarantee progress when every deadline is now.
            if self.now < end && next <= self.now {
                self.now += Duration::from_micros(100);
            }
        }
        self.drain_sfu();
    }

    /// Makes publisher `i` write `count` video packets and returns the datagrams it sent to the
    /// SFU instead of delivering them (for benchmarks that replay them).
    pub fn capture_video(
        &mut self,
        i: usize,
        count: usize,
    ) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
        let (mid, pt, _) = self.peers[i].video.unwrap();
        let mut out = Vec::with_capacity(count);
        for n in 0..count {
            let peer = &mut self.peers[i];
            let payload = vp8_payload(peer.frame, n as u64 % PACKETS_PER_FRAME, false);
            let seq: SeqNo = peer.video_seq.into();
            peer.video_seq += 1;
            let ts = (peer.frame * 3000) as u32;
            if n as u64 % PACKETS_PER_FRAME == PACKETS_PER_FRAME - 1 {
                peer.frame += 1;
            }
            let now = self.now;
            let mut api = peer.rtc.direct_api();
            api.stream_tx_by_mid(mid, None)
                .unwrap()
                .write_rtp(RtpWrite::new(pt, seq, ts, now, payload).nackable(true));
            self.pump(i);
            let sfu = self.sfu_addr;
            let mut keep = VecDeque::new();
            while let Some(d) = self.wire.pop_front() {
                if d.2 == sfu
                    && d.1 == self.peers[i].addr
                    && d.3.first().is_some_and(|b| (128..=191).contains(b))
                {
                    out.push((d.1, d.2, d.3));
                } else {
                    keep.push_back(d);
                }
            }
            self.wire = keep;
        }
        out
    }

    /// Sends raw bytes to the SFU from an arbitrary address.
    pub fn inject(&mut self, from: &str, bytes: &[u8]) {
        let d = Datagram {
            transport: Transport::Udp,
            source: from.parse().unwrap(),
            destination: self.sfu_addr,
            contents: bytes,
        };
        self.sfu.handle_datagram(self.now, d);
        self.drain_sfu();
    }

    pub fn request_keyframe_from_viewer(&mut self, i: usize) {
        let peer = &mut self.peers[i];
        let mid = peer.mids[0];
        if let Some(rx) = peer.rtc.direct_api().stream_rx_by_mid(mid, None) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
        }
        self.pump(i);
    }
}

fn peer_pt(rtc: &Rtc, codec: Codec) -> Pt {
    rtc.codec_config()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
        .unwrap_or(Pt::from(255))
}
