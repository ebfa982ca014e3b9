//! A participant: one peer connection (one str0m `Rtc`), what it publishes and what it
//! receives.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::BweKind;
use str0m::channel::ChannelId;
use str0m::media::{Direction, MediaKind, Mid, Rid};
use str0m::rtp::{RtpPacket, RtpWrite, Ssrc};
use str0m::{Event as RtcEvent, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, warn};

use rustc_hash::FxHashMap;
use slab::Slab;

use crate::contain::contained;
use crate::demux::MAX_ADDRS_PER_PARTICIPANT;
use crate::demux::Remote;
use crate::diagnosis::{Diagnosis, Kind};
use crate::downlink::Downlink;
use crate::out::Out;
use crate::pacer_queue::PacerQueue;
use crate::red;
use crate::reprobe::Reprobe;
use crate::room::negotiation::PendingOffer;
use crate::subscription::Subscription;
use crate::track::Packet;
use crate::{LeaveReason, ParticipantId, SfuConfig, TrackId, Transmit, Transport};

/// A catch-up backlog (replayed GOP, then the live packets that arrived meanwhile) leaves at
/// `BACKLOG_BURST` packets per subscription every `BACKLOG_PACE` (≈ 35 Mbit/s of 1,200-byte
/// packets): a keyframe in the first milliseconds without a burst that overflows the
/// receiver's socket buffer.
const BACKLOG_BURST: usize = 16;
const BACKLOG_PACE: Duration = Duration::from_millis(4);
/// A backlog this long is not catching up: drop it and wait for a keyframe.
const MAX_BACKLOG: usize = 4000;

/// How a participant came in, which decides what it is fed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A WHIP publisher (OBS, an encoder): sends media, receives none.
    Publisher,
    /// A WHEP viewer: receives the room's main publisher.
    Viewer,
    /// A room member (a browser): publishes its tracks and receives everyone else's, the
    /// server offering each change.
    Member,
}

/// At most this many back-to-back "timeout is now" rounds per drive: one per paced packet
/// sent in a burst (a keyframe), so hitting it means a busy loop is being avoided.
const MAX_IMMEDIATE_TIMEOUTS: usize = 64;

/// str0m's pacer asks for a timeout "at the next microsecond" after every packet it lets out,
/// so that time advances between packets. A deadline this close counts as due: it is fed at
/// once (the `Rtc`'s clock running those microseconds ahead) instead of waking the
/// participant again on the next turn of the loop, which cost a second drive of its `Rtc`
/// per forwarded packet.
const IMMEDIATE: Duration = Duration::from_micros(1);

