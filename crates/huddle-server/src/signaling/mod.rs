//! Browser rooms: the WebSocket signaling protocol ([`messages`]), who is where
//! ([`registry`]), and the per-socket task ([`ws`]).

pub mod messages;
pub mod registry;
pub mod ws;

pub use registry::Registry;
