//! Server-driven renegotiation for room members: the server is the only side that offers
//! after the member's first offer, one negotiation at a time, so there is never glare.

use std::collections::HashSet;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use tracing::debug;

use super::{Ctx, Room};
use crate::contain::contained;
use crate::participant::Role;
use crate::subscription::Subscription;
use crate::{CoreError, Event, LeaveReason, ParticipantId, TrackId, sdp};

/// Tracks one member may publish (camera, microphone, screen, its audio).
const MAX_OWN_TRACKS: usize = 6;

/// A server offer waiting for the member's answer.
#[derive(Debug)]
pub(crate) struct PendingOffer {
    offer: SdpPendingOffer,
    adding: Vec<(Mid, MediaKind, TrackId)>,
    /// Sections offered for the member to send on (a screen share it asked for).
    receiving: Vec<(Mid, MediaKind)>,
}

impl Room {
    /// A member asks to send another track (a screen share): the next server offer carries
    /// a section for it to send on.
    pub(crate) fn request_publish(
        &mut self,
        cx: &mut Ctx<'_>,
        id: ParticipantId,
        kind: MediaKind,
    ) -> Result<(), CoreError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(CoreError::UnknownParticipant(id))?;
        if p.role != Role::Member || !p.may_publish {
            return Err(CoreError::AnswerRejected(
                "only room members allowed to publish publish more tracks".into(),
            ));
        }
        if p.tracks.len() + p.publish_requests.len() >= MAX_OWN_TRACKS {
            return Err(CoreError::AnswerRejected(format!(
                "at most {MAX_OWN_TRACKS} tracks per member"
            )));
        }
        p.publish_requests.push(kind);
        self.negotiate(cx, id);
        self.settle(cx);
        Ok(())
    }

    /// A member stops one of its tracks: it is unpublished, and its section stopped in the
    /// next server offer.
    pub(crate) fn request_unpublish(
        &mut self,
        cx: &mut Ctx<'_>,
        id: ParticipantId,
        track: TrackId,
    ) -> Result<(), CoreError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(CoreError::UnknownParticipant(id))?;
        if !p.tracks.iter().any(|(_, t)| *t == track) {
            return Err(CoreError::AnswerRejected(format!("{track} is not yours")));
        }
        p.unpublish_requests.push(track);
        self.negotiate(cx, id);
        self.settle(cx);
        Ok(())
    }

    /// Offers a member the tracks it should receive but does not, and stops the sections
    /// whose track is gone — if it is connected and no other offer is outstanding.
    pub(crate) fn negotiate(&mut self, cx: &mut Ctx<'_>, id: ParticipantId) {
        let Some(p) = self.participants.get(&id) else {
            return;
        };
        if p.role != Role::Member || !p.connected || p.pending_offer.is_some() || p.dead.is_some() {
            return;
        }
        let receiving: HashSet<TrackId> = p.subscriptions().filter_map(|s| s.track).collect();
        let mut wanted: Vec<(TrackId, MediaKind, String)> = Vec::new();
        for other in self
            .participants()
            .filter(|o| o.id != id && p.may_subscribe)
        {
            for t in other.tracks() {
                if let Some(track) = self.tracks.get(&t)
                    && !receiving.contains(&t)
                {
                    wanted.push((t, track.kind, other.label.clone()));
                }
            }
        }
        let stopping: Vec<(usize, Mid)> = p
            .subscriptions
            .iter()
            .filter(|(_, s)| s.track.is_none())
            .map(|(slot, s)| (slot, s.mid))
            .collect();
        let publishing = p.publish_requests.clone();
        let unpublishing: Vec<Mid> = p
            .unpublish_requests
            .iter()
            .filter_map(|t| p.tracks.iter().find(|(_, x)| x == t).map(|(m, _)| *m))
            .collect();
        if wanted.is_empty()
            && stopping.is_empty()
            && publishing.is_empty()
            && unpublishing.is_empty()
        {
            return;
        }
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let offered = contained("making a server offer", || {
            let mut api = p.rtc.sdp_api();
            let mut adding = Vec::new();
            for (track, kind, stream) in wanted {
                let mid = api.add_media(
                    kind,
                    Direction::SendOnly,
                    Some(stream),
                    Some(track.to_string()),
                    None,
                );
                adding.push((mid, kind, track));
            }
            for (_, mid) in &stopping {
                api.stop_media(*mid);
            }
            for mid in &unpublishing {
                api.stop_media(*mid);
            }
            let receiving: Vec<(Mid, MediaKind)> = publishing
                .iter()
                .map(|kind| {
                    (
                        api.add_media(*kind, Direction::RecvOnly, None, None, None),
                        *kind,
                    )
                })
                .collect();
            api.apply()
                .map(|(offer, pending)| (offer.to_sdp_string(), pending, adding, receiving))
        });
        let (offer, pending, adding, receiving) = match offered {
            Ok(Some(o)) => o,
            Ok(None) => return,
            Err(_) => {
                p.dead = Some(LeaveReason::Failed);
                self.after_drive(cx, id);
                return;
            }
        };
        debug!(participant = %id, adding = adding.len(), stopping = stopping.len(), "server offer");
        for (slot, _) in &stopping {
            p.subscriptions.try_remove(*slot);
        }
        p.publish_requests.clear();
        p.unpublish_requests.clear();
        p.pending_offer = Some(PendingOffer {
            offer: pending,
            adding,
            receiving,
        });
        let gone: Vec<TrackId> = p
            .tracks
            .iter()
            .filter(|(m, _)| unpublishing.contains(m))
            .map(|(_, t)| *t)
            .collect();
        p.tracks.retain(|(m, _)| !unpublishing.contains(m));
        for track in gone {
            self.unpublish(cx, track);
            cx.out.events.push_back(Event::TrackUnpublished {
                room: self.name.clone(),
                participant: id,
                track,
            });
        }
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        cx.out.events.push_back(Event::Offer {
            participant: id,
            sdp: sdp::finish_local(offer, sdp::Local::Offer),
        });
        p.drive(cx.now, cx.out, &mut self.internal);
        self.after_drive(cx, id);
    }

    /// Applies a member's answer to the outstanding server offer, starts forwarding the
    /// tracks it added, and offers whatever changed meanwhile.
    pub(crate) fn accept_answer(
        &mut self,
        cx: &mut Ctx<'_>,
        id: ParticipantId,
        answer: SdpAnswer,
    ) -> Result<(), CoreError> {
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(CoreError::UnknownParticipant(id))?;
        let pending = p
            .pending_offer
            .take()
            .ok_or_else(|| CoreError::AnswerRejected("no server offer is outstanding".into()))?;
        let accepted = contained("accepting an answer", || {
            p.rtc.sdp_api().accept_answer(pending.offer, answer)
        });
        let accepted = match accepted {
            Ok(r) => r,
            Err(e) => {
                p.dead = Some(LeaveReason::Failed);
                self.after_drive(cx, id);
                self.settle(cx);
                return Err(e);
            }
        };
        accepted.map_err(|e| CoreError::AnswerRejected(e.to_string()))?;
        debug!(participant = %id, "answer accepted");
        let added: Vec<(usize, TrackId)> = pending
            .adding
            .into_iter()
            .map(|(mid, kind, track)| (p.subscriptions.insert(Subscription::new(mid, kind)), track))
            .collect();
        p.drive(cx.now, cx.out, &mut self.internal);
        for (slot, track) in added {
            if self.tracks.contains_key(&track) {
                self.attach(cx, id, slot, track);
            }
        }
        // What it agreed to send on the sections offered for it: new tracks of its own.
        for (mid, kind) in pending.receiving {
            let direction = self
                .participants
                .get(&id)
                .and_then(|p| p.rtc.media(mid))
                .filter(|m| !m.disabled())
                .map(|m| m.direction());
            if let Some(direction) = direction {
                self.media_added(cx, id, mid, kind, direction);
            }
        }
        self.refresh(cx);
        self.after_drive(cx, id);
        self.negotiate(cx, id);
        self.settle(cx);
        Ok(())
    }
}
