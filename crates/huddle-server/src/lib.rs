//! huddle's server: the runtime shell around [`huddle_core`].
//!
//! - [`http`]: axum routes for WHIP (RFC 9725) and WHEP, with bearer auth ([`auth`]) and one
//!   error-to-status mapping ([`error`]).
//! - [`media`]: the task that owns the UDP socket and the [`huddle_core::Sfu`]; HTTP handlers
//!   send it commands and await replies.
//! - [`signaling`]: browser rooms over a WebSocket; [`page`]: the call page, embedded.
//! - [`udp`]: the media socket, read and written in batches.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`ice`]: the STUN/TURN servers handed to clients, with time-limited TURN credentials.
//! - [`config`]: flags, environment and the TOML file, validated at start.
//! - [`cluster`]: several nodes through Redis (`--redis`): node registry, room placement,
//!   routing of requests to a room's node.
//! - [`Server`]: starts both on the configured addresses, watches the media loop, and stops
//!   them.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod auth;
pub mod cluster;
pub mod config;
pub mod diagnosis;
pub mod error;
pub mod health;
pub mod http;
pub mod ice;
pub mod limits;
pub mod media;
pub mod page;
pub mod selfcheck;
mod serve;
pub mod sessions;
pub mod signaling;
pub mod tcp;
pub mod telemetry;
pub mod udp;

use std::net::SocketAddr;

use huddle_core::SfuStats;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use auth::{Access, Claims, Grant};
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
    #[error("cannot listen on TCP {0} for ICE over TCP (--ice-tcp false turns it off): {1}")]
    Tcp(SocketAddr, std::io::Error),
    #[error(transparent)]
    NoAdvertisedAddress(#[from] selfcheck::NoAddress),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("TLS certificate or key: {0}")]
    Tls(String),
    #[error("--redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Tries at binding an ephemeral UDP port whose number is also free on TCP.
const EPHEMERAL_TRIES: usize = 16;

/// Binds a media worker's UDP socket at `addr` and, with ICE over TCP, its TCP listener on
/// the same address and port number. On an ephemeral port (0) the kernel's UDP pick may be
/// taken on TCP: another port is tried then.
fn bind_media(
    addr: SocketAddr,
    ice_tcp: bool,
) -> Result<(std::net::UdpSocket, Option<std::net::TcpListener>), StartError> {
    let mut last = None;
    for _ in 0..EPHEMERAL_TRIES {
        let socket = udp::bind(addr).map_err(|e| StartError::Udp(addr, e))?;
        if !ice_tcp {
            return Ok((socket, None));
        }
        let bound = socket.local_addr().map_err(|e| StartError::Udp(addr, e))?;
        match tcp::bind(bound) {
            Ok(listener) => return Ok((socket, Some(listener))),
            Err(e) if addr.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                last = Some((bound, e));
            }
            Err(e) => return Err(StartError::Tcp(bound, e)),
        }
    }
    let (bound, e) = last.unwrap_or((addr, std::io::ErrorKind::AddrInUse.into()));
    Err(StartError::Tcp(bound, e))
}

/// How long each step of a graceful shutdown may take.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// A random secret for signing tokens.
fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    hex::encode(bytes)
}

/// The media loop ended while the server was meant to be running: every session is dead and
/// the process must be restarted (by its supervisor).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the media loop stopped unexpectedly: {0}")]
pub struct MediaStopped(pub String);

/// A running huddle: HTTP and media, until [`shutdown`](Server::shutdown) or drop.
#[derive(Debug)]
pub struct Server {
    /// HTTPS (and WSS).
    pub secure: bool,
    access: Access,
    /// The JWT secret was made at start (no credentials configured).
    dev_secret: bool,
    pub http_addr: SocketAddr,
    /// The first media worker's bound UDP address.
    pub udp_addr: SocketAddr,
    /// Every media worker's bound UDP address.
    pub udp_addrs: Vec<SocketAddr>,
    /// The first address announced in the first worker's ICE candidates.
    pub advertised: SocketAddr,
    /// Every address announced in the first worker's ICE candidates (one host candidate each).
    pub candidates: Vec<SocketAddr>,
    /// The start-up self-check: each candidate advertised, then warnings.
    pub self_check: Vec<String>,
    media: MediaHandle,
    sessions: Sessions,
    registry: signaling::Registry,
    health: Health,
    cluster: cluster::Cluster,
    /// The cluster heartbeat, when this node is a cluster member.
    cluster_task: Option<JoinHandle<()>>,
    /// Set by the watcher when a media worker ends without being asked to.
    failure: watch::Receiver<Option<MediaStopped>>,
    stop: Option<oneshot::Sender<()>>,
    http_task: JoinHandle<()>,
    watcher: JoinHandle<()>,
    /// [`shutdown`](Server::shutdown) ran: nothing is left to stop on drop.
    stopped: bool,
}

