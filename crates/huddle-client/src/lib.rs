//! huddle-client: a WHIP/WHEP client on str0m that sends and checks synthetic media.
//!
//! [`Publisher`] POSTs a sendonly offer to a WHIP endpoint and streams VP8 or H.264
//! video and Opus-shaped audio whose payloads carry a huddle header
//! ([`media`]); [`Viewer`] POSTs a recvonly offer to a WHEP endpoint and verifies
//! every packet it receives ([`ViewerStats`]). Both are real WebRTC peers (ICE,
//! DTLS, SRTP) driven by str0m on a tokio UDP socket.
//!
//! [`RoomMember`] joins a room over the room WebSocket (`/rooms/{room}/ws`) the way
//! huddle's page does: it publishes the same synthetic media, answers every server offer,
//! verifies every other participant's tracks and chats over the `chat` data channel.
//!
//! With [`VideoSource::Clip`] the publisher instead sends a real, decodable VP8 clip
//! ([`clip`]) in a loop, with Opus silence, so a browser viewer can decode it.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod batch_recv;
mod bytes;
pub mod clip;
mod error;
pub mod frames;
pub mod http;
mod lean;
pub mod media;
mod offer;
mod options;
mod payload_types;
mod peer;
mod publisher;
mod red;
mod room;
mod socket;
mod stats;
pub mod tcp;
mod viewer;

pub use error::ClientError;
pub use media::is_keyframe_start;
pub use options::{
    AudioLevel, AudioPayloadTypes, ClientOptions, LEAN_SETTLE, LeanReceive, SendLayer, VideoCodec,
    VideoSource,
};
pub use publisher::Publisher;
pub use room::RoomMember;
pub use stats::{ChatMessage, MemberStats, PublisherStats, StreamStats, ViewerStats};
pub use viewer::Viewer;

/// Installs str0m's crypto provider (aws-lc-rs) as the process default, once.
///
/// Called before any `Rtc` is built; harmless to call again. A test that builds its
/// own `Rtc` should call it first too.
pub fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}
