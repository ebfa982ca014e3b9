//! The endpoint: every room, participant and track of one server, driven by datagrams,
//! commands and time.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsCert;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, IceCreds, Input, Rtc};
use tracing::{debug, info, warn};

use crate::contain::contained;
use crate::participant::{Internal, Participant, Role};
use crate::room::{Room, valid_room_name};
use crate::timers::Timers;
use crate::track::Track;
use crate::{
    CoreError, Event, LeaveReason, ParticipantId, SfuConfig, TrackId, codec, demux::Demux, sdp,
};

/// A datagram received on one of the advertised addresses.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub source: SocketAddr,
    /// The advertised address it arrived on (one of [`SfuConfig::candidates`]).
    pub destination: SocketAddr,
    pub contents: &'a [u8],
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The advertised address it leaves from.
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// The answer to an accepted offer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub participant: ParticipantId,
    /// SDP answer, ready for the HTTP body.
    pub sdp: String,
    /// Local ICE ufrag: identifies the ICE session (WHIP uses it as the ETag).
    pub ice_ufrag: String,
}

/// What a trickle/restart fragment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceRestart {
    /// Candidates were added to the running ICE session.
    Trickled,
    /// The peer restarted ICE; here is the answer fragment and the new local ufrag.
    Restarted { fragment: String, ice_ufrag: String },
}

/// Counters and sizes, for metrics and for tests that check nothing leaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub rooms: usize,
    pub participants: usize,
    pub tracks: usize,
    pub subscriptions: usize,
    pub demux_ufrags: usize,
    pub demux_addrs: usize,
    pub timer_entries: usize,
    pub datagrams_unrouted: u64,
    pub datagrams_malformed: u64,
    pub packets_received: u64,
    pub packets_forwarded: u64,
    pub keyframe_requests_sent: u64,
}

/// The SFU state machine. See the [crate docs](crate) for the model and the driving loop.
#[derive(Debug)]
pub struct Sfu {
    pub(crate) config: SfuConfig,
    pub(crate) next_id: u64,
    pub(crate) rooms: HashMap<String, Room>,
    pub(crate) participants: HashMap<ParticipantId, Participant>,
    pub(crate) tracks: HashMap<TrackId, Track>,
    pub(crate) demux: Demux,
    pub(crate) timers: Timers,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) internal: VecDeque<Internal>,
    /// Subscribers written to since they were last driven (see [`Sfu::handle_datagrams`]).
    pub(crate) written: Vec<ParticipantId>,
    /// Participants to remove once the current step is done.
    pub(crate) doomed: Vec<(ParticipantId, LeaveReason)>,
    pub(crate) stats: SfuStats,
    /// The one DTLS certificate every peer connection presents.
    dtls_cert: Option<DtlsCert>,
}

impl Sfu {
    pub fn new(config: SfuConfig) -> Self {
        Sfu {
            config,
            next_id: 1,
            rooms: HashMap::new(),
            participants: HashMap::new(),
            tracks: HashMap::new(),
            demux: Demux::default(),
            timers: Timers::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            internal: VecDeque::new(),
            written: Vec::new(),
            doomed: Vec::new(),
            stats: SfuStats::default(),
            dtls_cert: crate::dtls::certificate(),
        }
    }

    pub fn config(&self) -> &SfuConfig {
        &self.config
    }

    /// Accepts a WHIP offer: a participant that publishes into `room`.
    pub fn publish(&mut self, now: Instant, room: &str, offer: &str) -> Result<Answer, CoreError> {
        self.join(now, room, offer, Role::Publisher, None)
    }

    /// Accepts a WHEP offer: a participant that receives the room's longest-present publisher,
    /// now or as soon as there is one.
    pub fn view(&mut self, now: Instant, room: &str, offer: &str) -> Result<Answer, CoreError> {
        self.join(now, room, offer, Role::Viewer, None)
    }

    /// Accepts a room member's offer (a browser): it publishes what it offers to send and
    /// receives every other track in the room through server offers ([`Event::Offer`]) once it
    /// is connected. `label` is its public id in signaling, used as the `msid` stream id of
    /// its tracks in other members' SDP.
    pub fn member(
        &mut self,
        now: Instant,
        room: &str,
        label: &str,
        offer: &str,
    ) -> Result<Answer, CoreError> {
        self.join(now, room, offer, Role::Member, Some(label))
    }

