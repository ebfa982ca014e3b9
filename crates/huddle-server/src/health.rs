//! Liveness and readiness: `/healthz` says whether the process can still do its job (the media
//! loop runs), `/readyz` whether it takes new sessions now.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::http::AppState;

/// Where the server is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    /// Accepting sessions.
    Ready = 1,
    /// Shutting down: existing sessions end, new ones are refused.
    Draining = 2,
    /// The media loop ended unexpectedly: nothing works, the process should be restarted.
    Failed = 3,
}

/// Shared by the HTTP handlers and the task that watches the media loop.
#[derive(Clone, Debug, Default)]
pub struct Health(Arc<AtomicU8>);

impl Health {
    pub fn phase(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            2 => Phase::Draining,
            _ => Phase::Failed,
        }
    }

    /// Moves to `phase`; a failed server stays failed.
    pub fn set(&self, phase: Phase) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != Phase::Failed as u8).then_some(phase as u8)
            });
    }
}

impl Health {
    /// New sessions are taken now; otherwise the error says why not.
    pub fn accepting(&self) -> Result<(), crate::error::ApiError> {
        match self.phase() {
            Phase::Ready => Ok(()),
            Phase::Failed => Err(crate::error::ApiError::Unavailable),
            Phase::Starting | Phase::Draining => Err(crate::error::ApiError::ShuttingDown),
        }
    }
}

/// `GET /healthz`: 200 while the media loop runs, 503 once it has stopped unexpectedly.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.health.phase() {
        Phase::Failed => (
            StatusCode::SERVICE_UNAVAILABLE,
            "failed: the media loop stopped; restart the process\n",
        )
            .into_response(),
        _ => "ok\n".into_response(),
    }
}

/// `GET /readyz`: 200 while new sessions are accepted, 503 while starting, draining or failed.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let phase = state.health.phase();
    match phase {
        Phase::Ready => "ready\n".into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", format!("{phase:?}").to_lowercase()),
        )
            .into_response(),
    }
}
