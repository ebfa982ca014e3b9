//! Command line and environment configuration.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

/// How the server runs (also as `HUDDLE_…` environment variables).
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Address of the HTTP server (WHIP, WHEP, the call page, health).
    #[arg(long, env = "HUDDLE_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,

    /// Address of the first media worker's UDP socket (ICE, DTLS, SRTP); worker N listens on
    /// the port N above it (port 0: every worker on an ephemeral port).
    #[arg(long, env = "HUDDLE_UDP", default_value = "127.0.0.1:50000")]
    pub udp: SocketAddr,

    /// Media worker threads, each with its own UDP socket (default: the available cores).
    #[arg(long, env = "HUDDLE_WORKERS")]
    pub workers: Option<usize>,

    /// A room keeps this many participants on its home worker before further viewers spread
    /// over the other workers (the home then relays the room's feed once to each).
    #[arg(long, env = "HUDDLE_SPREAD_AFTER", default_value_t = 50)]
    pub spread_after: usize,

    /// Address clients should send media to, when it differs from the UDP bind address
    /// (behind NAT or in a container: the public IP). Required when binding 0.0.0.0.
    #[arg(long, env = "HUDDLE_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// Secret that signs access tokens (JWT, HS256; make them with `huddle token`). Without
    /// it (and without `--token`) huddle makes one at start and prints tokens for a demo
    /// room — and serves loopback only.
    #[arg(long, env = "HUDDLE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// The simplest set-up: one static bearer token that grants everything, everywhere.
    #[arg(long, env = "HUDDLE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// No authentication at all. Only on a loopback HTTP address (development, tests).
    #[arg(long, env = "HUDDLE_NO_AUTH")]
    pub no_auth: bool,

    /// TLS certificate chain (PEM) for HTTPS/WSS; browsers need a secure context for
    /// cameras anywhere but localhost.
    #[arg(long, env = "HUDDLE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for `--tls-cert`.
    #[arg(long, env = "HUDDLE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Origins allowed to call the API from a browser page elsewhere (comma separated;
    /// default: none but the server's own; WHIP and WHEP allow any origin).
    #[arg(long, env = "HUDDLE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    #[command(flatten)]
    pub limits: Limits,
}

/// Every resource has a limit; each refusal says which.
#[derive(Clone, Copy, Debug, Args)]
pub struct Limits {
    /// Rooms at once.
    #[arg(long, env = "HUDDLE_MAX_ROOMS", default_value_t = 1000)]
    pub max_rooms: usize,
    /// Participants in one room.
    #[arg(long, env = "HUDDLE_MAX_ROOM_PARTICIPANTS", default_value_t = 1000)]
    pub max_room_participants: usize,
    /// Open sessions (WHIP, WHEP, room members) from one IP address.
    #[arg(long, env = "HUDDLE_MAX_SESSIONS_PER_IP", default_value_t = 200)]
    pub max_sessions_per_ip: usize,
    /// Open sessions of one identity (a token's `sub`).
    #[arg(long, env = "HUDDLE_MAX_SESSIONS_PER_IDENTITY", default_value_t = 20)]
    pub max_sessions_per_identity: usize,
    /// Session-creating requests (WHIP/WHEP POST, WebSocket) per second from one IP address.
    #[arg(long, env = "HUDDLE_POSTS_PER_SECOND_PER_IP", default_value_t = 50)]
    pub posts_per_second_per_ip: u32,
    /// Room WebSocket messages per second from one page (a burst of twice that is allowed).
    #[arg(long, env = "HUDDLE_WS_MESSAGES_PER_SECOND", default_value_t = 50)]
    pub ws_messages_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rooms: 1000,
            max_room_participants: 1000,
            max_sessions_per_ip: 200,
            max_sessions_per_identity: 20,
            posts_per_second_per_ip: 50,
            ws_messages_per_second: 50,
        }
    }
}

/// A configuration that cannot run, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "refusing to serve {0} without credentials: anyone who reaches it could publish and watch. \
         Set --jwt-secret (HUDDLE_JWT_SECRET) or --token (HUDDLE_TOKEN), or bind a loopback address"
    )]
    OpenOnNetwork(SocketAddr),
    #[error("--no-auth is for loopback only; {0} is reachable from the network")]
    NoAuthOnNetwork(SocketAddr),
}

impl Config {
    /// The number of media workers: as asked, else the available cores.
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 256)
    }

    /// The static bearer token, if one is set (an empty value, as an unset variable in a
    /// compose file gives, means none).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }

    /// The JWT secret, if one is set (empty means none).
    pub fn jwt_secret(&self) -> Option<&str> {
        self.jwt_secret.as_deref().filter(|t| !t.is_empty())
    }

    /// Refuses what would expose an unauthenticated server to the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let loopback = self.http.ip().is_loopback();
        let credentials = self.token().is_some() || self.jwt_secret().is_some();
        if self.no_auth && !loopback {
            return Err(ConfigError::NoAuthOnNetwork(self.http));
        }
        if !credentials && !loopback {
            return Err(ConfigError::OpenOnNetwork(self.http));
        }
        Ok(())
    }

    /// A configuration for tests and embedding: loopback, ephemeral ports, two workers, no
    /// authentication.
    pub fn ephemeral() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: Some(2),
            spread_after: 50,
            public_ip: None,
            jwt_secret: None,
            token: None,
            no_auth: true,
            tls_cert: None,
            tls_key: None,
            cors_origins: Vec::new(),
            limits: Limits::default(),
        }
    }
}
