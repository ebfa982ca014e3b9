//! The endpoint: the rooms of one media worker, driven by datagrams, commands, relay
//! messages and time. It finds where each input goes (the demux, the timer heap, the relay
//! links) and hands it to that room; the rooms do the rest.

use std::net::SocketAddr;
use std::time::Instant;

use rustc_hash::FxHashMap;
use slab::Slab;
use std::collections::HashMap;
use str0m::change::SdpAnswer;
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, IceCreds, Input};
use tracing::debug;

use crate::accept::{Prepared, prepare};
use crate::contain::contained;
use crate::demux::{Demux, Route};
use crate::diagnosis::Kind;
use crate::out::Out;
use crate::participant::{Participant, Role};
use crate::relay::{Feed, Relay, RelayLink};
use crate::room::{Ctx, Room, valid_room_name};
use crate::timers::Timers;
use crate::track::Track;
use crate::{CoreError, Event, ParticipantId, SfuConfig, TrackId, sdp};

/// How a datagram travels: as a UDP datagram, or as one RFC 4571 frame on a TCP connection
/// (ICE-TCP, RFC 6544), where `source`/`destination` are the connection's two ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl Transport {
    pub(crate) fn of(proto: Protocol) -> Transport {
        match proto {
            Protocol::Udp => Transport::Udp,
            Protocol::Tcp | Protocol::SslTcp | Protocol::Tls => Transport::Tcp,
        }
    }

    pub(crate) fn protocol(self) -> Protocol {
        match self {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        }
    }

    /// `udp` or `tcp`, as in SDP candidates.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// A datagram received on one of the advertised addresses.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    pub transport: Transport,
    pub source: SocketAddr,
    /// The advertised address it arrived on (one of [`SfuConfig::candidates`]).
    pub destination: SocketAddr,
    pub contents: &'a [u8],
}

/// A datagram to send: over UDP, or (ICE-TCP) as a frame on the TCP connection whose peer
/// is `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub transport: Transport,
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
    pub relay_links: usize,
    pub demux_ufrags: usize,
    pub demux_addrs: usize,
    pub timer_entries: usize,
    pub datagrams_unrouted: u64,
    pub datagrams_malformed: u64,
    pub packets_received: u64,
    pub packets_forwarded: u64,
    /// Packets handed to relays (once per link, whatever the viewers behind it).
    pub packets_relayed: u64,
    pub keyframe_requests_sent: u64,
    /// Video layer changes decided for subscribers, by the reason for the new choice
    /// (indexed by [`crate::Reason::index`]), and how many of them were pauses.
    pub layer_switches: [u64; crate::Reason::COUNT],
    pub pauses: u64,
    /// Subscribers' bandwidth estimators restarted because one stayed put below what its
    /// subscriber wants on a clean link.
    pub estimator_restarts: u64,
    /// NACKs received from subscribers, retransmissions sent, NACKs sent to publishers.
    pub nacks_received: u64,
    pub retransmissions: u64,
    pub nacks_sent: u64,
    /// Participants woken by a deadline: what drives a subscriber's `Rtc` besides the
    /// packets written to it.
    pub timer_wakeups: u64,
}

impl std::ops::Add for SfuStats {
    type Output = SfuStats;

