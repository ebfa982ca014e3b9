//! A room: the participants that share media, the tracks they publish, and who receives
//! what. Media never crosses rooms; each room settles on its own (the packets a step produced
//! are fanned out, the subscribers written to are driven once, the dead are removed).
//!
//! - [`routing`]: which track feeds which subscription, fan-out, keyframes, relays.
//! - [`allocation`]: which layer of each video track each subscriber gets, and why.
//! - [`negotiation`]: members' server offers and answers.

mod allocation;
pub(crate) mod negotiation;
pub(crate) mod routing;

use std::collections::VecDeque;
use std::time::Instant;

use rustc_hash::FxHashMap;
use str0m::Input;
use str0m::media::{Direction, MediaKind, Mid};
use tracing::{debug, info, warn};

use crate::contain::contained;
use crate::diagnosis::Kind;
use crate::out::{Out, Removed};
use crate::participant::{Internal, Participant, Role};
use crate::relay::{Feed, Relay};
use crate::speaker::Speakers;
use crate::subscription::Subscription;
use crate::track::{Source, Track};
use crate::{CoreError, Event, LeaveReason, ParticipantId, SfuConfig, TrackId, codec};

/// What every room step needs from the [`Sfu`](crate::Sfu): the time, the configuration and
/// where outputs go.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub config: &'a SfuConfig,
    pub out: &'a mut Out,
}

/// Participants that see each other's media, and their tracks.
#[derive(Debug)]
pub struct Room {
    pub name: String,
    pub(crate) participants: FxHashMap<ParticipantId, Participant>,
    /// In join order: the longest-present publisher is the one viewers receive.
    pub(crate) order: Vec<ParticipantId>,
    pub(crate) tracks: FxHashMap<TrackId, Track>,
    /// Other workers (or nodes) this room's main feed is relayed to.
    pub(crate) downstreams: Vec<Feed>,
    /// The worker (or node) this room's main feed is relayed from, when it is published
    /// elsewhere.
    pub(crate) upstream: Option<Feed>,
    /// Who is speaking, from the audio levels.
    pub(crate) speakers: Speakers,
    /// What driving participants produced, not yet handled.
    internal: VecDeque<Internal>,
    /// Subscribers written to since they were last driven.
    written: Vec<ParticipantId>,
    /// Participants to remove once the current step is done.
    doomed: Vec<(ParticipantId, LeaveReason)>,
}

impl Room {
    pub(crate) fn new(name: String) -> Self {
        Room {
            name,
            participants: FxHashMap::default(),
            order: Vec::new(),
            tracks: FxHashMap::default(),
            downstreams: Vec::new(),
            upstream: None,
            speakers: Speakers::default(),
            internal: VecDeque::new(),
            written: Vec::new(),
            doomed: Vec::new(),
        }
    }

