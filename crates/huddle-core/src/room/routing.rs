//! Routing: which track goes to which subscriber, and moving packets along those routes.
//! Viewers and relays follow the room's main feed (its longest-present publisher, or the
//! relayed tracks that stand in for it); members get every other track through server
//! offers. Packets are fanned out, keyframes requested, new subscribers started on one.

use str0m::media::{KeyframeRequestKind, MediaKind, Pt};
use str0m::rtp::RtpPacket;
use tracing::{debug, warn};

use super::{Ctx, Room};
use crate::participant::{Forwarded, Role};
use crate::relay::{Feed, Relay, RelayLink};
use crate::track::{Packet, Source, SubRef, Track};
use crate::{Event, ParticipantId, TrackId, codec};

const KINDS: [MediaKind; 2] = [MediaKind::Video, MediaKind::Audio];

/// How much of what it sent each video subscription keeps for retransmission: a second covers
/// a NACK's round trip on any network a call survives (str0m keeps 3 s, the largest share of
/// a viewer's memory).
pub(crate) const RTX_HISTORY: std::time::Duration = std::time::Duration::from_secs(1);
pub(crate) const RTX_HISTORY_PACKETS: usize = 600;
/// Retransmissions may take up to this share of the bytes a subscription sent in the last
/// second. str0m's default, 15%, drops every queued resend once a lossy link (15–20%) needs
/// more than that, and a lost keyframe is then waited out until the next one; the pacer still
/// keeps the total within the subscriber's bandwidth estimate.
pub(crate) const RTX_RATIO_CAP: f32 = 0.5;
/// The share while the subscriber's link is congested (str0m's default).
pub(crate) const CONGESTED_RTX_RATIO_CAP: f32 = 0.15;

impl Room {
    /// The publisher a room's viewers receive: the longest-present one with tracks.
    fn main_publisher(&self) -> Option<ParticipantId> {
        self.participants()
            .find_map(|p| (p.role == Role::Publisher && !p.tracks.is_empty()).then_some(p.id))
    }

    /// The room's main `kind` track: the main publisher's, else the relayed one.
    fn main_track(&self, kind: MediaKind) -> Option<TrackId> {
        match self.main_publisher() {
            Some(id) => self.first_track(id, kind),
            None => self.upstream.as_ref().and_then(|u| match kind {
                MediaKind::Video => u.video,
                MediaKind::Audio => u.audio,
            }),
        }
    }

    fn first_track(&self, id: ParticipantId, kind: MediaKind) -> Option<TrackId> {
        let p = self.participants.get(&id)?;
        p.tracks()
            .find(|t| self.tracks.get(t).is_some_and(|t| t.kind == kind))
    }

    /// Brings the room's subscriptions up to date after its tracks changed: viewers and
    /// relays follow the main feed, members renegotiate to receive every other track.
    pub(crate) fn refresh(&mut self, cx: &mut Ctx<'_>) {
        self.refresh_viewers(cx);
        self.refresh_downstreams(cx);
        let members: Vec<ParticipantId> = self.order.clone();
        for id in members {
            self.negotiate(cx, id);
        }
    }

    fn refresh_viewers(&mut self, cx: &mut Ctx<'_>) {
        let mut changes = Vec::new();
        for v in self.participants().filter(|p| p.role == Role::Viewer) {
            for (slot, sub) in &v.subscriptions {
                let desired = self.main_track(sub.kind);
                if sub.track != desired {
                    changes.push((v.id, slot, sub.track, desired));
                }
            }
        }
        for (viewer, slot, old, new) in changes {
            if let Some(old) = old {
                self.detach(viewer, slot, old);
            }
            if let Some(new) = new {
                self.attach(cx, viewer, slot, new);
            }
        }
    }

