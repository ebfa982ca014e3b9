//! The sans-IO media core of huddle, a selective forwarding unit (SFU).
//!
//! This crate has one job: given datagrams, signaling commands and the current time, decide
//! what to send where. It never touches a socket, a clock or a thread; the caller feeds it
//! datagrams, commands and instants and drains [`Transmit`]s, [`Event`]s and the next timeout, exactly like
//! `quinn-proto` or str0m itself. `huddle-server` is the runtime shell around it.
//!
//! # The media model
//!
//! ```text
//! Sfu (one per media worker) ─┬─ Room "standup" ─┬─ Participant p1 (Publisher, one str0m Rtc)
//!   demux: ufrag/addr → room  │                  │    publishes Track t1 (video) ──┐
//!   timers, relay links       │                  │    publishes Track t2 (audio) ──┼─▶ Subscription
//!                             │                  └─ Participant p2 (Viewer)  ◀─────┘   (p2's slot,
//!                             │                                                        rewriting)
//!                             └─ Room "town-hall" ── … tracks relayed to another worker ──▶ RelayLink
//! ```
//!
//! - The [`Sfu`] is one media worker's endpoint: it finds where each datagram, command, timer
//!   and relay message goes and hands it to that room. It owns the rooms.
//! - A [`Room`] owns its participants, the tracks they publish and who receives what; media
//!   never crosses rooms. Each room settles on its own after every step.
//! - A [`Participant`] is one peer connection: one str0m `Rtc` in RTP mode. Its [`Role`] says
//!   what it gets: a WHIP `Publisher` sends, a WHEP `Viewer` receives the room's main feed (its
//!   longest-present publisher), a `Member` (a browser in a call) sends and receives every
//!   other track through offers the server makes ([`Event::Offer`], [`Sfu::accept_answer`]).
//! - A [`Track`] is one media stream, received once whatever the number of subscribers:
//!   published here by a participant, or relayed in from another worker ([`relay`]).
//! - A [`Subscription`] connects a track to one outgoing `mid` of a subscriber and rewrites
//!   SSRC, sequence numbers and timestamps so that each subscriber sees one contiguous stream,
//!   also when the source behind it changes.
//!
//! Who owns what: `Sfu → Room → {Participant → Subscription, Track}`. A track names its
//! subscribers by (participant, subscription slot); nothing else points across.
//!
//! Modules: [`sfu`](Sfu) routes inputs; `room` holds a room's state (`routing`: fan-out,
//! keyframes, relays; `negotiation`: members' server offers); [`prepare`] accepts an offer
//! (off the media loop if the caller likes); [`relay`] carries a room's feed between workers
//! or nodes; `demux` finds a datagram's participant; `dtls` is the handshake (OpenSSL, for
//! RSA and ECDSA peers); [`keyframe`] reads codec payloads; `room::allocation` chooses each
//! subscription's simulcast layer and says why, from the estimate, `downlink` (congestion in
//! receiver reports) and `speaker` (who talks); `red` rewrites or unwraps Opus RED; and
//! [`diagnosis`] records how each participant's connection came up, or why not.
//!
//! # Driving the core
//!
//! ```no_run
//! # use std::time::Instant;
//! # use huddle_core::{Sfu, SfuConfig, Datagram, Transport};
//! let mut sfu = Sfu::new(SfuConfig::new(vec!["127.0.0.1:4000".parse().unwrap()]));
//! let answer = sfu.publish(Instant::now(), "room", "v=0 …offer…").unwrap();
//! // For every datagram read from the socket:
//! # let (from, to, bytes) = ("1.2.3.4:5".parse().unwrap(), "127.0.0.1:4000".parse().unwrap(), &[][..]);
//! sfu.handle_datagram(Instant::now(), Datagram { transport: Transport::Udp, source: from, destination: to, contents: bytes });
//! // Then drain what it wants to send, tell and relay, and sleep until its next timeout.
//! while let Some(t) = sfu.poll_transmit() { /* socket.send_to(&t.contents, t.destination) */ }
//! while let Some(e) = sfu.poll_event() { /* log, tell signaling */ }
//! while let Some((link, msg)) = sfu.poll_relay() { /* to the Sfu at the link's other end */ }
//! let wake_at = sfu.poll_timeout();
//! ```

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

mod accept;
mod choice;
mod codec;
mod config;
mod contain;
mod demux;
pub mod diagnosis;
mod downlink;
mod dtls;
mod error;
mod event;
mod ids;
pub mod keyframe;
pub mod layer;
mod out;
mod pacer_queue;
pub mod participant;
mod picture;
mod pull;
mod red;
pub mod relay;
mod reprobe;
pub mod room;
mod sdp;
mod sfu;
mod speaker;
pub mod subscription;
mod timers;
pub mod track;

pub use accept::{Prepared, prepare};
pub use choice::{LayerReport, Preference, Reason, SubscriptionReport};
pub use config::SfuConfig;
pub use diagnosis::{Diagnosis, Failure};
pub use error::CoreError;
pub use event::{Event, LeaveReason};
pub use ids::{Ids, ParticipantId, TrackId};
pub use participant::{Participant, Role};
pub use pull::Pull;
pub use relay::{Relay, RelayLink};
pub use room::Room;
pub use sfu::{Answer, Datagram, IceRestart, Sfu, SfuStats, Transmit, Transport};
pub use subscription::Subscription;
pub use track::{Packet, Track};

/// Re-exported so that callers can name codecs and media kinds without depending on str0m.
pub use str0m::format::Codec;
pub use str0m::media::MediaKind;
