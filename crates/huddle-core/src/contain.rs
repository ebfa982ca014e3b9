//! Containment: str0m promises not to panic on what peers send, but a panic in one peer's
//! `Rtc` must never take the server down. Every str0m call fed by client data (offers,
//! answers, candidates, datagrams, timers) runs through [`contained`], which turns a panic into
//! an error for that one peer. An `Rtc` has no threads or locks, so a peer whose call
//! panicked is simply dropped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tracing::warn;

use crate::CoreError;

/// Runs `f`, a str0m call on client data; a panic becomes [`CoreError::PeerFailed`].
pub(crate) fn contained<T>(what: &'static str, f: impl FnOnce() -> T) -> Result<T, CoreError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        warn!("str0m panicked in {what}; the peer is dropped");
        CoreError::PeerFailed(what)
    })
}