    /// Points every downstream relay at the main publisher's tracks, telling the other end
    /// what it carries from now on.
    fn refresh_downstreams(&mut self, cx: &mut Ctx<'_>) {
        for i in 0..self.downstreams.len() {
            for kind in KINDS {
                // An edge relays what it is fed (a node's pull, spread over its workers).
                let desired = self.main_track(kind);
                let Some(feed) = self.downstreams.get_mut(i) else {
                    continue;
                };
                let link = feed.link;
                let slot = feed.slot(kind);
                if *slot == desired {
                    continue;
                }
                let old = std::mem::replace(slot, desired);
                if let Some(t) = old.and_then(|t| self.tracks.get_mut(&t)) {
                    t.downstreams.retain(|l| *l != link);
                }
                match desired.and_then(|t| self.tracks.get_mut(&t)) {
                    Some(t) => {
                        t.downstreams.push(link);
                        let params = t.params.clone();
                        cx.out
                            .relay
                            .push_back((link, Relay::Track { kind, params }));
                        let (id, layers) = (t.id, t.layers().len());
                        // The other end's viewers start on a keyframe.
                        for layer in 0..layers {
                            self.request_keyframe(cx, id, u8::try_from(layer).unwrap_or(0));
                        }
                    }
                    None => cx.out.relay.push_back((link, Relay::Ended { kind })),
                }
            }
        }
    }

    /// Starts forwarding `track` to the subscription in `slot` of `subscriber`: maps payload
    /// types, and if the subscriber is connected starts its video on a keyframe.
    pub(crate) fn attach(
        &mut self,
        cx: &mut Ctx<'_>,
        subscriber: ParticipantId,
        slot: usize,
        track: TrackId,
    ) {
        let (Some(s), Some(t)) = (
            self.participants.get_mut(&subscriber),
            self.tracks.get_mut(&track),
        ) else {
            return;
        };
        let Some(mid) = s.subscriptions.get(slot).map(|sub| sub.mid) else {
            return;
        };
        let negotiated = codec::negotiated(&s.rtc, mid);
        let mut pt_map = codec::pt_map(&t.params, &negotiated);
        let red = codec::red_map(&t.params, &negotiated, &mut pt_map);
        let Some(sub) = s.subscriptions.get_mut(slot) else {
            return;
        };
        sub.track = Some(track);
        sub.rewriter.reset_source();
        sub.choice.reset();
        s.allocate_due = Some(cx.now);
        t.subscribers.push(SubRef {
            participant: subscriber,
            slot,
        });
        if pt_map.is_empty() {
            warn!(%subscriber, %track, codecs = ?t.codecs(), "subscriber negotiated none of the track's codecs");
            sub.pt_map = pt_map;
            sub.codec_mismatch = true;
            cx.out.events.push_back(Event::CodecMismatch {
                subscriber,
                track,
                codecs: t.codecs(),
            });
            return;
        }
        sub.pt_map = pt_map;
        sub.red = red;
        if let Some(tx) = s.rtc.direct_api().stream_tx_by_mid(mid, None) {
            // Found by SSRC (a hash lookup) from now on, not by mid (a scan of the streams).
            sub.tx_ssrc = Some(tx.ssrc());
            if t.kind == MediaKind::Video {
                tx.set_rtx_cache(RTX_HISTORY_PACKETS, RTX_HISTORY, Some(RTX_RATIO_CAP));
            }
        }
        debug!(%subscriber, %track, %mid, "subscribed");
        cx.out
            .events
            .push_back(Event::Subscribed { subscriber, track });
        if s.connected {
            // Choose its layer first, then start it on that layer's keyframe.
            self.allocate(cx, subscriber);
            self.start_video(cx, subscriber, slot, track);
        }
    }