/// One peer connection in a room.
#[derive(Debug)]
pub struct Participant {
    pub id: ParticipantId,
    /// Public id in signaling; the `msid` stream id of this participant's tracks.
    pub label: String,
    pub role: Role,
    pub(crate) rtc: Rtc,
    pub(crate) created_at: Instant,
    pub(crate) connected: bool,
    /// When the last datagram from this peer arrived.
    pub(crate) last_heard: Instant,
    /// Published tracks by publisher `mid`, and the SSRCs seen on them.
    pub(crate) tracks: Vec<(Mid, TrackId)>,
    pub(crate) ssrc_tracks: Vec<(Ssrc, TrackId, u8)>,
    /// Outgoing media sections and what feeds them, in slots that stay put for their life
    /// (tracks name their subscribers by slot).
    pub(crate) subscriptions: Slab<Subscription>,
    /// Current local ICE ufrag (demux key) and the remote one (to tell an ICE restart).
    pub(crate) ufrag: String,
    pub(crate) remote_ufrag: Option<String>,
    /// Remote addresses its ICE agent sent to, oldest first; the demux routes them here.
    pub(crate) addrs: Vec<Remote>,
    /// When str0m wants its next timeout.
    pub(crate) rtc_deadline: Instant,
    /// Earliest entry this participant has in the timer heap.
    pub(crate) scheduled: Option<Instant>,
    /// When the next slice of catch-up backlogs is due.
    pub(crate) backlog_due: Option<Instant>,
    /// When merged keyframe requests for this participant's tracks are due.
    pub(crate) keyframe_due: Option<Instant>,
    /// A server offer awaiting the member's answer: the tracks it adds (by new `mid`) and the
    /// `mid`s it stops.
    pub(crate) pending_offer: Option<PendingOffer>,
    /// What its credentials allow (members; WHIP/WHEP endpoints check before joining).
    pub(crate) may_publish: bool,
    pub(crate) may_subscribe: bool,
    /// Kinds of track the member asked to publish, and its tracks it asked to stop, for the
    /// next server offer.
    pub(crate) publish_requests: Vec<MediaKind>,
    pub(crate) unpublish_requests: Vec<TrackId>,
    /// The data channel messages are relayed on.
    pub(crate) channel: Option<ChannelId>,
    /// What it can receive, in bits per second (TWCC, or the receiver's REMB).
    pub estimate: Option<u64>,
    /// Its `Rtc` estimates bandwidth (it negotiated transport-wide congestion control).
    pub(crate) bwe: bool,
    /// The (minimum, desired) bitrates last given to its estimator.
    pub(crate) bwe_asked: Option<(u64, u64)>,
    /// Its estimator's probe retries while a layer is held back (see [`crate::reprobe`]).
    pub(crate) reprobe: Reprobe,
    /// What its receiver reports say about its downlink (congestion ahead of the estimate).
    pub(crate) downlink: Downlink,
    /// Its video resends are held to the congested share.
    pub(crate) rtx_congested: bool,
    /// What its `Rtc`'s pacer queue says about its downlink, and the bytes that `Rtc` sent
    /// so far.
    pub(crate) pacer_queue: PacerQueue,
    pub(crate) sent_bytes: u64,
    /// Per outgoing `mid`: NACKs received and packets sent (retransmissions included), as
    /// str0m last reported them; and retransmissions counted so far.
    pub(crate) egress: FxHashMap<Mid, (u64, u64)>,
    pub(crate) resent: u64,
    /// Per incoming `mid`: NACKs sent to the publisher so far.
    pub(crate) ingress_nacks: FxHashMap<Mid, u64>,
    /// When its video layers are next reconsidered (publishers' layers come and go).
    pub(crate) allocate_due: Option<Instant>,
    /// Packets were written to this subscriber since it was last driven.
    pub(crate) written: bool,
    /// Set when the participant must be removed after the current step.
    pub(crate) dead: Option<LeaveReason>,
    /// How its connection came up (or did not).
    pub(crate) diag: Diagnosis,
    /// `participant`, `room` and `role` for every log line about it, entered on its
    /// signaling, timer and connectivity paths (not per media packet).
    pub(crate) span: tracing::Span,
}

/// What became of a packet offered to a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Forwarded {
    Written,
    /// Queued behind a catch-up backlog.
    Queued,
    Dropped,
    /// Video that cannot start before a keyframe.
    WaitingForKeyframe(u8),
    /// The subscriber negotiated no codec matching this packet's (reported once).
    FirstCodecMismatch,
}

/// What driving one `Rtc` produced that concerns more than this participant.
// Packets are the common case: boxing them would allocate once per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Internal {
    Connected(ParticipantId),
    Rtp(ParticipantId, RtpPacket),
    KeyframeRequest(ParticipantId, Mid),
    /// The participant's bandwidth estimate changed: its layers may change.
    Estimate(ParticipantId),
    /// A data channel message from this participant.
    Message(ParticipantId, Vec<u8>),
}

impl Participant {
    pub(crate) fn new(
        id: ParticipantId,
        label: String,
        role: Role,
        rtc: Rtc,
        ufrag: String,
        now: Instant,
        diag: Diagnosis,
    ) -> Self {
        Participant {
            diag,
            span: tracing::Span::none(),
            id,
            label,
            role,
            rtc,
            created_at: now,
            connected: false,
            last_heard: now,
            tracks: Vec::new(),
            ssrc_tracks: Vec::new(),
            subscriptions: Slab::new(),
            ufrag,
            remote_ufrag: None,
            addrs: Vec::new(),
            rtc_deadline: now,
            scheduled: None,
            keyframe_due: None,
            backlog_due: None,
            pending_offer: None,
            may_publish: true,
            may_subscribe: true,
            publish_requests: Vec::new(),
            unpublish_requests: Vec::new(),
            written: false,
            channel: None,
            estimate: None,
            bwe: false,
            bwe_asked: None,
            reprobe: Reprobe::default(),
            downlink: Downlink::default(),
            rtx_congested: false,
            pacer_queue: PacerQueue::default(),
            sent_bytes: 0,
            egress: FxHashMap::default(),
            resent: 0,
            ingress_nacks: FxHashMap::default(),
            allocate_due: None,
            dead: None,
        }
    }

