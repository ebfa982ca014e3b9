//! WHIP publisher: sends synthetic audio/video, or a real VP8 clip, to an ingest endpoint.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::ClientError;
use crate::http::delete_session;
use crate::offer::negotiate;
use crate::options::{ClientOptions, VideoCodec, VideoSource};
use crate::peer::{PeerHandle, PublishState, Role, lock};
use crate::stats::PublisherStats;

/// A WHIP publisher: one WebRTC peer sending synthetic media (or the VP8 clip, see
/// [`VideoSource`]).
#[derive(Debug)]
pub struct Publisher {
    opts: ClientOptions,
    session_url: String,
    etag: Option<String>,
    stats: Arc<Mutex<PublisherStats>>,
    peer: PeerHandle,
}

impl Publisher {
    /// POSTs an offer (sendonly audio and/or video) to `whip_url`, applies the answer and
    /// starts the peer. Media flows once ICE and DTLS are up.
    ///
    /// [`VideoSource::Clip`] with H.264 video is refused with [`ClientError::Options`]
    /// before anything is sent.
    pub async fn connect(whip_url: &str, opts: ClientOptions) -> Result<Publisher, ClientError> {
        if opts.video_source == VideoSource::Clip && opts.video == Some(VideoCodec::H264) {
            return Err(ClientError::Options(
                "VideoSource::Clip is VP8 only, but video is H264".into(),
            ));
        }
        let n = negotiate(whip_url, &opts, true).await?;
        let stats = Arc::new(Mutex::new(PublisherStats::default()));
        let state = match PublishState::new(&n, &opts, stats.clone()) {
            Ok(s) => s,
            Err(e) => {
                let _ = delete_session(
                    &n.session.session_url,
                    opts.token.as_deref(),
                    opts.http_timeout,
                )
                .await;
                return Err(e);
            }
        };
        let peer = PeerHandle::spawn(n.rtc, n.socket, Role::Publish(state))?;
        Ok(Publisher {
            session_url: n.session.session_url,
            etag: n.session.etag,
            opts,
            stats,
            peer,
        })
    }

    /// Absolute session URL (the `Location` header resolved against the WHIP URL).
    pub fn session_url(&self) -> &str {
        &self.session_url
    }

    /// The `ETag` the server sent, if any.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// A snapshot of what has been sent so far.
    pub fn stats(&self) -> PublisherStats {
        lock(&self.stats).clone()
    }

    /// Waits until ICE and DTLS are up.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), ClientError> {
        self.peer.wait_connected(timeout).await
    }

    /// Stops media, closes the peer and DELETEs the session; returns the HTTP status.
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