    /// Starts a connected subscriber's video at once: replays the track's current group of
    /// pictures (it begins with a keyframe) and asks the publisher for a fresh keyframe.
    pub(crate) fn start_video(
        &mut self,
        cx: &mut Ctx<'_>,
        subscriber: ParticipantId,
        slot: usize,
        track: TrackId,
    ) {
        let (Some(s), Some(t)) = (
            self.participants.get_mut(&subscriber),
            self.tracks.get_mut(&track),
        ) else {
            return;
        };
        if t.kind != MediaKind::Video {
            return;
        }
        let Some(sub) = s.subscriptions.get_mut(slot) else {
            return;
        };
        if sub.choice.paused {
            return;
        }
        let layer = sub.choice.target.unwrap_or(0);
        let replay = t.layer(layer).map(|l| l.gop.replay()).unwrap_or_default();
        if let Some(first) = replay.first()
            && sub.map_pt(first.pt).is_none()
        {
            // The publisher sends a codec this subscriber did not negotiate: say so now
            // (live packets of it are dropped quietly from here on).
            sub.codec_mismatch = true;
            let codecs = sent_codecs(t, first.pt);
            warn!(%subscriber, %track, ?codecs, "subscriber cannot receive the codec the track is sent in");
            cx.out.events.push_back(Event::CodecMismatch {
                subscriber,
                track,
                codecs,
            });
            return;
        }
        if !replay.is_empty() {
            debug!(%subscriber, %track, layer, packets = replay.len(), "replaying current GOP");
            sub.choice.current = Some(layer);
            sub.choice.switched_at = Some(cx.now);
            s.queue(slot, replay, cx.now);
            cx.out.counters.packets_forwarded += s.drain_backlogs(cx.now);
            s.drive(cx.now, cx.out, &mut self.internal);
            self.after_drive(cx, subscriber);
        }
        self.request_keyframe(cx, track, layer);
    }

    pub(crate) fn detach(&mut self, subscriber: ParticipantId, slot: usize, track: TrackId) {
        if let Some(t) = self.tracks.get_mut(&track) {
            t.subscribers
                .retain(|s| !(s.participant == subscriber && s.slot == slot));
        }
        if let Some(sub) = self
            .participants
            .get_mut(&subscriber)
            .and_then(|p| p.subscriptions.get_mut(slot))
        {
            sub.detach();
        }
    }

    /// Asks a track's source for a keyframe of `layer`, at most once per interval; requests
    /// in between are merged into one sent when the interval ends. A relayed track asks over
    /// its link.
    pub(crate) fn request_keyframe(&mut self, cx: &mut Ctx<'_>, track: TrackId, layer: u8) {
        let interval = cx.config.keyframe_request_interval;
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if t.kind != MediaKind::Video {
            return;
        }
        let (source, kind) = (t.source, t.kind);
        let Some(l) = t.layer_mut(layer) else {
            return;
        };
        let rid = l.rid;
        let now_due = l.keyframe_requests.request(cx.now, interval);
        let later = l.keyframe_requests.due(interval);
        match source {
            Source::Relay(link) => {
                if now_due {
                    cx.out
                        .relay
                        .push_back((link, Relay::KeyframeRequest { kind, rid }));
                    cx.out.counters.keyframe_requests_sent += 1;
                }
                // A merged request goes out with the next relayed packet after the interval
                // (see `upstream_in`): relayed tracks have no owner whose timer could send it.
            }
            Source::Local { owner, mid } => {
                let Some(p) = self.participants.get_mut(&owner) else {
                    return;
                };
                if now_due {
                    if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(mid, rid) {
                        rx.request_keyframe(KeyframeRequestKind::Pli);
                        cx.out.counters.keyframe_requests_sent += 1;
                        p.drive(cx.now, cx.out, &mut self.internal);
                    }
                } else if let Some(due) = later {
                    p.keyframe_due = Some(p.keyframe_due.map_or(due, |d| d.min(due)));
                }
                self.after_drive(cx, owner);
            }
        }
    }

    /// Sends the merged keyframe requests of `owner`'s tracks that are due.
    pub(crate) fn send_due_keyframe_requests(&mut self, cx: &mut Ctx<'_>, owner: ParticipantId) {
        let Some(p) = self.participants.get(&owner) else {
            return;
        };
        let interval = cx.config.keyframe_request_interval;
        let due: Vec<(TrackId, u8)> = p
            .tracks()
            .filter_map(|t| self.tracks.get(&t))
            .flat_map(|t| {
                t.layers().iter().enumerate().filter_map(move |(i, l)| {
                    let i = u8::try_from(i).ok()?;
                    l.keyframe_requests.due(interval).map(|_| (t.id, i))
                })
            })
            .collect();
        for (track, layer) in due {
            self.request_keyframe(cx, track, layer);
        }
    }

