//! The ICE servers huddle hands to every client — in the room WebSocket's `welcome` and as
//! WHIP/WHEP `Link: <…>; rel="ice-server"` headers (RFC 9725 §4.6) — with time-limited TURN
//! credentials made per session from a secret shared with the TURN server (the TURN REST
//! scheme of coturn's `use-auth-secret`: username `expiry:identity`, password
//! base64(HMAC-SHA1(secret, username))).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::config::{Config, ConfigError};
use crate::signaling::messages::IceServer;

/// A STUN or TURN URL that cannot work, and why.
#[derive(Debug, thiserror::Error)]
#[error("ICE server {url:?}: {why}")]
pub struct IceUrlError {
    pub url: String,
    pub why: &'static str,
}

/// `stun:`, `stuns:`, `turn:` or `turns:` (RFC 7064, RFC 7065).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Stun,
    Stuns,
    Turn,
    Turns,
}

/// A checked ICE server URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IceUrl {
    pub scheme: Scheme,
    /// As written (what clients get).
    pub url: String,
    pub host: String,
    pub port: Option<u16>,
    /// `?transport=udp|tcp` (TURN only).
    pub transport: Option<String>,
}

impl fmt::Display for IceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl IceUrl {
    pub fn parse(url: &str) -> Result<IceUrl, IceUrlError> {
        let url = url.trim();
        let err = |why| IceUrlError {
            url: url.to_owned(),
            why,
        };
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| err("expected stun:, stuns:, turn: or turns:"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "stun" => Scheme::Stun,
            "stuns" => Scheme::Stuns,
            "turn" => Scheme::Turn,
            "turns" => Scheme::Turns,
            _ => return Err(err("expected stun:, stuns:, turn: or turns:")),
        };
        if rest.starts_with("//") {
            return Err(err(
                "no // after the scheme (turn:host:port, not turn://host)",
            ));
        }
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let transport = match query {
            None => None,
            Some(q) if matches!(scheme, Scheme::Stun | Scheme::Stuns) => {
                let _ = q;
                return Err(err("STUN URLs take no query"));
            }
            Some(q) => match q.strip_prefix("transport=") {
                Some(t @ ("udp" | "tcp")) => Some(t.to_owned()),
                _ => return Err(err("the only query is ?transport=udp or ?transport=tcp")),
            },
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| err("unclosed [ in an IPv6 host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(err("unexpected text after the IPv6 host")),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return Err(err("no valid host"));
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| err("the port is not a number from 1 to 65535"))?,
            ),
            None => None,
        };
        Ok(IceUrl {
            scheme,
            url: url.to_owned(),
            host: host.to_owned(),
            port,
            transport,
        })
    }
}

/// The configured servers and the secret their credentials are made with.
#[derive(Clone, Debug, Default)]
pub struct IceServers {
    stun: Vec<IceUrl>,
    turn: Vec<IceUrl>,
    secret: Option<String>,
    ttl: Duration,
}

/// Identities go into TURN usernames after the expiry and a colon: keep them short and
/// without another colon.
const MAX_IDENTITY: usize = 64;

