//! WHEP viewer: receives media and checks every packet (or, lean, a sample of them).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::ClientError;
use crate::http::delete_session;
use crate::offer::{Negotiated, answer_offer, negotiate, negotiate_with};
use crate::options::ClientOptions;
use crate::peer::{PeerHandle, Role, ViewState, ViewerShared, lock};
use crate::stats::ViewerStats;

/// A WHEP viewer: one WebRTC peer receiving and verifying media.
#[derive(Debug)]
pub struct Viewer {
    opts: ClientOptions,
    /// WHEP session URL and ETag; `None` when another signalling set the peer up.
    session: Option<(String, Option<String>)>,
    signaled_at: Instant,
    shared: Arc<Mutex<ViewerShared>>,
    peer: PeerHandle,
}

impl Viewer {
    /// POSTs an offer (recvonly audio if `opts.audio`, recvonly video with VP8, VP9, H264
    /// and AV1 if `opts.video` is set) to `whep_url`, applies the answer and starts the peer.
    pub async fn connect(whep_url: &str, opts: ClientOptions) -> Result<Viewer, ClientError> {
        let n = negotiate(whep_url, &opts, false).await?;
        Self::start(n, opts)
    }

    /// For signalling other than a plain WHEP POST (e.g. through a relay that rewrites the
    /// answer): `exchange` gets the offer SDP and returns the answer SDP.
    pub async fn connect_with<F, Fut>(
        opts: ClientOptions,
        exchange: F,
    ) -> Result<Viewer, ClientError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<String, ClientError>>,
    {
        let n = negotiate_with(&opts, false, exchange).await?;
        Self::start(n, opts)
    }

    /// For signalling where the server makes the offer (e.g. Janus): accepts `offer`, hands
    /// the answer SDP to `deliver` and starts the peer once `deliver` succeeds.
    pub async fn answer<F, Fut>(
        offer: &str,
        opts: ClientOptions,
        deliver: F,
    ) -> Result<Viewer, ClientError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<(), ClientError>>,
    {
        let n = answer_offer(&opts, offer, deliver).await?;
        Self::start(n, opts)
    }

    fn start(n: Negotiated, opts: ClientOptions) -> Result<Viewer, ClientError> {
        let shared = Arc::new(Mutex::new(ViewerShared::default()));
        let state = ViewState::new(&opts, shared.clone());
        let peer = PeerHandle::spawn_with_tcp(n.rtc, n.socket, n.tcp, Role::View(state))?;
        Ok(Viewer {
            session: n.session.map(|s| (s.session_url, s.etag)),
            signaled_at: n.signaled_at,
            opts,
            shared,
            peer,
        })
    }

    /// Absolute WHEP session URL (`None` without WHEP).
    pub fn session_url(&self) -> Option<&str> {
        self.session.as_ref().map(|(url, _)| url.as_str())
    }

    /// The `ETag` the server sent, if any.
    pub fn etag(&self) -> Option<&str> {
        self.session.as_ref().and_then(|(_, etag)| etag.as_deref())
    }

    /// When signalling completed: the WHEP answer arrived, or the answer was delivered.
    pub fn signaled_at(&self) -> Instant {
        self.signaled_at
    }

    /// A snapshot of what has been received so far.
    pub fn stats(&self) -> ViewerStats {
        lock(&self.shared).snapshot()
    }

    /// Waits until ICE and DTLS are up.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), ClientError> {
        self.peer.wait_connected(timeout).await
    }

    /// Closes the peer and DELETEs the WHEP session; returns the HTTP status (200 without
    /// WHEP, where ending the session is up to whoever signalled it).
    pub async fn close(mut self) -> Result<u16, ClientError> {
        self.peer.shutdown().await;
        match &self.session {
            Some((url, _)) => {
                delete_session(url, self.opts.token.as_deref(), self.opts.http_timeout).await
            }
            None => Ok(200),
        }
    }
}
