//! A room: the participants that share media, in the order they joined.

use crate::ParticipantId;

/// Participants that see each other's media. Media never crosses rooms.
#[derive(Debug)]
pub struct Room {
    pub name: String,
    /// In join order: the longest-present publisher is the one viewers receive.
    pub(crate) participants: Vec<ParticipantId>,
}

impl Room {
    pub(crate) fn new(name: String) -> Self {
        Room {
            name,
            participants: Vec::new(),
        }
    }

    pub fn participants(&self) -> &[ParticipantId] {
        &self.participants
    }
}

/// Room names go into URLs and logs: 1–64 characters of `A-Z a-z 0-9 . _ ~ -`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}
