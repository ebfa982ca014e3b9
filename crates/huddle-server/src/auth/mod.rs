//! Who may do what: the one place that decides whether a request may proceed.
//!
//! Credentials are `Authorization: Bearer …` (or `?token=` on the room WebSocket, where a
//! browser cannot set headers): a JWT signed with the server's secret ([`token`]), or the
//! static `--token`, which grants everything. A missing, malformed, badly signed or expired
//! credential is 401; a valid one that does not grant the room or the action is 403; the body
//! says which. Without any credential configured the server runs open only when told to
//! (`--no-auth`, loopback binds only).

pub mod token;

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

pub use token::{Claims, Grant, Signer, TokenError};

use crate::error::ApiError;

/// How requests are authorized.
#[derive(Clone, Debug)]
pub struct Access {
    signer: Option<Signer>,
    static_token: Option<String>,
    open: bool,
}

/// Who a request comes from, as its credential says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`: the name others see (`None`: static token or open server).
    pub name: Option<String>,
    grants: Vec<Grant>,
    /// `None`: any room.
    room: Option<String>,
    /// A digest of the credential, to recognise it on the session it created.
    pub credential: Option<String>,
}

impl Identity {
    pub fn may(&self, grant: Grant) -> bool {
        self.grants.contains(&grant)
    }

    fn everything(credential: Option<String>) -> Self {
        Identity {
            name: None,
            grants: vec![Grant::Publish, Grant::Subscribe, Grant::Admin],
            room: None,
            credential,
        }
    }
}

impl Access {
    /// `secret` signs JWTs; `static_token` grants everything; `open` lets every request in
    /// when neither is set.
    pub fn new(secret: Option<&str>, static_token: Option<&str>, open: bool) -> Self {
        Access {
            signer: secret.map(Signer::new),
            static_token: static_token.map(str::to_owned),
            open: open && secret.is_none() && static_token.is_none(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Signs a token (for the `token` command and the dev credentials printed at start).
    pub fn issue(&self, claims: &Claims) -> Option<String> {
        self.signer.as_ref()?.issue(claims).ok()
    }

    /// The credential a node presents to another to pull `room` (a cluster shares its
    /// secret or static token): a day-long viewer token for the room, or the static token.
    pub fn node_credential(&self, node: &str, room: &str) -> Option<String> {
        match &self.signer {
            Some(signer) => {
                let claims = Claims::new(
                    &format!("node:{node}"),
                    room,
                    vec![Grant::Subscribe],
                    std::time::Duration::from_secs(24 * 3600),
                );
                signer.issue(&claims).ok()
            }
            None => self.static_token.clone(),
        }
    }

    /// Who `presented` is, or why it is refused (401).
    pub fn identify(&self, presented: Option<&str>) -> Result<Identity, ApiError> {
        if self.open {
            return Ok(Identity::everything(None));
        }
        let Some(token) = presented else {
            return Err(ApiError::Unauthorized);
        };
        let credential = Some(digest(token));
        if let Some(expected) = &self.static_token
            && constant_time_eq(token.as_bytes(), expected.as_bytes())
        {
            return Ok(Identity::everything(credential));
        }
        let Some(signer) = &self.signer else {
            return Err(ApiError::InvalidToken("not the server's token".into()));
        };
        let claims = signer
            .verify(token)
            .map_err(|e| ApiError::InvalidToken(e.to_string()))?;
        Ok(Identity {
            room: (claims.room != "*").then_some(claims.room),
            name: Some(claims.sub).filter(|s| !s.is_empty()),
            grants: claims.grants,
            credential,
        })
    }

    /// Who `presented` is, if it may do `grant` in `room` (`None`: a server-wide action);
    /// 401 or 403 with the reason otherwise.
    pub fn check(
        &self,
        presented: Option<&str>,
        room: Option<&str>,
        grant: Grant,
    ) -> Result<Identity, ApiError> {
        let identity = self.identify(presented)?;
        if let (Some(allowed), Some(room)) = (&identity.room, room)
            && allowed != room
        {
            return Err(ApiError::Forbidden(format!(
                "the token is for room {allowed:?}, not {room:?}"
            )));
        }
        if identity.room.is_some() && room.is_none() && grant == Grant::Admin {
            return Err(ApiError::Forbidden(
                "server-wide actions need a token for every room (room \"*\")".into(),
            ));
        }
        if !identity.may(grant) {
            return Err(ApiError::Forbidden(format!(
                "the token does not grant {grant}"
            )));
        }
        Ok(identity)
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
}

/// A digest of a credential: sessions remember which one created them, not the token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn grants_and_rooms_are_enforced_with_the_right_status() {
        let access = Access::new(Some("s3cret"), Some("static"), false);
        let token = |room: &str, grants| {
            access
                .issue(&Claims::new("ada", room, grants, Duration::from_secs(60)))
                .unwrap()
        };
        let publisher = token("demo", vec![Grant::Publish]);
        let id = access
            .check(Some(&publisher), Some("demo"), Grant::Publish)
            .unwrap();
        assert_eq!(id.name.as_deref(), Some("ada"));
        let status = |r: Result<Identity, ApiError>| r.map_err(|e| e.status().as_u16());
        assert_eq!(
            status(access.check(Some(&publisher), Some("other"), Grant::Publish)),
            Err(403)
        );
        assert_eq!(
            status(access.check(Some(&publisher), Some("demo"), Grant::Subscribe)),
            Err(403)
        );
        assert_eq!(
            status(access.check(None, Some("demo"), Grant::Publish)),
            Err(401)
        );
        assert_eq!(
            status(access.check(Some("junk"), Some("demo"), Grant::Publish)),
            Err(401)
        );
        assert!(access.check(Some("static"), None, Grant::Admin).is_ok());
        let admin_of_demo = token("demo", vec![Grant::Admin]);
        assert_eq!(
            status(access.check(Some(&admin_of_demo), None, Grant::Admin)),
            Err(403)
        );
        assert!(
            access
                .check(Some(&token("*", vec![Grant::Admin])), None, Grant::Admin)
                .is_ok()
        );
        assert!(
            Access::new(None, None, true)
                .check(None, Some("x"), Grant::Admin)
                .is_ok()
        );
    }
}