    /// How its connection came up (or did not), so far.
    pub fn diagnosis(&self) -> &Diagnosis {
        &self.diag
    }

    /// The published track and layer a packet with this SSRC belongs to, once known.
    pub(crate) fn known_ssrc(&self, ssrc: Ssrc) -> Option<(TrackId, u8)> {
        self.ssrc_tracks
            .iter()
            .find(|(s, ..)| *s == ssrc)
            .map(|(_, t, l)| (*t, *l))
    }

    /// The published track of a new SSRC, and the simulcast layer name it arrives under.
    pub(crate) fn identify_ssrc(&mut self, ssrc: Ssrc) -> Option<(TrackId, Option<Rid>)> {
        let (mid, rid) = self
            .rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid()))?;
        let track = self
            .tracks
            .iter()
            .find(|(m, _)| *m == mid)
            .map(|(_, t)| *t)?;
        Some((track, rid))
    }

    /// Remembers which track and layer an SSRC carries.
    pub(crate) fn learn_ssrc(&mut self, ssrc: Ssrc, track: TrackId, layer: u8) {
        self.ssrc_tracks.push((ssrc, track, layer));
    }

    /// The slot of the subscription on `mid` (not on the per-packet path).
    pub(crate) fn slot_of(&self, mid: Mid) -> Option<usize> {
        self.subscriptions
            .iter()
            .find(|(_, s)| s.mid == mid)
            .map(|(slot, _)| slot)
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.subscriptions.iter().map(|(_, s)| s)
    }

    /// The tracks this participant publishes.
    pub fn tracks(&self) -> impl Iterator<Item = TrackId> + '_ {
        self.tracks.iter().map(|(_, t)| *t)
    }

    /// When this participant next needs [`Sfu::handle_timeout`](crate::Sfu::handle_timeout).
    pub(crate) fn next_deadline(&self, config: &SfuConfig) -> Instant {
        let mut at = self.rtc_deadline;
        if self.connected {
            at = at.min(self.last_heard + config.silence_timeout);
        } else {
            at = at.min(self.created_at + config.connect_timeout);
        }
        for due in [self.keyframe_due, self.backlog_due, self.allocate_due]
            .into_iter()
            .flatten()
        {
            at = at.min(due);
        }
        at
    }

    /// Feeds a timeout to str0m.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if contained("a timer", || self.timeout(now)).is_err() {
            self.dead = Some(LeaveReason::Failed);
        }
    }

    fn timeout(&mut self, now: Instant) {
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            warn!(participant = %self.id, "timeout input failed: {e}");
            self.diag.error(&e);
            self.dead = Some(LeaveReason::Failed);
        }
    }

    /// Offers one forwarded packet to the subscription in `slot`: written at once, or queued
    /// behind a catch-up backlog that is still draining.
    pub(crate) fn forward(&mut self, slot: usize, p: &Packet, now: Instant) -> Forwarded {
        if !self.connected {
            // Media starts when the subscriber connects (with a keyframe), not into a queue.
            return Forwarded::Dropped;
        }
        let Some(sub) = self.subscriptions.get_mut(slot) else {
            return Forwarded::Dropped;
        };
        let mut switched = false;
        let mut gap = false;
        if sub.kind == MediaKind::Video {
            let choice = &mut sub.choice;
            if choice.paused {
                return Forwarded::Dropped;
            }
            if choice.abandon && Some(p.layer) == choice.current && choice.target != choice.current
            {
                return Forwarded::Dropped;
            }
            if Some(p.layer) != choice.current {
                if Some(p.layer) != choice.target {
                    return Forwarded::Dropped; // another layer than the one wanted
                }
                if !p.keyframe_start {
                    return Forwarded::WaitingForKeyframe(p.layer);
                }
                // The target layer's keyframe: switch to it here, seamlessly.
                debug!(participant = %self.id, mid = %sub.mid, from = ?choice.current, to = p.layer, "layer switched at its keyframe");
                switched = choice.current.is_some();
                gap = std::mem::take(&mut choice.dropped_unsent);
                choice.current = Some(p.layer);
                choice.abandon = false;
                choice.switched_at = Some(now);
                sub.backlog.clear();
            }
        }
        if gap {
            // From this packet on the subscriber sees the numbers of what was dropped as lost.
            self.downlink.numbering_gap(now);
        }
        if switched {
            self.forget_resends(slot);
        }
        let Some(sub) = self.subscriptions.get_mut(slot) else {
            return Forwarded::Dropped;
        };
        if !sub.backlog.is_empty() {
            if sub.backlog.len() >= MAX_BACKLOG {
                // Cannot catch up: start over from the next keyframe.
                sub.backlog.clear();
                sub.rewriter.reset_source();
                sub.choice.current = None;
                return Forwarded::WaitingForKeyframe(p.layer);
            }
            sub.backlog.push_back(p.clone());
            return Forwarded::Queued;
        }
        self.write(slot, p, now)
    }

    /// Empties the retransmission history of the subscription in `slot`. After a layer switch
    /// (or a pause) the packets of the layer left behind are of no use to a decoder that
    /// starts again at the new layer's keyframe, and resending them (after a switch down, up
    /// to half of what a higher layer sent) into a link that could not carry that layer keeps
    /// it congested.
    /// While the link is congested resends may take only str0m's default share: loss there
    /// comes from sending too much, and resending at a lossy link's share feeds it.
    pub(crate) fn forget_resends(&mut self, slot: usize) {
        use crate::room::routing::{
            CONGESTED_RTX_RATIO_CAP, RTX_HISTORY, RTX_HISTORY_PACKETS, RTX_RATIO_CAP,
        };
        let Some(ssrc) = self.subscriptions.get(slot).and_then(|s| s.tx_ssrc) else {
            return;
        };
        let cap = if self.rtx_congested {
            CONGESTED_RTX_RATIO_CAP
        } else {
            RTX_RATIO_CAP
        };
        if let Some(tx) = self.rtc.direct_api().stream_tx(&ssrc) {
            tx.set_rtx_cache(RTX_HISTORY_PACKETS, RTX_HISTORY, Some(cap));
        }
    }

    /// The layer of the subscription in `slot` is abandoned on a congested link: what str0m
    /// still holds of it is dropped, its queue and its resend history. Its pacer's queue is
    /// first in, first out, so the new layer's keyframe would wait behind it for as long as
    /// the narrowed link takes to carry it (a second and more, measured: 100 to 200 kB of a
    /// 1.5 Mbit/s layer behind a 500 kbit/s cap); and sent at once instead (unpaced), it is
    /// lost at the bottleneck, where the losses collapse the estimate and the receiver asks
    /// for it again, resends that queue ahead of the new layer in turn.
    ///
    /// str0m drops a send stream's buffers when its media section stops sending; the
    /// direction is set to not sending and back at once, never negotiated (the change is
    /// discarded): nothing is offered, the direction is what was agreed. The receiver sees a
    /// gap in the numbering before the keyframe; what it asks for of it is no longer kept.
    pub(crate) fn drop_abandoned(&mut self, slot: usize, now: Instant) {
        self.downlink.numbering_gap(now);
        let Some(sub) = self.subscriptions.get_mut(slot) else {
            return;
        };
        sub.choice.dropped_unsent = true;
        let mid = sub.mid;
        drop_queued(&mut self.rtc, mid);
    }

    /// Whether its video resends are held to the congested share (see [`Self::forget_resends`]);
    /// a change empties the histories.
    pub(crate) fn set_rtx_congested(&mut self, congested: bool) {
        if self.rtx_congested == congested {
            return;
        }
        self.rtx_congested = congested;
        let slots: Vec<usize> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.kind == MediaKind::Video)
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            self.forget_resends(slot);
        }
    }

    /// Looks at its pacer's video queues when a look is due (see [`crate::pacer_queue`]);
    /// true when they show the link congested with a new or lower ceiling, which the layer
    /// allocation must hear at once.
    pub(crate) fn check_pacer_queue(&mut self, now: Instant) -> bool {
        if !self.bwe || !self.connected || !self.pacer_queue.due(now) {
            return false;
        }
        let (mut queued, mut oldest) = (0u64, None::<Duration>);
        let mut api = self.rtc.direct_api();
        for (_, sub) in &self.subscriptions {
            let (MediaKind::Video, Some(_), Some(ssrc)) = (sub.kind, sub.track, sub.tx_ssrc) else {
                continue;
            };
            let Some(info) = api.stream_tx(&ssrc).and_then(|tx| tx.queue_info()) else {
                continue;
            };
            queued += info.byte_size() as u64;
            if let Some(first) = info.first_unsent() {
                let waited = now.saturating_duration_since(first);
                oldest = Some(oldest.map_or(waited, |o| o.max(waited)));
            }
        }
        let Some(ceiling) = self
            .pacer_queue
            .sample(now, self.sent_bytes, queued, oldest)
        else {
            return false;
        };
        debug!(participant = %self.id, queued, ?oldest, ceiling, "pacer queue congested");
        self.downlink
            .backlogged(ceiling, oldest.unwrap_or_default(), now)
    }

    /// Queues packets (a replayed GOP) ahead of live ones; they leave at the catch-up pace.
    pub(crate) fn queue(&mut self, slot: usize, packets: Vec<Packet>, now: Instant) {
        if let Some(sub) = self.subscriptions.get_mut(slot) {
            sub.backlog.extend(packets);
        }
        if self
            .subscriptions
            .iter()
            .any(|(_, s)| !s.backlog.is_empty())
        {
            self.backlog_due.get_or_insert(now);
        }
    }

    /// Writes up to [`BACKLOG_BURST`] queued packets per subscription; returns how many.
    pub(crate) fn drain_backlogs(&mut self, now: Instant) -> u64 {
        self.backlog_due = None;
        let mut written = 0;
        let slots: Vec<usize> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| !s.backlog.is_empty())
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            for _ in 0..BACKLOG_BURST {
                let Some(p) = self
                    .subscriptions
                    .get_mut(slot)
                    .and_then(|s| s.backlog.pop_front())
                else {
                    break;
                };
                if self.write(slot, &p, now) == Forwarded::Written {
                    written += 1;
                }
            }
        }
        if self
            .subscriptions
            .iter()
            .any(|(_, s)| !s.backlog.is_empty())
        {
            self.backlog_due = Some(now + BACKLOG_PACE);
        }
        written
    }

    /// Rewrites one packet for the subscription in `slot` and hands it to str0m.
    fn write(&mut self, slot: usize, p: &Packet, now: Instant) -> Forwarded {
        let Some(sub) = self.subscriptions.get_mut(slot) else {
            return Forwarded::Dropped;
        };
        let mid = sub.mid;
        let Some(pt) = sub.map_pt(p.pt) else {
            return if std::mem::replace(&mut sub.codec_mismatch, true) {
                Forwarded::Dropped
            } else {
                Forwarded::FirstCodecMismatch
            };
        };
        sub.codec_mismatch = false;
        let payload = match sub.red.get(p.pt) {
            None => p.payload.clone(),
            Some(action) => match red::apply(action, &p.payload) {
                Ok(payload) => Arc::from(payload),
                Err(e) => {
                    debug!(participant = %self.id, %mid, reason = %e, "RED packet dropped");
                    return Forwarded::Dropped;
                }
            },
        };
        let Some(out) =
            sub.rewriter
                .rewrite(p.ssrc, *p.seq, p.ts, p.clock_rate, p.keyframe_start, now)
        else {
            return if sub.rewriter.waiting_for_keyframe() {
                Forwarded::WaitingForKeyframe(p.layer)
            } else {
                Forwarded::Dropped
            };
        };
        let video = sub.kind == MediaKind::Video;
        let tx_ssrc = sub.tx_ssrc;
        let vp8_patch = p
            .vp8
            .as_ref()
            .and_then(|vp8| sub.pictures.patch(sub.rewriter.generation(), vp8));
        let rtc = &mut self.rtc;
        let written = contained("writing RTP", || {
            let mut api = rtc.direct_api();
            let tx = match tx_ssrc {
                Some(ssrc) => api.stream_tx(&ssrc)?,
                None => api.stream_tx_by_mid(mid, None)?,
            };
            let mut write = RtpWrite::new(pt, out.seq.into(), out.ts, p.arrival, payload)
                .marker(p.marker)
                .ext_vals(p.ext.clone())
                .nackable(video);
            if let Some(patch) = vp8_patch {
                write = write.vp8_patch(patch);
            }
            tx.write_rtp(write);
            Some(())
        });
        match written {
            Ok(Some(())) => {
                if let Some(sub) = self.subscriptions.get_mut(slot) {
                    sub.written += 1;
                }
                Forwarded::Written
            }
            Ok(None) => Forwarded::Dropped,
            Err(_) => {
                self.dead = Some(LeaveReason::Failed);
                Forwarded::Dropped
            }
        }
    }

    /// Drains str0m until it asks for a future timeout: transmits go out, events that
    /// concern other participants to `internal`. A timeout that is already due is fed
    /// straight back, so that packets written since the last drain leave in this call.
    pub(crate) fn drive(&mut self, now: Instant, out: &mut Out, internal: &mut VecDeque<Internal>) {
        // One containment for the whole drain, not one per output: a large `Output` moved
        // through `catch_unwind` on every poll costs a copy per forwarded packet.
        if contained("driving a peer", || self.drain(now, out, internal)).is_err() {
            self.dead = Some(LeaveReason::Failed);
            return;
        }
        if !self.rtc.is_alive() && self.dead.is_none() {
            self.dead = Some(LeaveReason::Closed);
        }
    }

    fn drain(&mut self, now: Instant, out: &mut Out, internal: &mut VecDeque<Internal>) {
        let mut immediate = 0;
        // The `Rtc`'s clock: `now`, or a few microseconds ahead after immediate rounds.
        let mut clock = now;
        loop {
            let output = match self.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    warn!(participant = %self.id, "poll_output failed: {e}");
                    self.diag.error(&e);
                    self.dead = Some(LeaveReason::Failed);
                    return;
                }
            };
            match output {
                Output::Timeout(t) => {
                    if t <= clock + IMMEDIATE
                        && immediate < MAX_IMMEDIATE_TIMEOUTS
                        && self.rtc.is_alive()
                    {
                        immediate += 1;
                        clock = clock.max(t);
                        self.timeout(clock);
                        continue;
                    }
                    self.rtc_deadline = t;
                    return;
                }
                Output::Transmit(t) => {
                    self.sent_bytes += t.contents.len() as u64;
                    // Two comparisons per packet once the pair is known.
                    let transport = Transport::of(t.proto);
                    self.diag.sent(
                        now,
                        Kind::of(&t.contents),
                        transport,
                        t.source,
                        t.destination,
                    );
                    let remote = (transport, t.destination);
                    if !self.addrs.contains(&remote) {
                        self.learn(remote, out);
                    }
                    out.transmits.push_back(Transmit {
                        transport,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    });
                }
                Output::Event(e) => self.on_event(now, e, out, internal),
            }
        }
    }

    /// Remembers an address its ICE agent chose to send to, for the demux. Only such
    /// addresses are learned, so a forged STUN request cannot steal another peer's traffic.
    fn learn(&mut self, addr: Remote, out: &mut Out) {
        let forgotten =
            (self.addrs.len() >= MAX_ADDRS_PER_PARTICIPANT).then(|| self.addrs.remove(0));
        self.addrs.push(addr);
        out.learned.push((self.id, addr, forgotten));
    }

    fn on_event(
        &mut self,
        now: Instant,
        e: RtcEvent,
        out: &mut Out,
        internal: &mut VecDeque<Internal>,
    ) {
        if let RtcEvent::IceConnectionStateChange(state) = &e {
            self.diag.ice_state(now, *state);
        }
        match e {
            RtcEvent::RtpPacket(p) => internal.push_back(Internal::Rtp(self.id, p)),
            RtcEvent::KeyframeRequest(r) => {
                internal.push_back(Internal::KeyframeRequest(self.id, r.mid))
            }
            RtcEvent::Connected => {
                self.connected = true;
                self.diag.connected(now);
                internal.push_back(Internal::Connected(self.id));
            }
            // Before it ever connected, str0m says Disconnected when it has no candidate pair
            // to try yet (an offer with only a TCP candidate, its UDP ones still trickling in)
            // and goes back to Checking when one arrives: the connect timeout decides then.
            // Once connected, Disconnected means the nominated pair stopped answering.
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                if self.connected {
                    debug!(participant = %self.id, "ICE disconnected");
                    self.dead = Some(LeaveReason::Timeout);
                } else {
                    debug!(participant = %self.id, "ICE has no candidate pair to try yet");
                }
            }
            RtcEvent::Closed => self.dead = Some(LeaveReason::Closed),
            RtcEvent::ChannelOpen(id, label) => {
                debug!(participant = %self.id, %label, "data channel open");
                self.channel.get_or_insert(id);
            }
            RtcEvent::ChannelData(d) => internal.push_back(Internal::Message(self.id, d.data)),
            RtcEvent::ChannelClose(id) if self.channel == Some(id) => self.channel = None,
            // Loss recovery, as str0m reports it once a second: NACKs this subscriber sent
            // (answered from str0m's per-stream history), and those sent to this publisher.
            RtcEvent::MediaEgressStats(st) => {
                let (nacks, packets) = self.egress.entry(st.mid).or_default();
                out.counters.nacks_received += st.nacks.saturating_sub(*nacks);
                *nacks = st.nacks;
                *packets = st.packets;
                let sent: u64 = self.egress.values().map(|(_, p)| p).sum();
                let written: u64 = self.subscriptions.iter().map(|(_, s)| s.written).sum();
                let resent = sent.saturating_sub(written);
                out.counters.retransmissions += resent.saturating_sub(self.resent);
                self.resent = self.resent.max(resent);
                if self
                    .downlink
                    .report(st.mid, st.bytes, st.loss, st.rtt, st.timestamp)
                {
                    internal.push_back(Internal::Estimate(self.id));
                }
            }
            RtcEvent::MediaIngressStats(st) => {
                let nacks = self.ingress_nacks.entry(st.mid).or_default();
                out.counters.nacks_sent += st.nacks.saturating_sub(*nacks);
                *nacks = st.nacks;
            }
            RtcEvent::EgressBitrateEstimate(kind) => {
                let estimate = match kind {
                    BweKind::Twcc { estimate, .. } => estimate,
                    // A receiver without TWCC (aiortc) reports what it can take.
                    BweKind::Remb { estimate, .. } => estimate,
                    _ => return,
                };
                self.estimate = Some(estimate.as_u64());
                internal.push_back(Internal::Estimate(self.id));
            }
            _ => {}
        }
    }
}