    /// Two workers' figures together.
    fn add(self, b: SfuStats) -> SfuStats {
        SfuStats {
            rooms: self.rooms + b.rooms,
            participants: self.participants + b.participants,
            tracks: self.tracks + b.tracks,
            subscriptions: self.subscriptions + b.subscriptions,
            relay_links: self.relay_links + b.relay_links,
            demux_ufrags: self.demux_ufrags + b.demux_ufrags,
            demux_addrs: self.demux_addrs + b.demux_addrs,
            timer_entries: self.timer_entries + b.timer_entries,
            datagrams_unrouted: self.datagrams_unrouted + b.datagrams_unrouted,
            datagrams_malformed: self.datagrams_malformed + b.datagrams_malformed,
            packets_received: self.packets_received + b.packets_received,
            packets_forwarded: self.packets_forwarded + b.packets_forwarded,
            packets_relayed: self.packets_relayed + b.packets_relayed,
            keyframe_requests_sent: self.keyframe_requests_sent + b.keyframe_requests_sent,
            layer_switches: std::array::from_fn(|i| {
                self.layer_switches.get(i).copied().unwrap_or(0)
                    + b.layer_switches.get(i).copied().unwrap_or(0)
            }),
            pauses: self.pauses + b.pauses,
            estimator_restarts: self.estimator_restarts + b.estimator_restarts,
            nacks_received: self.nacks_received + b.nacks_received,
            retransmissions: self.retransmissions + b.retransmissions,
            nacks_sent: self.nacks_sent + b.nacks_sent,
            timer_wakeups: self.timer_wakeups + b.timer_wakeups,
        }
    }
}

/// The SFU state machine of one media worker. See the [crate docs](crate) for the model and
/// the driving loop.
#[derive(Debug)]
pub struct Sfu {
    config: SfuConfig,
    rooms: Slab<Room>,
    /// Room names are chosen by clients: SipHash.
    room_keys: HashMap<String, usize>,
    /// Which room each participant is in.
    routes: FxHashMap<ParticipantId, usize>,
    /// Which room each relay link feeds or is fed by.
    links: FxHashMap<RelayLink, usize>,
    demux: Demux,
    timers: Timers,
    out: Out,
}

impl Sfu {
    pub fn new(config: SfuConfig) -> Self {
        Sfu {
            config,
            rooms: Slab::new(),
            room_keys: HashMap::new(),
            routes: FxHashMap::default(),
            links: FxHashMap::default(),
            demux: Demux::default(),
            timers: Timers::default(),
            out: Out::default(),
        }
    }

    pub fn config(&self) -> &SfuConfig {
        &self.config
    }

    /// Accepts a WHIP offer: a participant that publishes into `room`.
    pub fn publish(&mut self, now: Instant, room: &str, offer: &str) -> Result<Answer, CoreError> {
        let prepared = prepare(&self.config, now, Role::Publisher, None, offer)?;
        self.admit(now, room, prepared)
    }

    /// Accepts a WHEP offer: a participant that receives the room's main feed (its
    /// longest-present publisher), now or as soon as there is one.
    pub fn view(&mut self, now: Instant, room: &str, offer: &str) -> Result<Answer, CoreError> {
        let prepared = prepare(&self.config, now, Role::Viewer, None, offer)?;
        self.admit(now, room, prepared)
    }

    /// Accepts a room member's offer (a browser): it publishes what it offers to send and
    /// receives every other track in the room through server offers ([`Event::Offer`],
    /// [`Sfu::accept_answer`]) once it is connected. `label` is its public id in signaling,
    /// used as the `msid` stream id of its tracks in other members' SDP.
    pub fn member(
        &mut self,
        now: Instant,
        room: &str,
        label: &str,
        offer: &str,
    ) -> Result<Answer, CoreError> {
        let prepared = prepare(&self.config, now, Role::Member, Some(label), offer)?;
        self.admit(now, room, prepared)
    }

    /// Lets an offer accepted with [`prepare`](crate::prepare) (possibly on another thread)
    /// join `room`.
    pub fn admit(
        &mut self,
        now: Instant,
        room: &str,
        prepared: Prepared,
    ) -> Result<Answer, CoreError> {
        if !valid_room_name(room) {
            return Err(CoreError::InvalidRoomName);
        }
        if self.routes.len() >= self.config.max_participants {
            return Err(CoreError::Full(self.routes.len()));
        }
        let answer = Answer {
            participant: prepared.participant(),
            sdp: prepared.answer().to_owned(),
            ice_ufrag: prepared.ice_ufrag().to_owned(),
        };
        let key = self.room_key(room);
        let id = answer.participant;
        self.routes.insert(id, key);
        self.demux.add_ufrag(
            &answer.ice_ufrag,
            Route {
                room: key,
                participant: id,
            },
        );
        self.in_room(now, key, |room, cx| {
            room.admit(cx, prepared.participant, prepared.sections);
        });
        Ok(answer)
    }