    /// The participants, in join order.
    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.order.iter().filter_map(|id| self.participants.get(id))
    }

    pub fn participant(&self, id: ParticipantId) -> Option<&Participant> {
        self.participants.get(&id)
    }

    pub fn track(&self, id: TrackId) -> Option<&Track> {
        self.tracks.get(&id)
    }

    pub fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.tracks.values()
    }

    /// The link this room is fed over, when it is an edge of a room published elsewhere.
    pub fn upstream_link(&self) -> Option<crate::RelayLink> {
        self.upstream.as_ref().map(|u| u.link)
    }

    /// Nothing keeps the room: no participant, and no other worker relaying from it.
    pub(crate) fn is_unused(&self) -> bool {
        self.participants.is_empty() && self.downstreams.is_empty()
    }

    pub(crate) fn subscription_count(&self) -> usize {
        self.tracks.values().map(|t| t.subscribers.len()).sum()
    }

    /// Admits a participant whose offer was accepted: it publishes what it sends, viewers
    /// get a subscription per section they receive on. Runs the room until it settles.
    pub(crate) fn admit(
        &mut self,
        cx: &mut Ctx<'_>,
        mut p: Participant,
        sections: Vec<(Mid, MediaKind, Direction)>,
    ) {
        let id = p.id;
        p.span = tracing::info_span!("peer", participant = %id, room = %self.name, role = ?p.role);
        let span = p.span.clone();
        let _entered = span.enter();
        // str0m's ICE agent sends no check before its first timeout, and nothing would
        // schedule one for a peer that only receives: start it now, so that huddle checks the
        // peer's candidates at once whatever its role (a full ICE agent checks both ways).
        p.handle_timeout(cx.now);
        p.drive(cx.now, cx.out, &mut self.internal);
        let role = p.role;
        cx.out.events.push_back(Event::Joined {
            room: self.name.clone(),
            participant: id,
            role,
        });
        info!(participant = %id, room = %self.name, ?role, "joined");
        self.participants.insert(id, p);
        self.order.push(id);
        for (mid, kind, direction) in sections {
            self.media_added(cx, id, mid, kind, direction);
        }
        self.refresh(cx);
        self.after_drive(cx, id);
        self.settle(cx);
    }

    pub(crate) fn media_added(
        &mut self,
        cx: &mut Ctx<'_>,
        id: ParticipantId,
        mid: Mid,
        kind: MediaKind,
        direction: Direction,
    ) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let receiving = matches!(direction, Direction::RecvOnly | Direction::SendRecv);
        let sending = matches!(direction, Direction::SendOnly | Direction::SendRecv);
        if receiving && matches!(p.role, Role::Publisher | Role::Member) && !p.may_publish {
            warn!(participant = %id, %mid, "not allowed to publish; section ignored");
        } else if receiving && matches!(p.role, Role::Publisher | Role::Member) {
            let params = codec::negotiated(&p.rtc, mid);
            if params.is_empty() {
                warn!(participant = %id, %mid, "no forwardable codec negotiated; ignoring section");
                return;
            }
            let track = cx.config.ids.track();
            p.tracks.push((mid, track));
            let source = Source::Local { owner: id, mid };
            let gop = cx.config.gop_cache_packets;
            self.tracks
                .insert(track, Track::new(track, source, kind, params, gop));
            info!(participant = %id, %track, ?kind, "track published");
            cx.out.events.push_back(Event::TrackPublished {
                room: self.name.clone(),
                participant: id,
                track,
                kind,
                mid,
            });
        } else if sending && p.role == Role::Viewer {
            p.subscriptions.insert(Subscription::new(mid, kind));
        }
    }

    /// Feeds one datagram (already routed here) to its participant.
    pub(crate) fn receive(
        &mut self,
        cx: &mut Ctx<'_>,
        id: ParticipantId,
        kind: Kind,
        input: Input<'_>,
    ) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        p.last_heard = cx.now;
        p.diag.received(cx.now, kind);
        // Connectivity datagrams run in the participant's span; media packets, the hot path,
        // do not pay for it (their log lines are debug-level and name the participant).
        let span = (kind != Kind::Media).then(|| p.span.clone());
        let _entered = span.as_ref().map(tracing::Span::enter);
        match contained("a datagram", || p.rtc.handle_input(input)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // A bad packet is the peer's problem, not the server's: drop it and go on.
                cx.out.counters.datagrams_malformed += 1;
                debug!(participant = %id, "input rejected: {e}");
                if kind == Kind::Dtls && !p.connected {
                    // The handshake's own complaint: the likely reason if it never finishes.
                    p.diag.error(&e);
                }
            }
            Err(_) => {
                p.dead = Some(LeaveReason::Failed);
                self.after_drive(cx, id);
                return;
            }
        }
        p.drive(cx.now, cx.out, &mut self.internal);
        self.after_drive(cx, id);
    }

    /// A participant's deadline came: str0m's timers, connect and silence timeouts, catch-up
    /// backlogs, merged keyframe requests.
    pub(crate) fn on_timer(&mut self, cx: &mut Ctx<'_>, id: ParticipantId) {
        let now = cx.now;
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let span = p.span.clone();
        let _entered = span.enter();
        if !p.connected && now >= p.created_at + cx.config.connect_timeout {
            info!(participant = %id, "did not connect in time");
            p.dead = Some(LeaveReason::Timeout);
        }
        if p.connected && now >= p.last_heard + cx.config.silence_timeout {
            info!(participant = %id, "nothing heard for {:?}", cx.config.silence_timeout);
            p.dead = Some(LeaveReason::Timeout);
        }
        if p.rtc_deadline <= now {
            p.handle_timeout(now);
            p.drive(now, cx.out, &mut self.internal);
        }
        if p.backlog_due.is_some_and(|d| d <= now) {
            cx.out.counters.packets_forwarded += p.drain_backlogs(now);
            p.drive(now, cx.out, &mut self.internal);
        }
        // The pacer's queue shows a narrowed link long before the estimate does.
        let allocate = p.check_pacer_queue(now) || p.allocate_due.is_some_and(|d| d <= now);
        if p.keyframe_due.is_some_and(|d| d <= now) {
            p.keyframe_due = None;
            self.send_due_keyframe_requests(cx, id);
        }
        if allocate {
            self.allocate(cx, id);
        }
        self.after_drive(cx, id);
    }

    /// Bookkeeping after a participant's `Rtc` was driven: doom it if it died, otherwise ask
    /// for its next deadline.
    pub(crate) fn after_drive(&mut self, cx: &mut Ctx<'_>, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if let Some(reason) = p.dead {
            if !self.doomed.iter().any(|(d, _)| *d == id) {
                self.doomed.push((id, reason));
            }
            return;
        }
        let at = p.next_deadline(cx.config);
        if p.scheduled.is_none_or(|s| at < s) {
            p.scheduled = Some(at);
            cx.out.deadlines.push((id, at));
        }
    }

    /// Handles what driving produced, until nothing is left: packets are fanned out, the
    /// subscribers written to are driven once each, the dead are removed.
    pub(crate) fn settle(&mut self, cx: &mut Ctx<'_>) {
        loop {
            while let Some(item) = self.internal.pop_front() {
                self.handle(cx, item);
            }
            if !self.written.is_empty() {
                for id in std::mem::take(&mut self.written) {
                    if let Some(p) = self.participants.get_mut(&id) {
                        p.written = false;
                        p.drive(cx.now, cx.out, &mut self.internal);
                        self.after_drive(cx, id);
                    }
                }
                continue;
            }
            let Some((id, reason)) = self.doomed.pop() else {
                break;
            };
            self.remove(cx, id, reason);
        }
    }

    fn handle(&mut self, cx: &mut Ctx<'_>, item: Internal) {
        match item {
            Internal::Rtp(id, packet) => self.forward(cx, id, packet),
            Internal::Connected(id) => {
                info!(participant = %id, "connected");
                cx.out
                    .events
                    .push_back(Event::Connected { participant: id });
                let attached: Vec<(usize, TrackId)> = self
                    .participants
                    .get(&id)
                    .map(|p| {
                        p.subscriptions
                            .iter()
                            .filter_map(|(slot, s)| Some((slot, s.track?)))
                            .collect()
                    })
                    .unwrap_or_default();
                self.allocate(cx, id);
                for (slot, track) in attached {
                    self.start_video(cx, id, slot, track);
                }
                self.negotiate(cx, id);
            }
            Internal::Message(id, data) => cx.out.events.push_back(Event::Message {
                room: self.name.clone(),
                participant: id,
                data,
            }),
            Internal::KeyframeRequest(id, mid) => {
                let wanted = self.participants.get(&id).and_then(|p| {
                    let sub = p.subscriptions.get(p.slot_of(mid)?)?;
                    Some((sub.track?, sub.choice.current.or(sub.choice.target)?))
                });
                if let Some((track, layer)) = wanted {
                    self.request_keyframe(cx, track, layer);
                }
            }
            Internal::Estimate(id) => self.allocate(cx, id),
        }
    }

    /// Runs `f`, str0m calls on participant `id`'s client data, contained: should str0m
    /// panic, that participant alone is dropped and the caller gets the error. The
    /// participant is driven afterwards either way.
    pub(crate) fn with_peer<T>(
        &mut self,
        cx: &mut Ctx<'_>,
        id: ParticipantId,
        what: &'static str,
        f: impl FnOnce(&mut Participant) -> T,
    ) -> Result<T, CoreError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(CoreError::UnknownParticipant(id))?;
        let span = p.span.clone();
        let _entered = span.enter();
        let out = contained(what, || f(p));
        match &out {
            Ok(_) => p.drive(cx.now, cx.out, &mut self.internal),
            Err(_) => p.dead = Some(LeaveReason::Failed),
        }
        self.after_drive(cx, id);
        self.settle(cx);
        out
    }

    /// Removes a participant at its own request: DTLS is closed politely.
    pub(crate) fn leave(&mut self, cx: &mut Ctx<'_>, id: ParticipantId) {
        self.doomed.push((id, LeaveReason::Requested));
        self.settle(cx);
    }

    /// Removes a participant and everything that hangs off it.
    fn remove(&mut self, cx: &mut Ctx<'_>, id: ParticipantId, reason: LeaveReason) {
        let Some(mut p) = self.participants.remove(&id) else {
            return;
        };
        let span = p.span.clone();
        let _entered = span.enter();
        self.order.retain(|x| *x != id);
        if reason == LeaveReason::Requested {
            // Say goodbye (RTCP BYE, DTLS close_notify) while the peer still listens.
            if contained("closing", || p.rtc.close()).is_ok_and(|r| r.is_ok()) {
                let mut ignored = VecDeque::new();
                p.drive(cx.now, cx.out, &mut ignored);
            }
        }
        for track in p.tracks().collect::<Vec<_>>() {
            self.unpublish(cx, track);
            cx.out.events.push_back(Event::TrackUnpublished {
                room: self.name.clone(),
                participant: id,
                track,
            });
        }
        for (slot, sub) in &p.subscriptions {
            if let Some(t) = sub.track.and_then(|t| self.tracks.get_mut(&t)) {
                t.subscribers
                    .retain(|s| !(s.participant == id && s.slot == slot));
            }
        }
        cx.out.removed.push(Removed {
            id,
            ufrag: p.ufrag.clone(),
            addrs: std::mem::take(&mut p.addrs),
        });
        info!(participant = %id, room = %self.name, ?reason, "left");
        p.diag.ended(cx.now, reason);
        cx.out.events.push_back(Event::Diagnosis {
            room: self.name.clone(),
            participant: id,
            role: p.role,
            diagnosis: Box::new(p.diag),
        });
        cx.out.events.push_back(Event::Left {
            room: self.name.clone(),
            participant: id,
            reason,
        });
        if self.participants.is_empty()
            && let Some(up) = &self.upstream
        {
            // The last viewer of an edge room left: the origin can stop relaying.
            cx.out.relay.push_back((up.link, Relay::Unsubscribed));
            self.close_upstream(cx);
        }
        self.refresh(cx);
    }

    /// Removes a track: its subscribers wait for another source, its relays end.
    pub(crate) fn unpublish(&mut self, cx: &mut Ctx<'_>, track: TrackId) {
        let Some(t) = self.tracks.remove(&track) else {
            return;
        };
        if let Some(change) = self.speakers.forget(track) {
            self.speaker_changed(cx, change);
        }
        for s in &t.subscribers {
            if let Some(sub) = self
                .participants
                .get_mut(&s.participant)
                .and_then(|p| p.subscriptions.get_mut(s.slot))
            {
                sub.detach();
            }
        }
        for f in &mut self.downstreams {
            let slot = f.slot(t.kind);
            if *slot == Some(track) {
                *slot = None;
                cx.out
                    .relay
                    .push_back((f.link, Relay::Ended { kind: t.kind }));
            }
        }
    }
}

impl Room {
    /// The participant whose track `speaker` is, now the active speaker, is announced.
    pub(crate) fn speaker_changed(&mut self, cx: &mut Ctx<'_>, speaker: Option<TrackId>) {
        let participant = speaker
            .and_then(|t| self.tracks.get(&t))
            .and_then(Track::owner);
        cx.out.events.push_back(Event::ActiveSpeaker {
            room: self.name.clone(),
            participant,
        });
        // Who is held low for not speaking changed.
        if cx.config.speaker_focus_after > 0 {
            let ids: Vec<ParticipantId> = self.participants.keys().copied().collect();
            for id in ids {
                self.allocate(cx, id);
            }
        }
    }

    /// The active speaker's participant.
    pub fn active_speaker(&self) -> Option<ParticipantId> {
        self.tracks.get(&self.speakers.current()?)?.owner()
    }
}

/// Room names go into URLs and logs: 1–64 characters of `A-Z a-z 0-9 . _ ~ -`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}
