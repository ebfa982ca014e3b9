//! Admission: how fast one address may create sessions, and how many sessions an address or
//! an identity may hold. (Rooms and room sizes are the media placement's to count.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::error::ApiError;

/// Addresses idle this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    buckets: HashMap<IpAddr, Bucket>,
    by_ip: HashMap<IpAddr, usize>,
    by_identity: HashMap<String, usize>,
}

/// Shared by every handler that creates a session.
#[derive(Clone, Debug)]
pub struct Admission {
    limits: Limits,
    inner: Arc<Mutex<Inner>>,
}

/// A session counted against its address and identity; uncounted when dropped.
#[derive(Debug)]
pub struct Ticket {
    admission: Admission,
    ip: IpAddr,
    identity: Option<String>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut inner = self.admission.lock();
        if let Some(n) = inner.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.by_ip.remove(&self.ip);
            }
        }
        if let Some(id) = &self.identity
            && let Some(n) = inner.by_identity.get_mut(id)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.by_identity.remove(id);
            }
        }
    }
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            inner: Arc::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Counters only: a panic elsewhere cannot leave them half-updated.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A session-creating request from `ip` by `identity`: within the rate and the session
    /// limits, or 429 with the reason.
    pub fn admit(
        &self,
        ip: IpAddr,
        identity: Option<&str>,
        now: Instant,
    ) -> Result<Ticket, ApiError> {
        let rate = f64::from(self.limits.posts_per_second_per_ip.max(1));
        let mut inner = self.lock();
        inner
            .buckets
            .retain(|_, b| now.saturating_duration_since(b.at) < FORGET_AFTER);
        let bucket = inner.buckets.entry(ip).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        bucket.tokens = (bucket.tokens
            + now.saturating_duration_since(bucket.at).as_secs_f64() * rate)
            .min(rate);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(ApiError::TooMany(format!(
                "more than {} new sessions per second from {ip}",
                self.limits.posts_per_second_per_ip
            )));
        }
        bucket.tokens -= 1.0;
        if inner.by_ip.get(&ip).copied().unwrap_or(0) >= self.limits.max_sessions_per_ip {
            return Err(ApiError::TooMany(format!(
                "{ip} holds {} sessions already",
                self.limits.max_sessions_per_ip
            )));
        }
        if let Some(id) = identity
            && inner.by_identity.get(id).copied().unwrap_or(0)
                >= self.limits.max_sessions_per_identity
        {
            return Err(ApiError::TooMany(format!(
                "{id:?} holds {} sessions already",
                self.limits.max_sessions_per_identity
            )));
        }
        *inner.by_ip.entry(ip).or_default() += 1;
        if let Some(id) = identity {
            *inner.by_identity.entry(id.to_owned()).or_default() += 1;
        }
        drop(inner);
        Ok(Ticket {
            admission: self.clone(),
            ip,
            identity: identity.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_session_counts_are_limited_and_released() {
        let admission = Admission::new(Limits {
            posts_per_second_per_ip: 2,
            max_sessions_per_ip: 3,
            max_sessions_per_identity: 1,
            ..Limits::default()
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        let a = admission.admit(ip, None, t0).unwrap();
        let _b = admission.admit(ip, None, t0).unwrap();
        assert!(admission.admit(ip, None, t0).is_err(), "rate");
        let later = t0 + Duration::from_secs(1);
        let _c = admission.admit(ip, None, later).unwrap();
        assert!(
            admission
                .admit(ip, None, later + Duration::from_secs(2))
                .is_err(),
            "three sessions held"
        );
        drop(a);
        let ada = admission
            .admit(ip, Some("ada"), later + Duration::from_secs(3))
            .unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(
            admission.admit(other, Some("ada"), later).is_err(),
            "identity"
        );
        drop(ada);
        assert!(admission.admit(other, Some("ada"), later).is_ok());
    }
}
