//! Routing: which track goes to which subscriber, and moving packets along those routes —
//! viewers follow a room's main publisher, members get every other track; packets are
//! fanned out, keyframes requested, and new subscribers started on a keyframe.

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::rtp::RtpPacket;
use tracing::{debug, warn};

use crate::participant::{Forwarded, Role};
use crate::room::Room;
use crate::track::Packet;
use crate::{Event, ParticipantId, Sfu, TrackId, codec};

impl Sfu {
    /// The publisher a room's viewers receive: the longest-present one with tracks.
    pub(crate) fn main_publisher(&self, room: &Room) -> Option<ParticipantId> {
        room.participants.iter().copied().find(|id| {
            self.participants
                .get(id)
                .is_some_and(|p| p.role == Role::Publisher && !p.tracks.is_empty())
        })
    }

    /// Brings a room's subscriptions up to date after its tracks changed: viewers follow the
    /// main publisher, members renegotiate to receive every other track.
    pub(crate) fn refresh_room(&mut self, now: Instant, room: &str) {
        self.refresh_viewers(now, room);
        let members: Vec<ParticipantId> = self
            .rooms
            .get(room)
            .map(|r| r.participants.clone())
            .unwrap_or_default();
        for id in members {
            self.negotiate(now, id);
        }
    }

    /// Points every viewer's subscriptions at the room's main publisher's tracks.
    fn refresh_viewers(&mut self, now: Instant, room: &str) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let main = self.main_publisher(r);
        let mut changes = Vec::new();
        for vid in &r.participants {
            let Some(v) = self.participants.get(vid) else {
                continue;
            };
            if v.role != Role::Viewer {
                continue;
            }
            for sub in &v.subscriptions {
                let desired = main.and_then(|m| self.first_track(m, sub.kind));
                if sub.track != desired {
                    changes.push((*vid, sub.mid, sub.track, desired));
                }
            }
        }
        for (vid, mid, old, new) in changes {
            if let Some(old) = old {
                self.detach(vid, mid, old);
            }
            if let Some(new) = new {
                self.attach(now, vid, mid, new);
            }
        }
    }

    fn first_track(&self, id: ParticipantId, kind: MediaKind) -> Option<TrackId> {
        let p = self.participants.get(&id)?;
        p.tracks
            .iter()
            .map(|(_, t)| *t)
            .find(|t| self.tracks.get(t).is_some_and(|t| t.kind == kind))
    }

    /// Starts forwarding `track` to `subscriber`'s `mid`: maps payload types, replays the
    /// current group of pictures and asks the publisher for a fresh keyframe.
    pub(crate) fn attach(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        mid: Mid,
        track: TrackId,
    ) {
        let (Some(s), Some(t)) = (
            self.participants.get_mut(&subscriber),
            self.tracks.get_mut(&track),
        ) else {
            return;
        };
        let sub_params = codec::negotiated(&s.rtc, mid);
        let pt_map = codec::pt_map(&t.params, &sub_params);
        let Some(sub) = s.subscription_mut(mid) else {
            return;
        };
        sub.track = Some(track);
        sub.rewriter.reset_source();
        t.subscribers.push((subscriber, mid));
        if pt_map.is_empty() {
            warn!(%subscriber, %track, codecs = ?t.codecs(), "subscriber negotiated none of the track's codecs");
            sub.pt_map.clear();
            sub.codec_mismatch = true;
            self.events.push_back(Event::CodecMismatch {
                subscriber,
                track,
                codecs: t.codecs(),
            });
            return;
        }
        sub.pt_map = pt_map;
        debug!(%subscriber, %track, %mid, "subscribed");
        self.events
            .push_back(Event::Subscribed { subscriber, track });
        if s.connected {
            self.start_video(now, subscriber, mid, track);
        }
    }

    /// Starts a connected subscriber's video at once: replays the track's current group of
    /// pictures (it begins with a keyframe) and asks the publisher for a fresh keyframe.
    pub(crate) fn start_video(
        &mut self,
        now: Instant,
        subscriber: ParticipantId,
        mid: Mid,
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
        let replay = t.gop.replay();
        if !replay.is_empty() {
            debug!(%subscriber, %track, packets = replay.len(), "replaying current GOP");
            s.queue(mid, replay, now);
            let written = s.drain_backlogs(now);
            self.stats.packets_forwarded += written;
            s.drive(now, &mut self.transmits, &mut self.internal);
            self.after_drive(subscriber);
        }
        self.request_keyframe(now, track);
    }

    pub(crate) fn detach(&mut self, subscriber: ParticipantId, mid: Mid, track: TrackId) {
        if let Some(t) = self.tracks.get_mut(&track) {
            t.subscribers.retain(|s| *s != (subscriber, mid));
        }
        if let Some(sub) = self
            .participants
            .get_mut(&subscriber)
            .and_then(|p| p.subscription_mut(mid))
        {
            sub.detach();
        }
    }

    /// Asks a track's publisher for a keyframe, at most once per interval; requests in
    /// between are merged into one sent when the interval ends.
    pub(crate) fn request_keyframe(&mut self, now: Instant, track: TrackId) {
        let interval = self.config.keyframe_request_interval;
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if t.kind != MediaKind::Video {
            return;
        }
        let Some(p) = self.participants.get_mut(&t.owner) else {
            return;
        };
        if t.keyframe_requests.request(now, interval) {
            if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(t.mid, None) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                self.stats.keyframe_requests_sent += 1;
                p.drive(now, &mut self.transmits, &mut self.internal);
            }
        } else if let Some(due) = t.keyframe_requests.due(interval) {
            p.keyframe_due = Some(p.keyframe_due.map_or(due, |d| d.min(due)));
        }
        let owner = t.owner;
        self.after_drive(owner);
    }

    /// Fans one received RTP packet out to every subscriber of its track.
    pub(crate) fn forward(&mut self, now: Instant, id: ParticipantId, rtp: RtpPacket) {
        self.stats.packets_received += 1;
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let Some(track) = p.track_for_ssrc(rtp.header.ssrc) else {
            debug!(participant = %id, ssrc = %rtp.header.ssrc, "RTP for no published track");
            return;
        };
        let Some(t) = self.tracks.get_mut(&track) else {
            return;
        };
        if !t.source.admit(rtp.header.ssrc, now) {
            return; // another encoding of the same track (a simulcast layer)
        }
        let Some((codec, clock_rate)) = t.codec_of(rtp.header.payload_type) else {
            debug!(%track, pt = %rtp.header.payload_type, "RTP with a payload type not negotiated");
            return;
        };
        let packet = Packet::from_rtp(rtp, codec, clock_rate);
        t.gop.push(&packet);
        let mut needs_keyframe = false;
        for &(sid, mid) in &t.subscribers {
            let Some(s) = self.participants.get_mut(&sid) else {
                continue;
            };
            match s.forward(mid, &packet, now) {
                Forwarded::Written => {
                    self.stats.packets_forwarded += 1;
                    // Driven once the whole batch is written (Sfu::drive_written).
                    if !std::mem::replace(&mut s.written, true) {
                        self.written.push(sid);
                    }
                }
                Forwarded::WaitingForKeyframe => needs_keyframe = true,
                Forwarded::FirstCodecMismatch => {
                    warn!(subscriber = %sid, %track, ?codec, "subscriber cannot receive the track's codec");
                    self.events.push_back(Event::CodecMismatch {
                        subscriber: sid,
                        track,
                        codecs: vec![codec],
                    });
                }
                Forwarded::Queued | Forwarded::Dropped => {}
            }
        }
        if needs_keyframe {
            self.request_keyframe(now, track);
        }
    }
}