    fn join(
        &mut self,
        now: Instant,
        room: &str,
        offer: &str,
        role: Role,
        label: Option<&str>,
    ) -> Result<Answer, CoreError> {
        if !valid_room_name(room) {
            return Err(CoreError::InvalidRoomName);
        }
        if self.participants.len() >= self.config.max_participants {
            return Err(CoreError::Full(self.participants.len()));
        }
        let parsed = sdp::parse_offer(offer)?;
        let (mut rtc, answer) = contained("accepting an offer", || self.accept(now, parsed))??;
        let ice_ufrag = contained("reading ICE credentials", || {
            rtc.direct_api().local_ice_credentials().ufrag
        })?;

        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        let label = label.map_or_else(|| id.to_string(), str::to_owned);
        // The stream id of what the server sends this participant (WHEP: whichever publisher
        // is behind it; members get per-publisher streams in server offers).
        let stream = label.clone();
        let mut p = Participant::new(
            id,
            room.to_owned(),
            label,
            role,
            rtc,
            ice_ufrag.clone(),
            now,
        );
        p.remote_ufrag = sdp::ice_ufrag(offer).map(str::to_owned);

        // Accepting the offer declared the media: check it before admitting the participant.
        let sections = media_sections(&p.rtc, offer);
        check_usable_media(&p, role, &sections)?;
        // str0m's ICE agent sends no check before its first timeout, and nothing would
        // schedule one for a peer that only receives: start it now, so that huddle checks the
        // peer's candidates at once whatever its role (a full ICE agent checks both ways).
        p.handle_timeout(now);
        let mut transmits = VecDeque::new();
        p.drive(now, &mut transmits, &mut self.internal);

        self.demux.add_ufrag(&ice_ufrag, id);
        self.rooms
            .entry(room.to_owned())
            .or_insert_with(|| Room::new(room.to_owned()))
            .participants
            .push(id);
        self.participants.insert(id, p);
        self.transmits.extend(transmits);
        self.events.push_back(Event::Joined {
            room: room.to_owned(),
            participant: id,
            role,
        });
        info!(participant = %id, room, ?role, "joined");
        for (mid, kind, direction) in sections {
            self.media_added(id, mid, kind, direction);
        }
        self.refresh_room(now, room);
        self.reschedule(id);
        self.process_pending(now);
        Ok(Answer {
            participant: id,
            sdp: sdp::finish_local(
                answer.to_sdp_string(),
                sdp::Local::Answer {
                    offer,
                    stream: &stream,
                },
            ),
            ice_ufrag,
        })
    }

    /// A new `Rtc` with the server's candidates and certificate that accepted `offer`.
    fn accept(&self, now: Instant, offer: SdpOffer) -> Result<(Rtc, SdpAnswer), CoreError> {
        let mut builder = Rtc::builder()
            .set_rtp_mode(true)
            .set_crypto_provider(crate::dtls::crypto_provider());
        if let Some(cert) = &self.dtls_cert {
            builder = builder.set_dtls_cert(cert.clone());
        }
        let mut rtc = codec::configure(builder).build(now);
        for addr in &self.config.candidates {
            let candidate = Candidate::host(*addr, "udp")
                .map_err(|e| CoreError::OfferRejected(format!("local candidate {addr}: {e}")))?;
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| CoreError::OfferRejected(e.to_string()))?;
        Ok((rtc, answer))
    }

