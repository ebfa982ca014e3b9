use std::net::SocketAddr;
use std::time::Duration;

use crate::Ids;

/// How an [`Sfu`](crate::Sfu) behaves. Everything has a production default except the
/// addresses, which only the caller knows.
#[derive(Clone, Debug)]
pub struct SfuConfig {
    /// The UDP addresses the core advertises as ICE candidates. Every [`Datagram`](crate::Datagram)
    /// handed in must name one of them as its `destination` (behind NAT: the public address).
    pub candidates: Vec<SocketAddr>,
    /// ICE-TCP (RFC 6544): also advertise each address as a passive TCP host candidate, at
    /// a lower priority than UDP, for peers whose network blocks UDP. The caller accepts
    /// TCP connections on those addresses and hands their RFC 4571 frames in as
    /// [`Transport::Tcp`](crate::Transport) datagrams.
    pub ice_tcp: bool,
    /// A participant that has not connected ICE and DTLS by then is removed.
    pub connect_timeout: Duration,
    /// A connected participant from which nothing (media, RTCP, ICE consent) arrives for this
    /// long is gone: removed, and the room told. Browsers send RTCP every second or so.
    pub silence_timeout: Duration,
    /// At most one keyframe request per published track in this interval; requests that
    /// arrive in between are merged into one sent when it ends.
    pub keyframe_request_interval: Duration,
    /// Upper bound on the packets kept of a video track's current group of pictures, replayed
    /// to a new subscriber so that it can decode at once even when the publisher ignores
    /// keyframe requests (OBS). A longer GOP is not cached.
    pub gop_cache_packets: usize,
    /// Refuse new participants beyond this number.
    pub max_participants: usize,
    /// Receivers that negotiate transport-wide congestion control get a bandwidth estimate,
    /// from which their video layers are chosen (and video paused when it cannot be carried).
    pub bandwidth_estimation: bool,
    /// In a room with more video tracks than this, each subscriber gets the cameras of those
    /// who are not recent active speakers at a low layer (reason `not-speaking`); pins and
    /// screen shares are exempt. 0 turns it off.
    pub speaker_focus_after: usize,
    /// Where participant and track ids come from; share one between the `Sfu`s of a process.
    pub ids: Ids,
}

impl SfuConfig {
    /// Defaults for everything but the advertised addresses.
    pub fn new(candidates: Vec<SocketAddr>) -> Self {
        SfuConfig {
            candidates,
            ice_tcp: false,
            connect_timeout: Duration::from_secs(20),
            silence_timeout: Duration::from_secs(8),
            keyframe_request_interval: Duration::from_millis(500),
            gop_cache_packets: 1500,
            max_participants: 10_000,
            bandwidth_estimation: true,
            speaker_focus_after: 6,
            ids: Ids::default(),
        }
    }
}
