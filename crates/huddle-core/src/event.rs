use str0m::media::Mid;

use crate::{Codec, Diagnosis, MediaKind, ParticipantId, Role, TrackId};

/// Why a participant left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// The signaling side asked for it (WHIP/WHEP `DELETE`, WebSocket closed…).
    Requested,
    /// ICE did not connect in time, or consent/connectivity was lost.
    Timeout,
    /// The peer closed DTLS or the SCTP association.
    Closed,
    /// str0m reported an error on this peer's input; the peer was dropped.
    Failed,
}

/// What happened inside the core, for signaling, logs and metrics.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A participant was created in a room.
    Joined {
        room: String,
        participant: ParticipantId,
        role: Role,
    },
    /// ICE and DTLS are up: media can flow.
    Connected { participant: ParticipantId },
    /// How a participant's connection went, told once as it leaves (just before
    /// [`Event::Left`]): kept by the caller for diagnosis, and logged when it failed.
    Diagnosis {
        room: String,
        participant: ParticipantId,
        role: Role,
        diagnosis: Box<Diagnosis>,
    },
    /// A participant is gone, with all its tracks and subscriptions.
    Left {
        room: String,
        participant: ParticipantId,
        reason: LeaveReason,
    },
    /// A participant started sending a track.
    TrackPublished {
        room: String,
        participant: ParticipantId,
        track: TrackId,
        kind: MediaKind,
        /// The publisher's m-section it arrives on.
        mid: Mid,
    },
    /// A track ended (its publisher left or stopped it).
    TrackUnpublished {
        room: String,
        participant: ParticipantId,
        track: TrackId,
    },
    /// A track is now forwarded to a subscriber.
    Subscribed {
        subscriber: ParticipantId,
        track: TrackId,
    },
    /// A server offer for a member: send it to the member, then call
    /// [`Sfu::accept_answer`](crate::Sfu::accept_answer) with its answer.
    Offer {
        participant: ParticipantId,
        sdp: String,
    },
    /// A data channel message from a participant, for the signaling layer to relay with
    /// [`Sfu::send_message`](crate::Sfu::send_message).
    Message {
        room: String,
        participant: ParticipantId,
        data: Vec<u8>,
    },
    /// The room's active speaker changed (`None`: whoever spoke left).
    ActiveSpeaker {
        room: String,
        participant: Option<ParticipantId>,
    },
    /// A track cannot be forwarded to a subscriber: it negotiated none of the track's codecs,
    /// or not the one (`codecs`) the publisher sends it in.
    CodecMismatch {
        subscriber: ParticipantId,
        track: TrackId,
        codecs: Vec<Codec>,
    },
}