    /// The key of `name`'s room, created if needed.
    fn room_key(&mut self, name: &str) -> usize {
        if let Some(key) = self.room_keys.get(name) {
            return *key;
        }
        let key = self.rooms.insert(Room::new(name.to_owned()));
        self.room_keys.insert(name.to_owned(), key);
        key
    }

    /// Runs `f` on a room with a context, then applies what it left for the endpoint.
    fn in_room<T>(
        &mut self,
        now: Instant,
        key: usize,
        f: impl FnOnce(&mut Room, &mut Ctx<'_>) -> T,
    ) -> Option<T> {
        let room = self.rooms.get_mut(key)?;
        let mut cx = Ctx {
            now,
            config: &self.config,
            out: &mut self.out,
        };
        let result = f(room, &mut cx);
        self.apply(key);
        Some(result)
    }

    /// Applies a room step's bookkeeping: demux entries learned and forgotten, deadlines,
    /// and the room itself once nothing uses it.
    fn apply(&mut self, key: usize) {
        // Learned before removed: an address learned by a participant that then left is
        // forgotten with it.
        for (id, addr, forgotten) in self.out.learned.drain(..) {
            if let Some(old) = forgotten {
                self.demux.forget_addr(old, id);
            }
            if let Some(&room) = self.routes.get(&id) {
                self.demux.add_addr(
                    addr,
                    Route {
                        room,
                        participant: id,
                    },
                );
            }
        }
        for (id, at) in self.out.deadlines.drain(..) {
            self.timers.push(id, at);
        }
        for gone in self.out.removed.drain(..) {
            self.routes.remove(&gone.id);
            self.demux.remove_ufrag(&gone.ufrag, gone.id);
            for addr in gone.addrs {
                self.demux.forget_addr(addr, gone.id);
            }
        }
        if self
            .rooms
            .get(key)
            .is_some_and(|r| r.is_unused() && r.upstream.is_none())
        {
            self.remove_room(key);
        }
    }

    fn remove_room(&mut self, key: usize) {
        if let Some(room) = self.rooms.try_remove(key) {
            self.room_keys.remove(&room.name);
            self.links.retain(|_, k| *k != key);
        }
    }

    /// The room of participant `id`.
    fn room_of(&self, id: ParticipantId) -> Result<usize, CoreError> {
        self.routes
            .get(&id)
            .copied()
            .ok_or(CoreError::UnknownParticipant(id))
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
        let key = self.room_of(id)?;
        let current = self
            .rooms
            .get(key)
            .and_then(|r| r.participant(id))
            .map(|p| (p.remote_ufrag.clone(), p.ufrag.clone()))
            .ok_or(CoreError::UnknownParticipant(id))?;
        let restart = match (&frag.ufrag, &frag.pwd) {
            (Some(ufrag), _) if current.0.as_deref() == Some(ufrag.as_str()) => None,
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
        let candidates = frag.candidates;
        self.in_room(now, key, |room, cx| {
            room.with_peer(
                cx,
                id,
                "applying a trickle fragment",
                move |p: &mut Participant| {
                    if let (Some(remote), Some(local)) = (remote, new_local) {
                        let mut api = p.rtc.direct_api();
                        api.set_remote_ice_credentials(remote.clone());
                        api.set_local_ice_credentials(local.clone());
                        p.remote_ufrag = Some(remote.ufrag);
                        p.ufrag = local.ufrag;
                    }
                    for c in candidates {
                        p.diag.remote_candidate(&c);
                        p.rtc.add_remote_candidate(c);
                    }
                },
            )
        })
        .ok_or(CoreError::UnknownParticipant(id))??;
        let Some(local) = local else {
            return Ok(IceRestart::Trickled);
        };
        self.demux.remove_ufrag(&current.1, id);
        self.demux.add_ufrag(
            &local.ufrag,
            Route {
                room: key,
                participant: id,
            },
        );
        Ok(IceRestart::Restarted {
            fragment: restart_fragment(&local, frag.mid.as_deref(), &self.config.candidates),
            ice_ufrag: local.ufrag,
        })
    }

    /// Adds one trickled remote candidate (`candidate:…`, with or without `a=`).
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        id: ParticipantId,
        candidate: &str,
    ) -> Result<(), CoreError> {
        let key = self.room_of(id)?;
        let Some(c) = sdp::parse_candidate(candidate)? else {
            return Ok(());
        };
        self.in_room(now, key, |room, cx| {
            room.with_peer(cx, id, "adding a candidate", |p: &mut Participant| {
                p.diag.remote_candidate(&c);
                p.rtc.add_remote_candidate(c)
            })
        })
        .ok_or(CoreError::UnknownParticipant(id))?
    }

    /// Applies a member's answer to the outstanding server offer.
    pub fn accept_answer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        answer: &str,
    ) -> Result<(), CoreError> {
        let key = self.room_of(id)?;
        let parsed = contained("parsing an answer", || SdpAnswer::from_sdp_string(answer))?
            .map_err(|e| CoreError::MalformedSdp(e.to_string()))?;
        self.in_room(now, key, |room, cx| room.accept_answer(cx, id, parsed))
            .ok_or(CoreError::UnknownParticipant(id))?
    }