    /// Applies an `application/trickle-ice-sdpfrag` body: adds trickled candidates, or restarts
    /// ICE when the fragment carries a new ufrag and password.
    pub fn patch(
        &mut self,
        now: Instant,
        id: ParticipantId,
        fragment: &str,
    ) -> Result<IceRestart, CoreError> {
        let frag = sdp::parse_fragment(fragment)?;
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(CoreError::UnknownParticipant(id))?;
        let restart = match (&frag.ufrag, &frag.pwd) {
            (Some(ufrag), _) if p.remote_ufrag.as_deref() == Some(ufrag.as_str()) => None,
            (Some(ufrag), Some(pass)) => Some(IceCreds {
                ufrag: ufrag.clone(),
                pass: pass.clone(),
            }),
            (Some(_), None) => {
                return Err(CoreError::MalformedSdp(
                    "ICE restart needs a=ice-ufrag and a=ice-pwd".into(),
                ));
            }
            (None, _) => None,
        };
        let local = restart.as_ref().map(|_| IceCreds::new());
        let (remote, new_local) = (restart.clone(), local.clone());
        self.with_peer(now, id, "applying a trickle fragment", move |p| {
            if let (Some(remote), Some(local)) = (remote, new_local) {
                let mut api = p.rtc.direct_api();
                api.set_remote_ice_credentials(remote);
                api.set_local_ice_credentials(local);
            }
            for c in frag.candidates {
                p.rtc.add_remote_candidate(c);
            }
        })?;
        let mut outcome = IceRestart::Trickled;
        if let (Some(remote), Some(local), Some(p)) =
            (restart, local, self.participants.get_mut(&id))
        {
            self.demux.remove_ufrag(&p.ufrag, id);
            self.demux.add_ufrag(&local.ufrag, id);
            p.ufrag = local.ufrag.clone();
            p.remote_ufrag = Some(remote.ufrag);
            outcome = IceRestart::Restarted {
                fragment: restart_fragment(&local, frag.mid.as_deref(), &self.config.candidates),
                ice_ufrag: local.ufrag,
            };
        }
        if let Some(p) = self.participants.get_mut(&id) {
            p.drive(now, &mut self.transmits, &mut self.internal);
        }
        self.after_drive(id);
        self.process_pending(now);
        Ok(outcome)
    }

