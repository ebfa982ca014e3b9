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

    /// Address of the one UDP socket that carries all media (ICE, DTLS, SRTP).
    #[arg(long, env = "HUDDLE_UDP", default_value = "127.0.0.1:50000")]
    pub udp: SocketAddr,

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
            public_ip: None,
            token: None,
        }
    }
}
