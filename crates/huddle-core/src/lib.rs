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
//! Sfu ─┬─ Room "standup" ─┬─ Participant p1 (Publisher, one str0m Rtc)
//!      │                  │     └─ Track t1 (video, mid 0) ──▶ Subscription ──▶ p2 mid 1
//!      │                  │     └─ Track t2 (audio, mid 1) ──▶ Subscription ──▶ p2 mid 0
//!      │                  └─ Participant p2 (Viewer, one str0m Rtc)
//!      └─ Room "town-hall" …
//! ```
//!
//! - A [`Room`](room) groups participants; media never crosses rooms.
//! - A [`Participant`](participant) is one peer connection: one str0m `Rtc` in RTP mode. Its
//!   [`Role`] says what it gets: a WHIP `Publisher` sends, a WHEP `Viewer` receives the room's
//!   longest-present publisher, a `Member` (a browser in a call) sends and receives every
//!   other track through offers the server makes ([`Event::Offer`], [`Sfu::accept_answer`]).
//! - A [`Track`](track) is one media stream a participant publishes (a `mid` it sends on).
//!   It is received once, whatever the number of subscribers.
//! - A [`Subscription`](subscription) connects a track to one outgoing `mid` of another
//!   participant, and rewrites SSRC, sequence numbers and timestamps so that each
//!   subscriber sees one contiguous stream, also when the source behind it changes.
//!
//! Modules: [`sfu`](Sfu) is the endpoint (commands, datagrams, timers, lifecycle), `routing`
//! wires tracks to subscriptions and fans packets out, `negotiation` runs members' server
//! offers, `demux` finds a datagram's participant, [`keyframe`] reads codec payloads.
//!
//! # Driving the core
//!
//! ```no_run
//! # use std::time::Instant;
//! # use huddle_core::{Sfu, SfuConfig, Datagram};
//! let mut sfu = Sfu::new(SfuConfig::new(vec!["127.0.0.1:4000".parse().unwrap()]));
//! let answer = sfu.publish(Instant::now(), "room", "v=0 …offer…").unwrap();
//! // For every datagram read from the socket:
//! # let (from, to, bytes) = ("1.2.3.4:5".parse().unwrap(), "127.0.0.1:4000".parse().unwrap(), &[][..]);
//! sfu.handle_datagram(Instant::now(), Datagram { source: from, destination: to, contents: bytes });
//! // Then drain what it wants to send and tell, and sleep until its next timeout.
//! while let Some(t) = sfu.poll_transmit() { /* socket.send_to(&t.contents, t.destination) */ }
//! while let Some(e) = sfu.poll_event() { /* log, tell signaling */ }
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

mod codec;
mod config;
mod contain;
mod demux;
mod dtls;
mod error;
mod event;
mod ids;
pub mod keyframe;
mod negotiation;
pub mod participant;
pub mod room;
mod routing;
mod sdp;
mod sfu;
pub mod subscription;
mod timers;
pub mod track;

pub use config::SfuConfig;
pub use error::CoreError;
pub use event::{Event, LeaveReason};
pub use ids::{ParticipantId, TrackId};
pub use participant::Role;
pub use sfu::{Answer, Datagram, IceRestart, Sfu, SfuStats, Transmit};

/// Re-exported so that callers can name codecs and media kinds without depending on str0m.
pub use str0m::format::Codec;
pub use str0m::media::MediaKind;