    /// Runs `f`, str0m calls on participant `id`'s client data, contained: should str0m
    /// panic, that participant alone is dropped and the caller gets the error.
    pub(crate) fn with_peer<T>(
        &mut self,
        now: Instant,
        id: ParticipantId,
        what: &'static str,
        f: impl FnOnce(&mut Participant) -> T,
    ) -> Result<T, CoreError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(CoreError::UnknownParticipant(id))?;
        let out = contained(what, || f(p));
        if out.is_err() {
            p.dead = Some(LeaveReason::Failed);
            self.after_drive(id);
            self.process_pending(now);
        }
        out
    }

    /// Removes a participant at its own request (WHIP/WHEP `DELETE`): DTLS is closed politely.
    pub fn leave(&mut self, now: Instant, id: ParticipantId) -> Result<(), CoreError> {
        if !self.participants.contains_key(&id) {
            return Err(CoreError::UnknownParticipant(id));
        }
        self.doomed.push((id, LeaveReason::Requested));
        self.process_pending(now);
        Ok(())
    }

    /// Feeds one received datagram. Datagrams that belong to no participant, or that str0m
    /// cannot parse, are counted and dropped.
    pub fn handle_datagram(&mut self, now: Instant, d: Datagram<'_>) {
        self.handle_datagrams(now, [d]);
    }

    /// Feeds datagrams that were read together (one `recvmmsg`). Each goes to its participant
    /// at once; the packets they carry are then written to every subscriber, and each
    /// subscriber's `Rtc` is driven once for all of them, which shares str0m's per-drive cost
    /// (a full timeout pass) across the batch when the server is busy.
    pub fn handle_datagrams<'a>(
        &mut self,
        now: Instant,
        datagrams: impl IntoIterator<Item = Datagram<'a>>,
    ) {
        for d in datagrams {
            self.receive(now, d);
        }
        self.process_pending(now);
    }

    fn receive(&mut self, now: Instant, d: Datagram<'_>) {
        let Some(id) = self.demux.route(d.source, d.contents) else {
            self.stats.datagrams_unrouted += 1;
            debug!(source = %d.source, len = d.contents.len(), "datagram for no participant");
            return;
        };
        let Ok(contents) = DatagramRecv::try_from(d.contents) else {
            self.stats.datagrams_malformed += 1;
            debug!(source = %d.source, "malformed datagram");
            return;
        };
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        p.last_heard = now;
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: d.source,
                destination: d.destination,
                contents,
            },
        );
        match contained("a datagram", || p.rtc.handle_input(input)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // A bad packet is the peer's problem, not the server's: drop it and go on.
                self.stats.datagrams_malformed += 1;
                debug!(participant = %id, "input rejected: {e}");
            }
            Err(_) => {
                p.dead = Some(LeaveReason::Failed);
                self.after_drive(id);
                return;
            }
        }
        p.drive(now, &mut self.transmits, &mut self.internal);
        self.after_drive(id);
    }

    /// Advances time: runs every participant whose deadline has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(p) = self.participants.get_mut(&id) else {
                continue;
            };
            if p.scheduled != Some(at) {
                continue; // superseded by an earlier entry
            }
            p.scheduled = None;
            if !p.connected && now >= p.created_at + self.config.connect_timeout {
                info!(participant = %id, "did not connect in time");
                p.dead = Some(LeaveReason::Timeout);
            }
            if p.connected && now >= p.last_heard + self.config.silence_timeout {
                info!(participant = %id, "nothing heard for {:?}", self.config.silence_timeout);
                p.dead = Some(LeaveReason::Timeout);
            }
            if p.rtc_deadline <= now {
                p.handle_timeout(now);
                p.drive(now, &mut self.transmits, &mut self.internal);
            }
            if p.backlog_due.is_some_and(|d| d <= now) {
                self.stats.packets_forwarded += p.drain_backlogs(now);
                p.drive(now, &mut self.transmits, &mut self.internal);
            }
            let keyframes_due = p.keyframe_due.is_some_and(|d| d <= now);
            if keyframes_due {
                p.keyframe_due = None;
                let own: Vec<TrackId> = p.tracks.iter().map(|(_, t)| *t).collect();
                for t in own {
                    let pending = self
                        .tracks
                        .get(&t)
                        .and_then(|t| {
                            t.keyframe_requests
                                .due(self.config.keyframe_request_interval)
                        })
                        .is_some();
                    if pending {
                        self.request_keyframe(now, t);
                    }
                }
            }
            self.after_drive(id);
        }
        self.process_pending(now);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.participants.get(&id)
    }

    pub fn room(&self, name: &str) -> Option<&Room> {
        self.rooms.get(name)
    }

    pub fn track(&self, id: TrackId) -> Option<&Track> {
        self.tracks.get(&id)
    }

    pub fn stats(&self) -> SfuStats {
        let (demux_ufrags, demux_addrs) = self.demux.sizes();
        SfuStats {
            rooms: self.rooms.len(),
            participants: self.participants.len(),
            tracks: self.tracks.len(),
            subscriptions: self.tracks.values().map(|t| t.subscribers.len()).sum(),
            demux_ufrags,
            demux_addrs,
            timer_entries: self.timers.len(),
            ..self.stats
        }
    }

    /// Bookkeeping after a participant's `Rtc` was driven: learn the addresses it talks to,
    /// reschedule its timer, and doom it if it died.
    pub(crate) fn after_drive(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if let Some(reason) = p.dead {
            if !self.doomed.iter().any(|(d, _)| *d == id) {
                self.doomed.push((id, reason));
            }
            return;
        }
        self.reschedule(id);
    }

    /// Drives every subscriber that had packets written since its last drive, once.
    fn drive_written(&mut self, now: Instant) {
        for id in std::mem::take(&mut self.written) {
            if let Some(p) = self.participants.get_mut(&id) {
                p.written = false;
                p.drive(now, &mut self.transmits, &mut self.internal);
                self.after_drive(id);
            }
        }
    }

    fn reschedule(&mut self, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let at = p.next_deadline(&self.config);
        self.timers.schedule(id, at, &mut p.scheduled);
    }

    /// Handles what driving produced, until nothing is left.
    pub(crate) fn process_pending(&mut self, now: Instant) {
        loop {
            while let Some(item) = self.internal.pop_front() {
                match item {
                    Internal::Rtp(id, packet) => self.forward(now, id, packet),
                    Internal::Transmitted(id, addr) => {
                        if let Some(p) = self.participants.get_mut(&id) {
                            self.demux.learn_addr(addr, id, &mut p.addrs);
                        }
                    }
                    Internal::Connected(id) => {
                        info!(participant = %id, "connected");
                        self.events.push_back(Event::Connected { participant: id });
                        let video: Vec<(Mid, TrackId)> = self
                            .participants
                            .get(&id)
                            .map(|p| {
                                p.subscriptions
                                    .iter()
                                    .filter_map(|s| Some((s.mid, s.track?)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        for (mid, track) in video {
                            self.start_video(now, id, mid, track);
                        }
                        self.negotiate(now, id);
                    }
                    Internal::Message(id, data) => {
                        if let Some(p) = self.participants.get(&id) {
                            self.events.push_back(Event::Message {
                                room: p.room.clone(),
                                participant: id,
                                data,
                            });
                        }
                    }
                    Internal::KeyframeRequest(id, mid) => {
                        let track = self
                            .participants
                            .get_mut(&id)
                            .and_then(|p| p.subscription_mut(mid))
                            .and_then(|s| s.track);
                        if let Some(t) = track {
                            self.request_keyframe(now, t);
                        }
                    }
                }
            }
            if !self.written.is_empty() {
                self.drive_written(now);
                continue;
            }
            let Some((id, reason)) = self.doomed.pop() else {
                break;
            };
            self.remove(now, id, reason);
        }
    }

    fn media_added(&mut self, id: ParticipantId, mid: Mid, kind: MediaKind, direction: Direction) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let room = p.room.clone();
        let receiving = matches!(direction, Direction::RecvOnly | Direction::SendRecv);
        let sending = matches!(direction, Direction::SendOnly | Direction::SendRecv);
        if receiving && matches!(p.role, Role::Publisher | Role::Member) {
            let params = codec::negotiated(&p.rtc, mid);
            if params.is_empty() {
                warn!(participant = %id, %mid, "no forwardable codec negotiated; ignoring section");
                return;
            }
            let track = TrackId(self.next_id);
            self.next_id += 1;
            p.tracks.push((mid, track));
            self.tracks.insert(
                track,
                Track::new(track, id, mid, kind, params, self.config.gop_cache_packets),
            );
            info!(participant = %id, %track, ?kind, "track published");
            self.events.push_back(Event::TrackPublished {
                room,
                participant: id,
                track,
                kind,
            });
        } else if sending && p.role == Role::Viewer {
            p.subscriptions
                .push(crate::subscription::Subscription::new(mid, kind));
        }
    }

    /// Removes a participant and everything that hangs off it.
    fn remove(&mut self, now: Instant, id: ParticipantId, reason: LeaveReason) {
        let Some(mut p) = self.participants.remove(&id) else {
            return;
        };
        if reason == LeaveReason::Requested {
            // Say goodbye (RTCP BYE, DTLS close_notify) while the peer still listens.
            if contained("closing", || p.rtc.close()).is_ok_and(|r| r.is_ok()) {
                let mut ignored = VecDeque::new();
                p.drive(now, &mut self.transmits, &mut ignored);
            }
        }
        self.demux.remove_ufrag(&p.ufrag, id);
        for addr in &p.addrs {
            self.demux.forget_addr(*addr, id);
        }
        for (_, track) in &p.tracks {
            let Some(t) = self.tracks.remove(track) else {
                continue;
            };
            for (sid, mid) in &t.subscribers {
                if let Some(sub) = self
                    .participants
                    .get_mut(sid)
                    .and_then(|s| s.subscription_mut(*mid))
                {
                    sub.detach();
                }
            }
            self.events.push_back(Event::TrackUnpublished {
                room: p.room.clone(),
                participant: id,
                track: *track,
            });
        }
        for sub in &p.subscriptions {
            if let Some(t) = sub.track.and_then(|t| self.tracks.get_mut(&t)) {
                t.subscribers.retain(|s| *s != (id, sub.mid));
            }
        }
        let mut room_empty = false;
        if let Some(r) = self.rooms.get_mut(&p.room) {
            r.participants.retain(|x| *x != id);
            room_empty = r.participants.is_empty();
        }
        if room_empty {
            self.rooms.remove(&p.room);
        }
        info!(participant = %id, room = %p.room, ?reason, "left");
        self.events.push_back(Event::Left {
            room: p.room.clone(),
            participant: id,
            reason,
        });
        if !room_empty {
            self.refresh_room(now, &p.room);
        }
    }
}

/// The audio and video sections the offer declared, as str0m accepted them: (mid, kind, the
/// server's direction).
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
    p: &Participant,
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
        if direction_ok && !codec::negotiated(&p.rtc, *mid).is_empty() {
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

/// The answer to an ICE restart: new credentials and the server's candidates (RFC 8840).
fn restart_fragment(local: &IceCreds, mid: Option<&str>, candidates: &[SocketAddr]) -> String {
    let mut f = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
        local.ufrag, local.pass
    );
    if let Some(mid) = mid {
        f.push_str(&format!("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{mid}\r\n"));
    }
    for addr in candidates {
        if let Ok(c) = Candidate::host(*addr, "udp") {
            f.push_str(&format!("a={}\r\n", c.to_sdp_string()));
        }
    }
    f.push_str("a=end-of-candidates\r\n");
    f
}
