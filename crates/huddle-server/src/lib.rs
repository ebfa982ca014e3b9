//! huddle's server: the runtime shell around [`huddle_core`].
//!
//! - [`http`]: axum routes for WHIP (RFC 9725) and WHEP, with bearer auth ([`auth`]) and one
//!   error-to-status mapping ([`error`]).
//! - [`media`]: the task that owns the UDP socket and the [`huddle_core::Sfu`]; HTTP handlers
//!   send it commands and await replies.
//! - [`signaling`]: browser rooms over a WebSocket; [`page`]: the call page, embedded.
//! - [`udp`]: the media socket, read and written in batches.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`Server`]: starts both on the configured addresses, watches the media loop, and stops
//!   them.

pub mod auth;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod media;
pub mod page;
pub mod sessions;
pub mod signaling;
pub mod telemetry;
pub mod udp;

use std::net::SocketAddr;

use huddle_core::{Sfu, SfuConfig, SfuStats};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use config::Config;
use health::{Health, Phase};
use http::AppState;
use media::MediaHandle;
use sessions::Sessions;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind HTTP on {0}: {1}")]
    Http(SocketAddr, std::io::Error),
    #[error("cannot bind UDP on {0}: {1}")]
    Udp(SocketAddr, std::io::Error),
    #[error("UDP bound to {0}: clients cannot send to an unspecified address; pass --public-ip")]
    NoAdvertisedAddress(SocketAddr),
}

/// The media loop ended while the server was meant to be running: every session is dead and
/// the process must be restarted (by its supervisor).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the media loop stopped unexpectedly: {0}")]
pub struct MediaStopped(pub String);

/// A running huddle: HTTP and media, until [`shutdown`](Server::shutdown) or drop.
#[derive(Debug)]
pub struct Server {
    pub http_addr: SocketAddr,
    /// The bound UDP address.
    pub udp_addr: SocketAddr,
    /// The address announced in ICE candidates.
    pub advertised: SocketAddr,
    media: MediaHandle,
    sessions: Sessions,
    health: Health,
    /// Set by the watcher when the media loop ends without being asked to.
    failure: watch::Receiver<Option<MediaStopped>>,
    stop: Option<oneshot::Sender<()>>,
    http_task: JoinHandle<()>,
    media_loop: tokio::task::AbortHandle,
    watcher: JoinHandle<()>,
}

impl Server {
    /// Binds both sockets and starts serving on the current tokio runtime.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let udp = udp::bind(config.udp).map_err(|e| StartError::Udp(config.udp, e))?;
        let udp_addr = udp
            .local_addr()
            .map_err(|e| StartError::Udp(config.udp, e))?;
        let advertised = match config.public_ip {
            Some(ip) => SocketAddr::new(ip, udp_addr.port()),
            None if udp_addr.ip().is_unspecified() => {
                return Err(StartError::NoAdvertisedAddress(udp_addr));
            }
            None => udp_addr,
        };
        let listener = TcpListener::bind(config.http)
            .await
            .map_err(|e| StartError::Http(config.http, e))?;
        let http_addr = listener
            .local_addr()
            .map_err(|e| StartError::Http(config.http, e))?;

        telemetry::install();
        let health = Health::default();
        let sessions = Sessions::default();
        let sfu = Sfu::new(SfuConfig::new(vec![advertised]));
        let registry = signaling::Registry::default();
        let (media, media_loop) =
            media::spawn(udp, advertised, sfu, sessions.clone(), registry.clone());
        let media_abort = media_loop.abort_handle();
        let (watcher, failure) = watch_media(media_loop, health.clone());
        let app = http::router(AppState {
            media: media.clone(),
            sessions: sessions.clone(),
            registry,
            health: health.clone(),
            token: config.token().map(str::to_owned),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let http_task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("http server: {e}");
            }
        });
        health.set(Phase::Ready);
        Ok(Server {
            http_addr,
            udp_addr,
            advertised,
            media,
            sessions,
            health,
            failure,
            stop: Some(stop),
            http_task,
            media_loop: media_abort,
            watcher,
        })
    }

    /// Resolves when the media loop has stopped unexpectedly (never while it runs).
    pub async fn media_stopped(&self) -> MediaStopped {
        let mut failure = self.failure.clone();
        loop {
            if let Some(f) = failure.borrow_and_update().clone() {
                return f;
            }
            if failure.changed().await.is_err() {
                // The watcher is gone without a verdict: the server was shut down.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Serves until `stop` resolves (then shuts down, `Ok`) or the media loop dies (`Err`, for
    /// the process to exit non-zero so that its supervisor restarts it).
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), MediaStopped> {
        let outcome = tokio::select! {
            () = stop => Ok(()),
            failure = self.media_stopped() => Err(failure),
        };
        self.shutdown().await;
        outcome
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn whip_url(&self, room: &str) -> String {
        format!("{}/whip/{room}", self.base_url())
    }

    pub fn whep_url(&self, room: &str) -> String {
        format!("{}/whep/{room}", self.base_url())
    }

    /// The core's counters, or `None` once the media loop stopped.
    pub async fn stats(&self) -> Option<SfuStats> {
        self.media.stats().await.ok()
    }

    /// Open WHIP/WHEP sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Stops HTTP (letting requests in flight finish) and the media loop.
    pub async fn shutdown(mut self) {
        self.health.set(Phase::Draining);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.http_task).await;
        self.media_loop.abort();
        let _ = (&mut self.watcher).await;
    }
}

/// Watches the media loop: if it ends while the server is not draining (a bug, or a panic in
/// huddle's own code, since str0m's are contained per peer), the server is marked failed —
/// `/healthz` answers 503 — and the failure is reported to [`Server::media_stopped`].
fn watch_media(
    media_loop: JoinHandle<()>,
    health: Health,
) -> (JoinHandle<()>, watch::Receiver<Option<MediaStopped>>) {
    let (report, failure) = watch::channel(None);
    let task = tokio::spawn(async move {
        let reason = match media_loop.await {
            Ok(()) => "it returned".to_owned(),
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                format!("panicked: {message}")
            }
            Err(_) => "it was cancelled".to_owned(),
        };
        if health.phase() != Phase::Draining {
            tracing::error!("media loop stopped: {reason}");
            health.set(Phase::Failed);
            let _ = report.send(Some(MediaStopped(reason)));
        }
    });
    (task, failure)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http_task.abort();
        self.media_loop.abort();
        self.watcher.abort();
    }
}