/// Drops what `rtc` holds to send on `mid` (queued packets, the resend history) by stopping
/// the section's sending and starting it again, without negotiating (see
/// [`Participant::drop_abandoned`]). Receiving, if it does, is untouched.
fn drop_queued(rtc: &mut Rtc, mid: Mid) {
    let Some(direction) = rtc.media(mid).map(|m| m.direction()) else {
        return;
    };
    if !direction.is_sending() {
        return;
    }
    let off = if direction.is_receiving() {
        Direction::RecvOnly
    } else {
        Direction::Inactive
    };
    let mut api = rtc.sdp_api();
    api.set_direction(mid, off);
    api.set_direction(mid, direction);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use str0m::bwe::Bitrate;
    use str0m::media::{Direction, MediaKind, Mid, Pt};
    use str0m::net::{Protocol, Receive};
    use str0m::rtp::{RtpWrite, Ssrc};
    use str0m::{Candidate, Input, Output, Rtc};

    use super::drop_queued;

    /// Drives `from` at `now` until it waits, handing what it sends to `to`.
    fn drive(from: &mut Rtc, to: &mut Rtc, now: Instant) {
        from.handle_input(Input::Timeout(now)).unwrap();
        for _ in 0..10_000 {
            match from.poll_output().unwrap() {
                Output::Timeout(_) => return,
                Output::Transmit(t) => {
                    let receive = Receive {
                        proto: Protocol::Udp,
                        source: t.source,
                        destination: t.destination,
                        contents: (&t.contents[..]).try_into().unwrap(),
                    };
                    to.handle_input(Input::Receive(now, receive)).unwrap();
                }
                Output::Event(_) => {}
            }
        }
    }

    /// Two `Rtc`s connected over the direct API, the first with a bandwidth estimate (and so a
    /// pacer), sending video on `mid` from the stream `ssrc`; and the time reached.
    fn connected(mid: Mid, ssrc: Ssrc) -> (Rtc, Rtc, Instant) {
        let mut now = Instant::now();
        let provider = || std::sync::Arc::new(str0m::crypto::from_feature_flags());
        let mut l = Rtc::builder()
            .set_rtp_mode(true)
            .enable_bwe(Some(Bitrate::kbps(300)))
            .set_crypto_provider(provider())
            .build(now);
        let mut r = Rtc::builder()
            .set_rtp_mode(true)
            .set_crypto_provider(provider())
            .build(now);
        let host = |a, port| Candidate::host((Ipv4Addr::new(a, a, a, a), port).into(), "udp");
        let (hl, hr) = (host(1, 1000).unwrap(), host(2, 2000).unwrap());
        l.add_local_candidate(hl.clone());
        l.add_remote_candidate(hr.clone());
        r.add_local_candidate(hr);
        r.add_remote_candidate(hl);
        let (fl, fr) = (
            l.direct_api().local_dtls_fingerprint().clone(),
            r.direct_api().local_dtls_fingerprint().clone(),
        );
        l.direct_api().set_remote_fingerprint(fr);
        r.direct_api().set_remote_fingerprint(fl);
        let (cl, cr) = (
            l.direct_api().local_ice_credentials(),
            r.direct_api().local_ice_credentials(),
        );
        l.direct_api().set_remote_ice_credentials(cr);
        r.direct_api().set_remote_ice_credentials(cl);
        l.direct_api().set_ice_controlling(true);
        r.direct_api().set_ice_controlling(false);
        l.direct_api().start_dtls(true).unwrap();
        r.direct_api().start_dtls(false).unwrap();
        for _ in 0..2_000 {
            if l.is_connected() && r.is_connected() {
                break;
            }
            drive(&mut l, &mut r, now);
            drive(&mut r, &mut l, now);
            now += Duration::from_millis(5);
        }
        assert!(l.is_connected() && r.is_connected(), "not connected");
        let mut api = l.direct_api();
        api.declare_media(mid, MediaKind::Video);
        api.declare_stream_tx(ssrc, None, mid, None);
        (l, r, now)
    }

    /// What the stream `ssrc` of `l` holds after a look at `now`.
    fn queued(l: &mut Rtc, r: &mut Rtc, ssrc: Ssrc, now: Instant) -> usize {
        drive(l, r, now);
        let mut api = l.direct_api();
        let tx = api.stream_tx(&ssrc).unwrap();
        tx.queue_info().map_or(0, |q| q.packet_count())
    }

    #[test]
    fn what_a_section_holds_to_send_is_dropped_and_its_direction_kept() {
        let (mid, ssrc) = (Mid::from("v"), Ssrc::from(7));
        let (mut l, mut r, t0) = connected(mid, ssrc);
        // 100 kB at once into a pacer at about 300 kbit/s: most of it waits.
        let write = |l: &mut Rtc, seq: u64| {
            let w = RtpWrite::new(
                Pt::from(96),
                seq.into(),
                3000 * seq as u32,
                t0,
                vec![0; 1000],
            );
            l.direct_api().stream_tx(&ssrc).unwrap().write_rtp(w);
        };
        for seq in 0..100 {
            write(&mut l, seq);
        }
        let ms = Duration::from_millis(1);
        let before = queued(&mut l, &mut r, ssrc, t0 + ms);
        assert!(before > 50, "{before} queued");
        let direction = l.media(mid).map(|m| m.direction());
        assert_eq!(direction, Some(Direction::SendRecv));
        drop_queued(&mut l, mid);
        assert_eq!(l.media(mid).map(|m| m.direction()), direction);
        assert_eq!(queued(&mut l, &mut r, ssrc, t0 + ms * 2), 0);
        // The stream takes new packets as before.
        write(&mut l, 100);
        write(&mut l, 101);
        let after = queued(&mut l, &mut r, ssrc, t0 + ms * 3);
        assert!(after <= 2, "{after} queued");
        // A section that does not send is left alone.
        l.sdp_api().set_direction(mid, Direction::RecvOnly);
        drop_queued(&mut l, mid);
        assert_eq!(
            l.media(mid).map(|m| m.direction()),
            Some(Direction::RecvOnly)
        );
    }
}
