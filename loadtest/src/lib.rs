//! huddle-loadtest: drives huddle (or another SFU, through [`sut::Sut`]) with real WebRTC
//! peers from huddle-client and measures what it costs.
//!
//! - [`scenario`]: `broadcast` (1 → N), `ramp` (N grows until a limit), `meeting` (R rooms × N participants over the room WebSocket).
//! - [`procstat`]: server and harness CPU time and RSS from `/proc`.
//! - [`floor`]: the per-packet hardware floor (AES-128-GCM seal + batched UDP send).
//! - [`server_window`]: huddle's own figures for a window (residence time, fan-out per worker).
//! - [`sut`]: huddle (WHIP/WHEP) as the system under test; [`janus`]: Janus's VideoRoom.
//! - [`compare`]: `broadcast --sut huddle,janus`, interleaved runs side by side.
//! - [`report`], [`plot`]: tables, JSON and the ramp SVG.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod cli;
pub mod compare;
pub mod floor;
pub mod janus;
pub mod plot;
pub mod procstat;
pub mod report;
pub mod scenario;
pub mod server_window;
pub mod sut;