impl Server {
    /// Binds every socket and starts serving on the current tokio runtime (HTTP) and on one
    /// thread per media worker.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        config.validate()?;
        let interfaces = if config.udp.ip().is_unspecified() && config.public_ip.is_empty() {
            selfcheck::interfaces()
        } else {
            Vec::new()
        };
        let candidate = selfcheck::choose(config.udp.ip(), &config.public_ip, &interfaces)?;
        let mut sockets = Vec::new();
        for i in 0..config.worker_count() {
            let mut addr = config.udp;
            if addr.port() != 0 {
                let port = u16::try_from(usize::from(addr.port()) + i)
                    .map_err(|_| StartError::Udp(addr, std::io::ErrorKind::InvalidInput.into()))?;
                addr.set_port(port);
            }
            let (socket, listener) = bind_media(addr, config.ice_tcp)?;
            let bound = socket.local_addr().map_err(|e| StartError::Udp(addr, e))?;
            let advertised = candidate.on_port(bound.port());
            sockets.push((socket, listener, bound, advertised));
        }
        let udp_addrs: Vec<SocketAddr> = sockets.iter().map(|s| s.2).collect();
        let (Some(&udp_addr), Some(advertised)) = (
            udp_addrs.first(),
            sockets.first().and_then(|s| s.3.first().copied()),
        ) else {
            return Err(StartError::Udp(
                config.udp,
                std::io::ErrorKind::InvalidInput.into(),
            ));
        };
        let candidates = sockets.first().map(|s| s.3.clone()).unwrap_or_default();
        let self_check = selfcheck::report(&udp_addrs, &candidate, config.ice_tcp);
        for w in &candidate.warnings {
            tracing::warn!("self-check: {w}");
        }
        let listener = TcpListener::bind(config.http)
            .await
            .map_err(|e| StartError::Http(config.http, e))?;
        let http_addr = listener
            .local_addr()
            .map_err(|e| StartError::Http(config.http, e))?;

        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(|e| StartError::Tls(e.to_string()))?,
            ),
            _ => None,
        };
        // No credentials configured: a secret made now, and demo tokens printed (loopback
        // only, as `validate` made sure).
        let dev_secret =
            (config.jwt_secret().is_none() && config.token().is_none() && !config.no_auth)
                .then(random_secret);
        let access = Access::new(
            config.jwt_secret().or(dev_secret.as_deref()),
            config.token(),
            config.no_auth,
        );

        telemetry::install();
        let health = Health::default();
        let sessions = Sessions::default();
        let registry = signaling::Registry::default();
        let sockets_advertised: Vec<SocketAddr> = sockets
            .iter()
            .filter_map(|s| s.3.first().copied())
            .collect();
        let media_config = media::MediaConfig {
            sockets: sockets
                .into_iter()
                .map(|(s, l, _, a)| media::Sockets {
                    udp: s,
                    tcp: l,
                    advertised: a,
                })
                .collect(),
            ice_tcp: config.ice_tcp,
            spread_after: config.spread_after,
            max_rooms: config.limits.max_rooms,
            max_room_participants: config.limits.max_room_participants,
            connect_timeout: config.connect_timeout,
            speaker_focus_after: config.speaker_focus_after,
            bandwidth_estimation: config.bandwidth_estimation,
        };
        let (media, exits) = media::spawn(media_config, sessions.clone(), registry.clone())
            .map_err(|e| StartError::Udp(udp_addr, e))?;
        let (watcher, failure) = watch_media(exits, health.clone());
        let secure = tls.is_some();
        let public_url = public_url(&config, secure, http_addr, advertised);
        let (cluster, cluster_task) = match cluster::redis_url(&config) {
            None => (cluster::Cluster::local(), None),
            Some(redis) => {
                let membership = cluster::Membership {
                    redis: redis.to_owned(),
                    node_id: config
                        .node_id
                        .clone()
                        .unwrap_or_else(cluster::random_node_id),
                    public_url: public_url.clone(),
                    media: sockets_advertised.clone(),
                    cascade_after: config.cascade_after,
                };
                let (c, task) = cluster::Cluster::join(membership, media.clone())?;
                (c, Some(task))
            }
        };
        let app = http::router(
            AppState {
                media: media.clone(),
                sessions: sessions.clone(),
                registry: registry.clone(),
                health: health.clone(),
                access: access.clone(),
                admission: limits::Admission::new(config.limits),
                ice: std::sync::Arc::new(ice::IceServers::from_config(&config)?),
                cluster: cluster.clone(),
            },
            &config.cors_origins,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let http_task = serve::spawn(listener, app, tls, stopped)
            .map_err(|e| StartError::Http(http_addr, e))?;
        health.set(Phase::Ready);
        Ok(Server {
            secure,
            access,
            dev_secret: dev_secret.is_some(),
            http_addr,
            udp_addr,
            udp_addrs,
            advertised,
            candidates,
            self_check,
            media,
            sessions,
            registry,
            health,
            cluster,
            cluster_task,
            failure,
            stop: Some(stop),
            http_task,
            watcher,
            stopped: false,
        })
    }

    /// Resolves when a media worker has stopped unexpectedly (never while they run).
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

    /// Serves until `stop` resolves (then shuts down, `Ok`) or a media worker dies (`Err`,
    /// for the process to exit non-zero so that its supervisor restarts it).
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), MediaStopped> {
        let outcome = tokio::select! {
            () = stop => Ok(()),
            failure = self.media_stopped() => Err(failure),
        };
        self.shutdown().await;
        outcome
    }

    /// This node's id in its cluster (`None` without `--redis`).
    pub fn node_id(&self) -> Option<&str> {
        self.cluster.node_id()
    }

    pub fn base_url(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr)
    }

    /// A token for `identity` in `room` with `grants`, valid for `ttl` (`None`: the server
    /// signs no tokens, it has a static token or none).
    pub fn issue_token(
        &self,
        identity: &str,
        room: &str,
        grants: Vec<Grant>,
        ttl: std::time::Duration,
    ) -> Option<String> {
        self.access.issue(&Claims::new(identity, room, grants, ttl))
    }

    /// No credentials were configured: the server made its own secret.
    pub fn has_dev_secret(&self) -> bool {
        self.dev_secret
    }

    pub fn whip_url(&self, room: &str) -> String {
        format!("{}/whip/{room}", self.base_url())
    }

    pub fn whep_url(&self, room: &str) -> String {
        format!("{}/whep/{room}", self.base_url())
    }

    /// The core's counters (all workers), or `None` once the media workers stopped.
    pub async fn stats(&self) -> Option<SfuStats> {
        self.media.stats().await.ok()
    }

    /// Forwarded packets per media worker (from their latest reports, ≤ 1 s old).
    pub fn forwarded_per_worker(&self) -> Vec<u64> {
        self.media.forwarded_per_worker()
    }

    /// Relay links between media workers.
    pub fn relay_links(&self) -> usize {
        self.media.relay_links()
    }

    /// Open WHIP/WHEP sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Shuts down gracefully, within [`DRAIN`]: `/readyz` turns 503 and new sessions are
    /// refused, members are told (`bye`), every peer gets a DTLS close, then HTTP (letting
    /// requests in flight finish) and the media workers stop.
    pub async fn shutdown(mut self) {
        self.health.set(Phase::Draining);
        if let Some(task) = self.cluster_task.take() {
            task.abort();
        }
        self.cluster.leave().await;
        self.registry
            .broadcast_all(signaling::messages::ServerMessage::Bye {
                reason: "the server is shutting down".into(),
            });
        if tokio::time::timeout(DRAIN, self.media.drain())
            .await
            .is_err()
        {
            tracing::warn!("media workers did not drain within {DRAIN:?}");
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(DRAIN, &mut self.http_task).await;
        self.media.stop();
        let _ = tokio::time::timeout(DRAIN, &mut self.watcher).await;
        self.stopped = true;
    }
}

