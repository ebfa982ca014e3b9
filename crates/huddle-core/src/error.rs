use crate::ParticipantId;

/// Everything a caller of the core can get wrong, or the core can refuse.
///
/// Each variant is a client-visible reason: the server maps them to HTTP statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The SDP could not be parsed.
    #[error("malformed SDP: {0}")]
    MalformedSdp(String),
    /// The offer parsed, but str0m (or huddle) cannot accept it.
    #[error("offer rejected: {0}")]
    OfferRejected(String),
    /// The offer has no audio or video section with a codec huddle can forward.
    #[error("no usable media: {0}")]
    NoUsableMedia(String),
    /// A trickled candidate could not be parsed.
    #[error("malformed ICE candidate: {0}")]
    MalformedCandidate(String),
    /// The room name is empty, too long or has characters outside `[A-Za-z0-9._~-]`.
    #[error("invalid room name (1-64 characters of A-Z a-z 0-9 . _ ~ -)")]
    InvalidRoomName,
    /// The participant does not exist (it left, timed out, or never existed).
    #[error("unknown participant {0}")]
    UnknownParticipant(ParticipantId),
    /// An answer arrived with no server offer outstanding, or did not fit the offer.
    #[error("answer rejected: {0}")]
    AnswerRejected(String),
    /// The media engine failed on this peer's input (a panic inside str0m, contained): the
    /// peer is dropped, everyone else is unaffected.
    #[error("the media engine failed in {0}; this session was dropped")]
    PeerFailed(&'static str),
    /// A configured limit refuses it (rooms, participants in a room); the reason says which.
    #[error("refused: {0}")]
    Refused(String),
    /// The server is at its configured participant limit.
    #[error("server full ({0} participants)")]
    Full(usize),
}