    /// One RTP packet received from participant `from`: fanned out to its track's subscribers.
    pub(crate) fn forward(&mut self, cx: &mut Ctx<'_>, from: ParticipantId, rtp: RtpPacket) {
        cx.out.counters.packets_received += 1;
        let Some(p) = self.participants.get_mut(&from) else {
            return;
        };
        let ssrc = rtp.header.ssrc;
        let (track, layer) = match p.known_ssrc(ssrc) {
            Some(known) => known,
            None => {
                let Some((track, rid)) = p.identify_ssrc(ssrc) else {
                    debug!(participant = %from, %ssrc, "RTP for no published track");
                    return;
                };
                let Some(layer) = self.tracks.get_mut(&track).and_then(|t| t.layer_for(rid)) else {
                    debug!(participant = %from, %ssrc, "more encodings than huddle forwards");
                    return;
                };
                if let Some(p) = self.participants.get_mut(&from) {
                    p.learn_ssrc(ssrc, track, layer);
                }
                (track, layer)
            }
        };
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        let Some(l) = t.layer_mut(layer) else {
            return;
        };
        if !l.ssrc.admit(ssrc, cx.now) {
            return; // a second SSRC for one encoding while the first still sends
        }
        let rid = l.rid;
        let Some((codec, clock_rate)) = t.codec_of(rtp.header.payload_type) else {
            debug!(%track, pt = %rtp.header.payload_type, "RTP with a payload type not negotiated");
            return;
        };
        let packet = Packet::from_rtp(rtp, codec, clock_rate, rid, layer);
        self.fan_out(cx, track, &packet);
    }

    /// Writes one packet of `track` to every local subscriber, and once to every relay.
    pub(crate) fn fan_out(&mut self, cx: &mut Ctx<'_>, track: TrackId, packet: &Packet) {
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        let Some(l) = t.layer_mut(packet.layer) else {
            return;
        };
        let appeared = !l.active(cx.now);
        l.record(packet);
        if t.kind == MediaKind::Audio
            && let Some(change) = self.speakers.heard(track, packet.ext.audio_level, cx.now)
        {
            self.speaker_changed(cx, change);
        }
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        for link in &t.downstreams {
            cx.out.relay.push_back((
                *link,
                Relay::Packet {
                    kind: t.kind,
                    packet: packet.clone(),
                },
            ));
            cx.out.counters.packets_relayed += 1;
        }
        let mut needs_keyframe = None;
        for s in &t.subscribers {
            let Some(p) = self.participants.get_mut(&s.participant) else {
                continue;
            };
            if appeared && t.kind == MediaKind::Video {
                // A layer (re)appeared: its subscribers may want it.
                p.allocate_due = Some(cx.now);
            }
            match p.forward(s.slot, packet, cx.now) {
                Forwarded::Written => {
                    cx.out.counters.packets_forwarded += 1;
                    // Driven once the whole batch is written (Room::settle).
                    if !std::mem::replace(&mut p.written, true) {
                        self.written.push(s.participant);
                    }
                }
                Forwarded::WaitingForKeyframe(layer) => needs_keyframe = Some(layer),
                Forwarded::FirstCodecMismatch => {
                    let codecs = sent_codecs(t, packet.pt);
                    warn!(subscriber = %s.participant, %track, ?codecs, "subscriber cannot receive the codec the track is sent in");
                    cx.out.events.push_back(Event::CodecMismatch {
                        subscriber: s.participant,
                        track,
                        codecs,
                    });
                }
                Forwarded::Queued | Forwarded::Dropped => {}
            }
        }
        if let Some(layer) = needs_keyframe {
            self.request_keyframe(cx, track, layer);
        }
    }

    // --- relays -------------------------------------------------------------------------

    /// Starts relaying this room's main feed over `link` (this is the origin). For a link
    /// that exists already, the other end starts over: its tracks are announced again.
    pub(crate) fn add_downstream(&mut self, cx: &mut Ctx<'_>, link: RelayLink) {
        self.remove_downstream(link);
        self.downstreams.push(Feed::new(link));
        self.refresh_downstreams(cx);
    }

