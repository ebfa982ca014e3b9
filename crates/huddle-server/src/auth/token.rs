//! Access tokens: JWTs (HS256) whose claims say who the bearer is, which room it may enter
//! and what it may do there.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Grant {
    /// Send media: WHIP, or a room member's own tracks.
    Publish,
    /// Receive media: WHEP, or a room member's view of the others.
    Subscribe,
    /// Operate the server: `/debug/*`, `/metrics`, rooms' explained decisions.
    Admin,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Grant::Publish => "publish",
            Grant::Subscribe => "subscribe",
            Grant::Admin => "admin",
        })
    }
}

/// A token's claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the bearer is: the name others see.
    pub sub: String,
    /// The room it may enter, or `*` for any.
    pub room: String,
    pub grants: Vec<Grant>,
    /// Expiry, seconds since the Unix epoch (required).
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl Claims {
    /// Claims for `identity` in `room`, valid from now for `ttl`.
    pub fn new(identity: &str, room: &str, grants: Vec<Grant>, ttl: Duration) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Claims {
            sub: identity.to_owned(),
            room: room.to_owned(),
            grants,
            exp: now + ttl.as_secs(),
            nbf: None,
        }
    }
}

/// Why a token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token is malformed: {0}")]
    Malformed(String),
}

/// Signs and verifies tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(HS256)")
    }
}

impl Signer {
    pub fn new(secret: &str) -> Self {
        Signer {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Malformed(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                other => TokenError::Malformed(format!("{other:?}")),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_their_faults_are_named() {
        let signer = Signer::new("secret");
        let claims = Claims::new("ada", "demo", vec![Grant::Publish], Duration::from_secs(60));
        let token = signer.issue(&claims).unwrap();
        assert_eq!(signer.verify(&token), Ok(claims.clone()));
        assert_eq!(
            Signer::new("other").verify(&token),
            Err(TokenError::BadSignature)
        );
        let expired = Claims {
            exp: claims.exp - 3600,
            ..claims.clone()
        };
        assert_eq!(
            signer.verify(&signer.issue(&expired).unwrap()),
            Err(TokenError::Expired)
        );
        let later = Claims {
            nbf: Some(claims.exp),
            ..claims.clone()
        };
        assert_eq!(
            signer.verify(&signer.issue(&later).unwrap()),
            Err(TokenError::NotYetValid)
        );
        assert!(matches!(
            signer.verify("not.a.jwt"),
            Err(TokenError::Malformed(_))
        ));
    }
}
