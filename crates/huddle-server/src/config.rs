//! Command line and environment configuration.

use std::net::{IpAddr, SocketAddr};

use clap::Parser;

/// huddle: a selective forwarding unit for WebRTC (WHIP publishers, WHEP viewers).
#[derive(Clone, Debug, Parser)]
#[command(name = "huddle", version, about)]
pub struct Config {
    /// Address of the HTTP server (WHIP, WHEP, health).
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

    /// Bearer token every WHIP/WHEP request must carry (`Authorization: Bearer TOKEN`).
    /// Without it the server is open to anyone who can reach it.
    #[arg(long, env = "HUDDLE_TOKEN")]
    pub token: Option<String>,
}

impl Config {
    /// The number of media workers: as asked, else the available cores.
    pub fn worker_count(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, 256)
    }

    /// The bearer token, if one is set (an empty value, as an unset variable in a compose
    /// file gives, means none).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }

    /// A configuration for tests and embedding: loopback, ephemeral ports, no token.
    pub fn ephemeral() -> Self {
        Config {
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            udp: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: Some(2),
            spread_after: 50,
            public_ip: None,
            token: None,
        }
    }
}
