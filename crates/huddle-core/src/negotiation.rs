//! Server-driven renegotiation for room members: the server is the only side that offers
//! after the member's first offer, one negotiation at a time, so there is never glare.

use std::collections::HashSet;
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use tracing::debug;

use crate::contain::contained;
use crate::participant::Role;
use crate::subscription::Subscription;
use crate::{CoreError, Event, LeaveReason, ParticipantId, Sfu, TrackId, sdp};

/// A server offer waiting for the member's answer.
#[derive(Debug)]
pub(crate) struct PendingOffer {
    offer: SdpPendingOffer,
    adding: Vec<(Mid, MediaKind, TrackId)>,
    stopping: Vec<Mid>,
}

impl Sfu {
    /// Offers a member the tracks it should receive but does not, and stops the sections
    /// whose track is gone — if it is connected and no other offer is outstanding.
    pub(crate) fn negotiate(&mut self, now: Instant, id: ParticipantId) {
        let Some(p) = self.participants.get(&id) else {
            return;
        };
        if p.role != Role::Member || !p.connected || p.pending_offer.is_some() || p.dead.is_some() {
            return;
        }
        let receiving: HashSet<TrackId> = p.subscriptions.iter().filter_map(|s| s.track).collect();
        let mut wanted: Vec<(TrackId, MediaKind, String)> = Vec::new();
        if let Some(room) = self.rooms.get(&p.room) {
            for other in &room.participants {
                if *other == id {
                    continue;
                }
                let Some(o) = self.participants.get(other) else {
                    continue;
                };
                for (_, t) in &o.tracks {
                    if let Some(track) = self.tracks.get(t)
                        && !receiving.contains(t)
                    {
                        wanted.push((*t, track.kind, o.label.clone()));
                    }
                }
            }
        }
        let stopping: Vec<Mid> = p
            .subscriptions
            .iter()
            .filter(|s| s.track.is_none())
            .map(|s| s.mid)
            .collect();
        if wanted.is_empty() && stopping.is_empty() {
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
            for mid in &stopping {
                api.stop_media(*mid);
            }
            api.apply()
                .map(|(offer, pending)| (offer.to_sdp_string(), pending, adding))
        });
        let (offer, pending, adding) = match offered {
            Ok(Some(o)) => o,
            Ok(None) => return,
            Err(_) => {
                p.dead = Some(LeaveReason::Failed);
                self.after_drive(id);
                return;
            }
        };
        debug!(participant = %id, adding = adding.len(), stopping = stopping.len(), "server offer");
        p.subscriptions.retain(|s| !stopping.contains(&s.mid));
        p.pending_offer = Some(PendingOffer {
            offer: pending,
            adding,
            stopping,
        });
        self.events.push_back(Event::Offer {
            participant: id,
            sdp: sdp::finish_local(offer, sdp::Local::Offer),
        });
        p.drive(now, &mut self.transmits, &mut self.internal);
        self.after_drive(id);
    }

    /// Applies a member's answer to the outstanding server offer, starts forwarding the
    /// tracks it added, and offers whatever changed meanwhile.
    pub fn accept_answer(
        &mut self,
        now: Instant,
        id: ParticipantId,
        answer: &str,
    ) -> Result<(), CoreError> {
        let parsed = contained("parsing an answer", || SdpAnswer::from_sdp_string(answer))?
            .map_err(|e| CoreError::MalformedSdp(e.to_string()))?;
        let pending = self
            .participants
            .get_mut(&id)
            .ok_or(CoreError::UnknownParticipant(id))?
            .pending_offer
            .take()
            .ok_or_else(|| CoreError::AnswerRejected("no server offer is outstanding".into()))?;
        let stopping = pending.stopping;
        let adding = pending.adding;
        self.with_peer(now, id, "accepting an answer", |p| {
            p.rtc.sdp_api().accept_answer(pending.offer, parsed)
        })?
        .map_err(|e| CoreError::AnswerRejected(e.to_string()))?;
        let p = self
            .participants
            .get_mut(&id)
            .ok_or(CoreError::UnknownParticipant(id))?;
        debug!(participant = %id, stopped = stopping.len(), "answer accepted");
        for (mid, kind, _) in &adding {
            p.subscriptions.push(Subscription::new(*mid, *kind));
        }
        p.drive(now, &mut self.transmits, &mut self.internal);
        for (mid, _, track) in adding {
            if self.tracks.contains_key(&track) {
                self.attach(now, id, mid, track);
            }
        }
        self.after_drive(id);
        self.negotiate(now, id);
        self.process_pending(now);
        Ok(())
    }

    /// Adds one trickled remote candidate (`candidate:…`, with or without `a=`).
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        id: ParticipantId,
        candidate: &str,
    ) -> Result<(), CoreError> {
        let Some(c) = sdp::parse_candidate(candidate)? else {
            return Ok(());
        };
        self.with_peer(now, id, "adding a candidate", |p| {
            p.rtc.add_remote_candidate(c)
        })?;
        if let Some(p) = self.participants.get_mut(&id) {
            p.drive(now, &mut self.transmits, &mut self.internal);
        }
        self.after_drive(id);
        self.process_pending(now);
        Ok(())
    }

    /// Sends a data channel message to one participant. Returns false when it has no open
    /// channel or the channel's buffer is full (the message is dropped, never queued forever).
    pub fn send_message(&mut self, now: Instant, to: ParticipantId, data: &[u8]) -> bool {
        let sent = self.with_peer(now, to, "writing to a data channel", |p| {
            let channel = p.channel?;
            p.rtc.channel(channel)?.write(false, data).ok()
        });
        let Some(p) = self.participants.get_mut(&to) else {
            return false;
        };
        p.drive(now, &mut self.transmits, &mut self.internal);
        self.after_drive(to);
        self.process_pending(now);
        sent.ok().flatten().unwrap_or(false)
    }
}
