//! Relays: a room's main feed carried **once** from the worker (or node) where it is
//! published to another that has viewers of it, which fans it out locally.
//!
//! The origin keeps a *downstream* per link: it follows the room's main publisher as a viewer
//! does, and every packet of the tracks it follows leaves once, as a [`Relay::Packet`]
//! sharing the payload, in the clear: the other side encrypts it for each of its own viewers,
//! so nothing is encrypted twice. The other side keeps an *upstream*: relayed tracks its
//! viewers follow as they would a local publisher. Keyframe requests, and "nobody watches any
//! more", flow back over the same link.
//!
//! The core does not know what carries a link. The server passes these messages between its
//! media workers over channels; between nodes a link can ride on a server-to-server session.

use str0m::format::PayloadParams;

use crate::MediaKind;
use crate::track::Packet;

/// One relay between two [`Sfu`](crate::Sfu)s, named by whoever sets it up; both ends use the
/// same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelayLink(pub u64);

impl std::fmt::Display for RelayLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// What travels over a link, in either direction: take it from one `Sfu` with
/// [`poll_relay`](crate::Sfu::poll_relay), give it to the other with
/// [`relay_in`](crate::Sfu::relay_in).
// Packets are the common case: boxing them would allocate once per relayed packet.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Relay {
    /// Origin → edge: from now on the room's `kind` track is this one (a new publisher, or
    /// new payload types).
    Track {
        kind: MediaKind,
        params: Vec<PayloadParams>,
    },
    /// Origin → edge: the room has no `kind` track any more.
    Ended { kind: MediaKind },
    /// Origin → edge: one packet of the room's `kind` track.
    Packet { kind: MediaKind, packet: Packet },
    /// Edge → origin: a viewer needs a keyframe of the `kind` track (of its layer `rid`).
    KeyframeRequest {
        kind: MediaKind,
        rid: Option<str0m::media::Rid>,
    },
    /// Edge → origin: nobody watches at the edge any more; close the link.
    Unsubscribed,
}

/// One end of a link in a room: at the origin (a downstream), the room's tracks it relays;
/// at the edge (the upstream), the relayed tracks that stand in for them.
#[derive(Debug)]
pub(crate) struct Feed {
    pub link: RelayLink,
    pub video: Option<crate::TrackId>,
    pub audio: Option<crate::TrackId>,
}

impl Feed {
    pub(crate) fn new(link: RelayLink) -> Self {
        Feed {
            link,
            video: None,
            audio: None,
        }
    }

    pub(crate) fn slot(&mut self, kind: MediaKind) -> &mut Option<crate::TrackId> {
        match kind {
            MediaKind::Video => &mut self.video,
            MediaKind::Audio => &mut self.audio,
        }
    }
}
