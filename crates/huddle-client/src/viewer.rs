//! WHEP viewer: receives media and checks every packet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::ClientError;
use crate::http::delete_session;
use crate::offer::negotiate;
use crate::options::ClientOptions;
use crate::peer::{PeerHandle, Role, ViewState, ViewerShared, lock};
use crate::stats::ViewerStats;

/// A WHEP viewer: one WebRTC peer receiving and verifying media.
#[derive(Debug)]
pub struct Viewer {
    opts: ClientOptions,
    session_url: String,
    etag: Option<String>,
    shared: Arc<Mutex<ViewerShared>>,
    peer: PeerHandle,
}

impl Viewer {
    /// POSTs an offer (recvonly audio if `opts.audio`, recvonly video with VP8, VP9, H264
    /// and AV1 if `opts.video` is set) to `whep_url`, applies the answer and starts the peer.
    pub async fn connect(whep_url: &str, opts: ClientOptions) -> Result<Viewer, ClientError> {
        let n = negotiate(whep_url, &opts, false).await?;
        let shared = Arc::new(Mutex::new(ViewerShared::default()));
        let state = ViewState::new(&opts, shared.clone());
        let peer = PeerHandle::spawn(n.rtc, n.socket, Role::View(state))?;
        Ok(Viewer {
            session_url: n.session.session_url,
            etag: n.session.etag,
            opts,
            shared,
            peer,
        })
    }

    /// Absolute session URL.
    pub fn session_url(&self) -> &str {
        &self.session_url
    }

    /// The `ETag` the server sent, if any.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// A snapshot of what has been received so far.
    pub fn stats(&self) -> ViewerStats {
        lock(&self.shared).snapshot()
    }

    /// Waits until ICE and DTLS are up.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), ClientError> {
        self.peer.wait_connected(timeout).await
    }

    /// Closes the peer and DELETEs the session; returns the HTTP status.
    pub async fn close(mut self) -> Result<u16, ClientError> {
        self.peer.shutdown().await;
        delete_session(
            &self.session_url,
            self.opts.token.as_deref(),
            self.opts.http_timeout,
        )
        .await
    }
}
