//! huddle's server: the runtime shell around [`huddle_core`].
//!
//! - [`http`]: axum routes for WHIP (RFC 9725) and WHEP, with bearer auth ([`auth`]) and one
//!   error-to-status mapping ([`error`]).
//! - [`media`]: the task that owns the UDP socket and the [`huddle_core::Sfu`]; HTTP handlers
//!   send it commands and await replies.
//! - [`signaling`]: browser rooms over a WebSocket; [`page`]: the call page, embedded.
//! - [`udp`]: the media socket, read and written in batches.
//! - [`Server`]: starts both on the configured addresses and stops them.

pub mod auth;
pub mod config;
pub mod error;
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
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::Config;
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
    stop: Option<oneshot::Sender<()>>,
    http_task: JoinHandle<()>,
    media_task: JoinHandle<()>,
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

        telemetry::handle();
        let sessions = Sessions::default();
        let sfu = Sfu::new(SfuConfig::new(vec![advertised]));
        let registry = signaling::Registry::default();
        let (media, media_task) =
            media::spawn(udp, advertised, sfu, sessions.clone(), registry.clone());
        let app = http::router(AppState {
            media: media.clone(),
            sessions: sessions.clone(),
            registry,
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
        Ok(Server {
            http_addr,
            udp_addr,
            advertised,
            media,
            sessions,
            stop: Some(stop),
            http_task,
            media_task,
        })
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.http_task).await;
        self.media_task.abort();
        let _ = (&mut self.media_task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.http_task.abort();
        self.media_task.abort();
    }
}