/// The URL other nodes send this node's clients to: `--public-url`, else the scheme and the
/// bound HTTP address (its port with the advertised media IP when bound to all addresses).
fn public_url(config: &Config, secure: bool, http: SocketAddr, advertised: SocketAddr) -> String {
    if let Some(url) = config.public_url.as_deref().filter(|u| !u.is_empty()) {
        return url.trim_end_matches('/').to_owned();
    }
    let scheme = if secure { "https" } else { "http" };
    let ip = if http.ip().is_unspecified() {
        advertised.ip()
    } else {
        http.ip()
    };
    format!("{scheme}://{}", SocketAddr::new(ip, http.port()))
}

/// Watches the media workers: one that ends while the server is not draining (a bug, or a
/// panic in huddle's own code, since str0m's are contained per peer) marks the server failed
/// — `/healthz` answers 503 — and the failure is reported to [`Server::media_stopped`].
/// Ends when every worker has ended.
fn watch_media(
    mut exits: tokio::sync::mpsc::UnboundedReceiver<media::WorkerExit>,
    health: Health,
) -> (JoinHandle<()>, watch::Receiver<Option<MediaStopped>>) {
    let (report, failure) = watch::channel(None);
    let task = tokio::spawn(async move {
        while let Some(exit) = exits.recv().await {
            if health.phase() != Phase::Draining {
                let reason = format!("worker {} {}", exit.worker, exit.reason);
                tracing::error!("media worker stopped: {reason}");
                health.set(Phase::Failed);
                let _ = report.send(Some(MediaStopped(reason)));
            }
        }
    });
    (task, failure)
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            // Dropped without `shutdown`: the workers end on purpose, not in failure.
            self.health.set(Phase::Draining);
            if let Some(task) = self.cluster_task.take() {
                task.abort();
            }
            self.http_task.abort();
            self.media.stop();
            self.watcher.abort();
        }
    }
}
