//! `meeting`: R rooms × N participants, each publishing and receiving all others.
//!
//! Not implemented yet. The server has the room WebSocket (`/rooms/{room}/ws`, see
//! `huddle-server/src/signaling/messages.rs`), but a meeting participant there is one peer
//! connection that offers its own tracks and then answers server offers (renegotiation) as
//! others join, and huddle-client has no such peer: it only speaks WHIP and WHEP. Once it has
//! one (a `Member` that joins over the WebSocket and exposes `ViewerStats` per remote track),
//! this scenario is a loop over rooms like `broadcast`.

/// Why `meeting` cannot run.
pub const UNAVAILABLE: &str = "meeting is not implemented: huddle-client has no room-WebSocket \
     (/rooms/{room}/ws) participant that publishes and answers server offers";