impl IceServers {
    /// Checks and takes `--stun`, `--turn`, `--turn-secret` and `--turn-ttl`.
    pub fn from_config(config: &Config) -> Result<IceServers, ConfigError> {
        let mut stun = Vec::new();
        let mut turn = Vec::new();
        for url in config.stun.iter().filter(|u| !u.trim().is_empty()) {
            let u = IceUrl::parse(url)?;
            if !matches!(u.scheme, Scheme::Stun | Scheme::Stuns) {
                return Err(IceUrlError {
                    url: url.clone(),
                    why: "a TURN URL belongs in --turn",
                }
                .into());
            }
            stun.push(u);
        }
        for url in config.turn.iter().filter(|u| !u.trim().is_empty()) {
            let u = IceUrl::parse(url)?;
            if !matches!(u.scheme, Scheme::Turn | Scheme::Turns) {
                return Err(IceUrlError {
                    url: url.clone(),
                    why: "a STUN URL belongs in --stun",
                }
                .into());
            }
            turn.push(u);
        }
        if !turn.is_empty() && config.turn_secret().is_none() {
            return Err(ConfigError::TurnWithoutSecret);
        }
        if config.turn_ttl < Duration::from_secs(60) {
            return Err(ConfigError::TurnTtlTooShort);
        }
        Ok(IceServers {
            stun,
            turn,
            secret: config.turn_secret().map(str::to_owned),
            ttl: config.turn_ttl,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.stun.is_empty() && self.turn.is_empty()
    }

    pub fn stun(&self) -> &[IceUrl] {
        &self.stun
    }

    pub fn turn(&self) -> &[IceUrl] {
        &self.turn
    }

    /// Credentials for `identity`, valid from `now` for the configured time.
    fn credential(&self, identity: &str, now: SystemTime) -> Option<(String, String)> {
        let secret = self.secret.as_deref()?;
        let expiry = now
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Some(turn_rest_credential(secret, identity, expiry))
    }

    /// What a client puts in `RTCPeerConnection`'s `iceServers`: STUN servers as they are,
    /// the TURN servers with credentials for `identity`.
    pub fn for_client(&self, identity: &str, now: SystemTime) -> Vec<IceServer> {
        let mut out = Vec::new();
        if !self.stun.is_empty() {
            out.push(IceServer {
                urls: self.stun.iter().map(|u| u.url.clone()).collect(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some((username, credential))) =
            (self.turn.is_empty(), self.credential(identity, now))
        {
            out.push(IceServer {
                urls: self.turn.iter().map(|u| u.url.clone()).collect(),
                username: Some(username),
                credential: Some(credential),
            });
        }
        out
    }

    /// One `Link` header value per STUN server (RFC 9725 §4.6): no credentials.
    pub fn stun_link_headers(&self) -> Vec<HeaderValue> {
        self.stun
            .iter()
            .filter_map(|u| HeaderValue::from_str(&format!("<{}>; rel=\"ice-server\"", u.url)).ok())
            .collect()
    }

    /// One `Link` header value per server (RFC 9725 §4.6), TURN servers with credentials for
    /// `identity`.
    pub fn link_headers(&self, identity: &str, now: SystemTime) -> Vec<HeaderValue> {
        let mut out = self.stun_link_headers();
        if let Some((username, credential)) = self.credential(identity, now) {
            for u in &self.turn {
                let v = format!(
                    "<{}>; rel=\"ice-server\"; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    u.url,
                    quoted(&username),
                    quoted(&credential)
                );
                out.extend(HeaderValue::from_str(&v).ok());
            }
        }
        out
    }
}

/// Escapes a value for a quoted-string (RFC 9110 §5.6.4).
fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The TURN REST credential (coturn `use-auth-secret`): username `expiry:identity` (the
/// identity without colons, at most 64 characters), password base64(HMAC-SHA1(secret,
/// username)).
pub fn turn_rest_credential(secret: &str, identity: &str, expiry_unix: u64) -> (String, String) {
    let identity: String = identity
        .chars()
        .map(|c| {
            if c == ':' || c.is_control() || c == '"' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .take(MAX_IDENTITY)
        .collect();
    let username = format!("{expiry_unix}:{identity}");
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let password = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(username.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_credential_matches_a_known_value() {
        // python3 -c 'import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b"north",
        //   b"1700000000:ada",hashlib.sha1).digest()).decode())'
        let (user, pass) = turn_rest_credential("north", "ada", 1_700_000_000);
        assert_eq!(user, "1700000000:ada");
        assert_eq!(pass, "ndZ88ryT1whVxdkcRLepT9D1MpM=");
        let (user, _) = turn_rest_credential("s", "a:b\"c", 1);
        assert_eq!(user, "1:a_b_c");
    }

    #[test]
    fn urls_are_checked() {
        let u = IceUrl::parse("turn:127.0.0.1:3478?transport=tcp").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.transport.as_deref()),
            (Scheme::Turn, "127.0.0.1", Some(3478), Some("tcp"))
        );
        let u = IceUrl::parse("stun:[::1]:3478").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(3478)));
        assert!(IceUrl::parse("turn:example.org").unwrap().port.is_none());
        for bad in [
            "http://x",
            "turn://x:1",
            "turn:x:0",
            "turn:x:99999",
            "turn:x?transport=sctp",
            "stun:x?transport=udp",
            "turn:",
            "turn:a b",
        ] {
            assert!(IceUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn clients_get_stun_and_turn_with_credentials() {
        let config = Config {
            stun: vec!["stun:127.0.0.1:3478".into()],
            turn: vec![
                "turn:127.0.0.1:3478?transport=udp".into(),
                "turn:127.0.0.1:3478?transport=tcp".into(),
            ],
            turn_secret: Some("north".into()),
            turn_ttl: Duration::from_secs(3600),
            ..Config::ephemeral()
        };
        let servers = IceServers::from_config(&config).unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_699_996_400);
        let list = servers.for_client("ada", now);
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].username.as_deref(), Some("1700000000:ada"));
        assert_eq!(
            list[1].credential.as_deref(),
            Some("ndZ88ryT1whVxdkcRLepT9D1MpM=")
        );
        let links = servers.link_headers("ada", now);
        assert_eq!(links.len(), 3);
        assert_eq!(links[0], "<stun:127.0.0.1:3478>; rel=\"ice-server\"");
        assert_eq!(
            links[2],
            "<turn:127.0.0.1:3478?transport=tcp>; rel=\"ice-server\"; username=\"1700000000:ada\"; \
             credential=\"ndZ88ryT1whVxdkcRLepT9D1MpM=\"; credential-type=\"password\""
        );
        let missing = Config {
            turn_secret: None,
            ..config
        };
        assert!(matches!(
            IceServers::from_config(&missing),
            Err(ConfigError::TurnWithoutSecret)
        ));
    }
}