    /// Sends a data channel message to one participant. Returns false when it has no open
    /// channel or the channel's buffer is full (the message is dropped, never queued forever).
    pub fn send_message(&mut self, now: Instant, to: ParticipantId, data: &[u8]) -> bool {
        let Ok(key) = self.room_of(to) else {
            return false;
        };
        self.in_room(now, key, |room, cx| {
            room.with_peer(
                cx,
                to,
                "writing to a data channel",
                |p: &mut Participant| {
                    let channel = p.channel?;
                    p.rtc.channel(channel)?.write(false, data).ok()
                },
            )
        })
        .and_then(|r| r.ok())
        .flatten()
        .unwrap_or(false)
    }

    /// What subscriber `id` asked for `track`: the size it shows it at, a layer it pins.
    /// Returns false if it does not receive that track.
    pub fn set_preference(
        &mut self,
        now: Instant,
        id: ParticipantId,
        track: TrackId,
        preference: crate::Preference,
    ) -> Result<bool, CoreError> {
        let key = self.room_of(id)?;
        Ok(self
            .in_room(now, key, |room, cx| {
                room.set_preference(cx, id, track, preference)
            })
            .unwrap_or(false))
    }

    /// A member asks to send another track of `kind` (a screen share): the next server
    /// offer ([`Event::Offer`]) carries a section for it; its answer publishes the track.
    pub fn request_publish(
        &mut self,
        now: Instant,
        id: ParticipantId,
        kind: crate::MediaKind,
    ) -> Result<(), CoreError> {
        let key = self.room_of(id)?;
        self.in_room(now, key, |room, cx| room.request_publish(cx, id, kind))
            .ok_or(CoreError::UnknownParticipant(id))?
    }

    /// A member stops publishing one of its tracks.
    pub fn request_unpublish(
        &mut self,
        now: Instant,
        id: ParticipantId,
        track: TrackId,
    ) -> Result<(), CoreError> {
        let key = self.room_of(id)?;
        self.in_room(now, key, |room, cx| room.request_unpublish(cx, id, track))
            .ok_or(CoreError::UnknownParticipant(id))?
    }

