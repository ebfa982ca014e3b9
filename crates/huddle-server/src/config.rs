//! The one configuration model: flags, `HUDDLE_…` environment variables and a TOML file
//! (`--config`), in that order of precedence ([`file`] merges the file in), validated at start
//! ([`Config::validate`]).

pub mod file;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// How the server runs (also as `HUDDLE_…` environment variables).
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// A TOML file with any of these options (keys are the long flag names); flags and
    /// environment variables override it.
    #[arg(long, env = "HUDDLE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address of the HTTP server (WHIP, WHEP, the call page, health).
    #[arg(long, env = "HUDDLE_HTTP", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,

    /// Address of the first media worker's UDP socket (ICE, DTLS, SRTP); worker N listens on
    /// the port N above it (port 0: every worker on an ephemeral port).
    #[arg(long, env = "HUDDLE_UDP", default_value = "127.0.0.1:50000")]
    pub udp: SocketAddr,

    /// ICE over TCP (RFC 6544): each media worker also accepts TCP connections on its UDP
    /// socket's address and port, advertised as a passive TCP candidate below UDP, for
    /// clients whose network blocks UDP. `--ice-tcp false` turns it off.
    #[arg(long, env = "HUDDLE_ICE_TCP", default_value_t = true, action = clap::ArgAction::Set)]
    pub ice_tcp: bool,

    /// Media worker threads, each with its own UDP socket (default: the available cores).
    #[arg(long, env = "HUDDLE_WORKERS")]
    pub workers: Option<usize>,

    /// A room keeps this many participants on its home worker before further viewers spread
    /// over the other workers (the home then relays the room's feed once to each).
    #[arg(long, env = "HUDDLE_SPREAD_AFTER", default_value_t = 50)]
    pub spread_after: usize,

    /// Addresses clients send media to, when they differ from the UDP bind address (behind
    /// 1:1 NAT or in a container: the public IPs), IPv4 and IPv6 (comma separated or
    /// repeated): one host candidate each. Without it a 0.0.0.0/[::] bind advertises every
    /// address of the host's own interfaces (loopback left out).
    #[arg(long, env = "HUDDLE_PUBLIC_IP", value_delimiter = ',')]
    pub public_ip: Vec<IpAddr>,

    /// STUN servers handed to clients (`stun:host:port`; comma separated or repeated).
    #[arg(long, env = "HUDDLE_STUN", value_delimiter = ',')]
    pub stun: Vec<String>,

    /// TURN servers handed to clients with time-limited credentials
    /// (`turn:host:port?transport=udp`, `turns:…`; comma separated or repeated). Needs
    /// --turn-secret.
    #[arg(long, env = "HUDDLE_TURN", value_delimiter = ',')]
    pub turn: Vec<String>,

    /// The TURN server's shared secret (coturn's `static-auth-secret` with
    /// `use-auth-secret`): credentials are made from it per session (TURN REST scheme).
    #[arg(long, env = "HUDDLE_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// How long TURN credentials stay valid (a session using TURN cannot outlive them):
    /// 90s, 30m, 12h, 7d.
    #[arg(long, env = "HUDDLE_TURN_TTL", default_value = "24h", value_parser = parse_duration)]
    pub turn_ttl: Duration,

    /// A peer connection whose ICE and DTLS are not up by then is dropped, and its
    /// diagnosis (`GET /sessions/{id}/diagnosis`) says why: 500ms, 20s, 1m.
    #[arg(long, env = "HUDDLE_CONNECT_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// In a room with more videos than this, the cameras of those not speaking lately are
    /// sent to each viewer at a low layer (at most 320 pixels wide); 0 turns it off.
    #[arg(long, env = "HUDDLE_SPEAKER_FOCUS_AFTER", default_value_t = 6)]
    pub speaker_focus_after: usize,

    /// Bandwidth estimation for viewers that negotiate transport-wide congestion control:
    /// their simulcast layers follow it, and their video pauses when even the lowest layer
    /// cannot be carried. `--bandwidth-estimation false` sends every viewer the layer its tile
    /// warrants, whatever its link (for a LAN, or to measure what the estimation costs).
    #[arg(long, env = "HUDDLE_BANDWIDTH_ESTIMATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub bandwidth_estimation: bool,

    /// Log lines as text for people or JSON for collectors (`RUST_LOG` sets the levels).
    #[arg(long, env = "HUDDLE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

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

    /// Redis (`redis://host:port/db`, `rediss://…`): makes this node a cluster member that
    /// registers itself there, places rooms on the least-loaded node and redirects requests
    /// for rooms hosted elsewhere. Every node of a cluster needs the same --jwt-secret or
    /// --token.
    #[arg(long, env = "HUDDLE_REDIS", hide_env_values = true)]
    pub redis: Option<String>,

    /// This node's name in the cluster (default: random at each start).
    #[arg(long, env = "HUDDLE_NODE_ID")]
    pub node_id: Option<String>,

    /// The base URL other nodes send this node's clients to (`http://10.0.0.5:8080`);
    /// default: the scheme and bound HTTP address (its advertised IP when bound to all).
    #[arg(long, env = "HUDDLE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// In a cluster, a room's node serves this many of the room's participants itself;
    /// further WHEP viewers are served by other nodes, each of which pulls the room from its
    /// node once and fans it out (0: every viewer goes to the room's node).
    #[arg(long, env = "HUDDLE_CASCADE_AFTER", default_value_t = 0)]
    pub cascade_after: usize,

    #[command(flatten)]
    pub limits: Limits,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A duration as `90s`, `30m`, `12h`, `7d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: a number and s, m, h or d"))?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("{s:?}: the unit is ms, s, m, h or d")),
    };
    secs.map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?}: too long"))
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
    #[error("--public-ip {0}: clients cannot send to an unspecified or multicast address")]
    BadPublicIp(IpAddr),
    #[error("--public-ip {0} is given twice")]
    DuplicatePublicIp(IpAddr),
    #[error("--public-ip {0} is IPv6 but the UDP socket is bound to IPv4 {1}: bind [::] for both")]
    PublicIpFamily(IpAddr, SocketAddr),
    #[error("{0}")]
    IceServer(#[from] crate::ice::IceUrlError),
    #[error("--turn needs --turn-secret (HUDDLE_TURN_SECRET): the TURN server's shared secret")]
    TurnWithoutSecret,
    #[error("--turn-ttl must be at least a minute")]
    TurnTtlTooShort,
    #[error("--redis {0:?}: {1}")]
    Redis(String, String),
    #[error("--public-url {0:?}: expected http://host:port or https://host:port, no path")]
    PublicUrl(String),
    #[error("--node-id {0:?}: 1-64 letters, digits, '-', '_' or '.'")]
    NodeId(String),
    #[error("--connect-timeout must be between 100ms and 10m")]
    ConnectTimeout,
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

    /// The TURN shared secret, if one is set (empty means none).
    pub fn turn_secret(&self) -> Option<&str> {
        self.turn_secret.as_deref().filter(|t| !t.is_empty())
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
        validate_public_ips(&self.public_ip, self.udp)?;
        if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&self.connect_timeout)
        {
            return Err(ConfigError::ConnectTimeout);
        }
        crate::ice::IceServers::from_config(self)?;
        crate::cluster::validate(self)?;
        Ok(())
    }

    /// A configuration for tests and embedding: loopback, ephemeral ports, two workers, no
    /// authentication.
    pub fn ephemeral() -> Self {
        Config {
            config: None,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp: SocketAddr::from(([127, 0, 0, 1], 0)),
            ice_tcp: true,
            workers: Some(2),
            spread_after: 50,
            public_ip: Vec::new(),
            stun: Vec::new(),
            turn: Vec::new(),
            turn_secret: None,
            turn_ttl: Duration::from_secs(86_400),
            connect_timeout: Duration::from_secs(20),
            speaker_focus_after: 6,
            bandwidth_estimation: true,
            log_format: LogFormat::Text,
            jwt_secret: None,
            token: None,
            no_auth: true,
            tls_cert: None,
            tls_key: None,
            cors_origins: Vec::new(),
            redis: None,
            node_id: None,
            cascade_after: 0,
            public_url: None,
            limits: Limits::default(),
        }
    }
}

/// Refuses advertised addresses clients cannot send to: unspecified, multicast, the same one
/// twice, IPv6 for a socket that only speaks IPv4.
fn validate_public_ips(ips: &[IpAddr], udp: SocketAddr) -> Result<(), ConfigError> {
    for (i, &ip) in ips.iter().enumerate() {
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(ConfigError::BadPublicIp(ip));
        }
        if ips.iter().take(i).any(|&o| o == ip) {
            return Err(ConfigError::DuplicatePublicIp(ip));
        }
        if ip.is_ipv6() && udp.is_ipv4() {
            return Err(ConfigError::PublicIpFamily(ip, udp));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn public_ips_are_validated() {
        let any6: SocketAddr = "[::]:0".parse().unwrap();
        let any4: SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert!(validate_public_ips(&ips(&["203.0.113.7", "2001:db8::7"]), any6).is_ok());
        assert!(validate_public_ips(&[], any4).is_ok());
        let e = validate_public_ips(&ips(&["203.0.113.7", "0.0.0.0"]), any6).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--public-ip 0.0.0.0: clients cannot send to an unspecified or multicast address"
        );
        let e = validate_public_ips(&ips(&["ff02::1"]), any6).unwrap_err();
        assert!(matches!(e, ConfigError::BadPublicIp(_)), "{e}");
        let e = validate_public_ips(&ips(&["203.0.113.7", "203.0.113.7"]), any6).unwrap_err();
        assert_eq!(e.to_string(), "--public-ip 203.0.113.7 is given twice");
        let e = validate_public_ips(&ips(&["2001:db8::7"]), any4).unwrap_err();
        assert!(e.to_string().contains("bind [::] for both"), "{e}");
    }
}