    pub(crate) fn remove_downstream(&mut self, link: RelayLink) {
        let Some(i) = self.downstreams.iter().position(|f| f.link == link) else {
            return;
        };
        let feed = self.downstreams.swap_remove(i);
        for t in [feed.video, feed.audio].into_iter().flatten() {
            if let Some(t) = self.tracks.get_mut(&t) {
                t.downstreams.retain(|l| *l != link);
            }
        }
    }

    /// A viewer at the other end of `link` needs a keyframe of layer `rid`.
    pub(crate) fn downstream_keyframe(
        &mut self,
        cx: &mut Ctx<'_>,
        link: RelayLink,
        kind: MediaKind,
        rid: Option<str0m::media::Rid>,
    ) {
        let Some(track) = self
            .downstreams
            .iter_mut()
            .find(|f| f.link == link)
            .and_then(|f| *f.slot(kind))
        else {
            return;
        };
        let layer = self.tracks.get(&track).and_then(|t| {
            let i = t.layers().iter().position(|l| l.rid == rid)?;
            u8::try_from(i).ok()
        });
        if let Some(layer) = layer {
            self.request_keyframe(cx, track, layer);
        }
    }

    /// A message from the origin of this room's upstream.
    pub(crate) fn upstream_in(&mut self, cx: &mut Ctx<'_>, msg: Relay) {
        let Some(up) = self.upstream.as_mut() else {
            return;
        };
        let link = up.link;
        match msg {
            Relay::Packet { kind, mut packet } => {
                let Some(track) = *up.slot(kind) else {
                    return;
                };
                cx.out.counters.packets_received += 1;
                // Layers are numbered here in the order they arrive; the name travels.
                let Some(layer) = self
                    .tracks
                    .get_mut(&track)
                    .and_then(|t| t.layer_for(packet.rid))
                else {
                    return;
                };
                packet.layer = layer;
                let interval = cx.config.keyframe_request_interval;
                if self
                    .tracks
                    .get(&track)
                    .and_then(|t| t.layer(layer))
                    .is_some_and(|l| {
                        l.keyframe_requests
                            .due(interval)
                            .is_some_and(|d| d <= cx.now)
                    })
                {
                    self.request_keyframe(cx, track, layer);
                }
                self.fan_out(cx, track, &packet);
            }
            Relay::Track { kind, params } => {
                if let Some(t) = up.slot(kind).and_then(|t| self.tracks.get_mut(&t)) {
                    // Same slot, another publisher behind it: subscribers re-map payload
                    // types and (video) start on its next keyframe.
                    t.set_params(params);
                    t.reset_layers();
                    let id = t.id;
                    let subs = t.subscribers.clone();
                    for s in subs {
                        self.detach(s.participant, s.slot, id);
                    }
                } else {
                    let id = cx.config.ids.track();
                    let gop = cx.config.gop_cache_packets;
                    self.tracks.insert(
                        id,
                        Track::new(id, crate::track::Source::Relay(link), kind, params, gop),
                    );
                    *up.slot(kind) = Some(id);
                }
                self.refresh(cx);
            }
            Relay::Ended { kind } => {
                if let Some(t) = up.slot(kind).take() {
                    self.unpublish(cx, t);
                    self.refresh(cx);
                }
            }
            Relay::KeyframeRequest { .. } | Relay::Unsubscribed => {}
        }
    }

    /// Drops the upstream and its relayed tracks (the origin went away).
    pub(crate) fn close_upstream(&mut self, cx: &mut Ctx<'_>) {
        let Some(up) = self.upstream.take() else {
            return;
        };
        for t in [up.video, up.audio].into_iter().flatten() {
            self.unpublish(cx, t);
        }
        self.refresh(cx);
    }
}

/// The codec a packet of `t` is sent in (all of the track's, if its payload type is unknown).
fn sent_codecs(t: &Track, pt: Pt) -> Vec<crate::Codec> {
    t.codec_of(pt)
        .map_or_else(|| t.codecs(), |(codec, _)| vec![codec])
}