    /// Every video subscription of `room` here: its layers and the reason for them.
    pub fn subscriptions(&self, now: Instant, room: &str) -> Vec<crate::SubscriptionReport> {
        self.room(room).map(|r| r.report(now)).unwrap_or_default()
    }

    /// Removes a participant at its own request (WHIP/WHEP `DELETE`): DTLS is closed politely.
    pub fn leave(&mut self, now: Instant, id: ParticipantId) -> Result<(), CoreError> {
        let key = self.room_of(id)?;
        self.in_room(now, key, |room, cx| room.leave(cx, id));
        Ok(())
    }

    /// Ends every session politely (DTLS close_notify, RTCP BYE): the server is going away.
    pub fn close_all(&mut self, now: Instant) {
        let everyone: Vec<ParticipantId> = self.routes.keys().copied().collect();
        for id in everyone {
            let _ = self.leave(now, id);
        }
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
        let mut touched: Vec<usize> = Vec::new();
        for d in datagrams {
            let Some(route) = self.demux.route((d.transport, d.source), d.contents) else {
                self.out.counters.datagrams_unrouted += 1;
                debug!(source = %d.source, len = d.contents.len(), "datagram for no participant");
                continue;
            };
            let Ok(contents) = DatagramRecv::try_from(d.contents) else {
                self.out.counters.datagrams_malformed += 1;
                debug!(source = %d.source, "malformed datagram");
                continue;
            };
            let input = Input::Receive(
                now,
                Receive {
                    proto: d.transport.protocol(),
                    source: d.source,
                    destination: d.destination,
                    contents,
                },
            );
            let Some(room) = self.rooms.get_mut(route.room) else {
                continue;
            };
            let mut cx = Ctx {
                now,
                config: &self.config,
                out: &mut self.out,
            };
            room.receive(&mut cx, route.participant, Kind::of(d.contents), input);
            if !touched.contains(&route.room) {
                touched.push(route.room);
            }
        }
        for key in touched {
            self.in_room(now, key, |room, cx| room.settle(cx));
        }
    }

    /// Advances time: runs every participant whose deadline has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut touched: Vec<usize> = Vec::new();
        while let Some((at, id)) = self.timers.pop_due(now) {
            let Some(&key) = self.routes.get(&id) else {
                continue;
            };
            let Some(room) = self.rooms.get_mut(key) else {
                continue;
            };
            let Some(p) = room.participants.get_mut(&id) else {
                continue;
            };
            if p.scheduled != Some(at) {
                continue; // superseded by an earlier entry
            }
            p.scheduled = None;
            self.out.counters.timer_wakeups += 1;
            let mut cx = Ctx {
                now,
                config: &self.config,
                out: &mut self.out,
            };
            room.on_timer(&mut cx, id);
            if !touched.contains(&key) {
                touched.push(key);
            }
            // Deadlines it asked for may already be due: they go back into the heap now.
            for (id, at) in self.out.deadlines.drain(..) {
                self.timers.push(id, at);
            }
        }
        for key in touched {
            self.in_room(now, key, |room, cx| room.settle(cx));
        }
    }

    // --- relays ---------------------------------------------------------------------------

    /// Starts relaying `room`'s main feed over `link` (this `Sfu` is the origin): from now on
    /// [`poll_relay`](Self::poll_relay) yields its tracks and packets for the link. The room
    /// is created if needed and lives as long as the link.
    pub fn relay_to(&mut self, now: Instant, room: &str, link: RelayLink) -> Result<(), CoreError> {
        if !valid_room_name(room) {
            return Err(CoreError::InvalidRoomName);
        }
        let key = self.room_key(room);
        self.links.insert(link, key);
        self.in_room(now, key, |room, cx| room.add_downstream(cx, link));
        Ok(())
    }

    /// Makes `room` here an edge of a room published elsewhere, fed over `link`: its viewers
    /// receive what arrives through [`relay_in`](Self::relay_in).
    pub fn relay_from(&mut self, room: &str, link: RelayLink) -> Result<(), CoreError> {
        if !valid_room_name(room) {
            return Err(CoreError::InvalidRoomName);
        }
        let key = self.room_key(room);
        self.links.insert(link, key);
        if let Some(r) = self.rooms.get_mut(key)
            && r.upstream.is_none()
        {
            r.upstream = Some(Feed::new(link));
        }
        Ok(())
    }

    /// A message from the other end of `link`. Unknown links are ignored (the link was
    /// closed here meanwhile).
    pub fn relay_in(&mut self, now: Instant, link: RelayLink, msg: Relay) {
        let Some(&key) = self.links.get(&link) else {
            return;
        };
        self.in_room(now, key, |room, cx| match msg {
            Relay::KeyframeRequest { kind, rid } => room.downstream_keyframe(cx, link, kind, rid),
            Relay::Unsubscribed => room.remove_downstream(link),
            other => {
                room.upstream_in(cx, other);
                room.settle(cx);
            }
        });
        if !self.rooms.get(key).is_some_and(|r| {
            r.downstreams.iter().any(|f| f.link == link)
                || r.upstream.as_ref().is_some_and(|u| u.link == link)
        }) {
            self.links.remove(&link);
        }
    }

    /// Closes `link` from this end: an origin stops relaying; an edge loses its relayed
    /// tracks (its viewers wait for the feed to come back).
    pub fn close_relay(&mut self, now: Instant, link: RelayLink) {
        let Some(key) = self.links.remove(&link) else {
            return;
        };
        self.in_room(now, key, |room, cx| {
            room.remove_downstream(link);
            if room.upstream.as_ref().is_some_and(|u| u.link == link) {
                room.close_upstream(cx);
            }
            room.settle(cx);
        });
    }

    /// The next relay message to carry to the other end of its link.
    pub fn poll_relay(&mut self) -> Option<(RelayLink, Relay)> {
        self.out.relay.pop_front()
    }

    // --- outputs --------------------------------------------------------------------------

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        let key = self.routes.get(&id)?;
        self.rooms.get(*key)?.participant(id)
    }

    /// The name of the room participant `id` is in.
    pub fn room_of_participant(&self, id: ParticipantId) -> Option<&str> {
        let key = self.routes.get(&id)?;
        self.rooms.get(*key).map(|r| r.name.as_str())
    }

    pub fn room(&self, name: &str) -> Option<&Room> {
        self.rooms.get(*self.room_keys.get(name)?)
    }

    pub fn rooms(&self) -> impl Iterator<Item = &Room> {
        self.rooms.iter().map(|(_, r)| r)
    }

    pub fn track(&self, id: TrackId) -> Option<&Track> {
        self.rooms().find_map(|r| r.track(id))
    }

    pub fn stats(&self) -> SfuStats {
        let (demux_ufrags, demux_addrs) = self.demux.sizes();
        let c = self.out.counters;
        SfuStats {
            rooms: self.rooms.len(),
            participants: self.routes.len(),
            tracks: self.rooms().map(|r| r.tracks.len()).sum(),
            subscriptions: self.rooms().map(Room::subscription_count).sum(),
            relay_links: self.links.len(),
            demux_ufrags,
            demux_addrs,
            timer_entries: self.timers.len(),
            datagrams_unrouted: c.datagrams_unrouted,
            datagrams_malformed: c.datagrams_malformed,
            packets_received: c.packets_received,
            packets_forwarded: c.packets_forwarded,
            packets_relayed: c.packets_relayed,
            keyframe_requests_sent: c.keyframe_requests_sent,
            layer_switches: c.layer_switches,
            pauses: c.pauses,
            estimator_restarts: c.estimator_restarts,
            nacks_received: c.nacks_received,
            retransmissions: c.retransmissions,
            nacks_sent: c.nacks_sent,
            timer_wakeups: c.timer_wakeups,
        }
    }
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
