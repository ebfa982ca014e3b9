//! WHIP publisher: sends synthetic audio/video, or a real VP8 clip, to an ingest endpoint.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::ClientError;
use crate::http::delete_session;
use crate::offer::{Negotiated, negotiate, negotiate_with};
use crate::options::{ClientOptions, VideoCodec, VideoSource};
use crate::peer::{PeerHandle, PublishState, Role, lock};
use crate::stats::PublisherStats;

/// A WHIP publisher: one WebRTC peer sending synthetic media (or the VP8 clip, see
/// [`VideoSource`]).
#[derive(Debug)]
pub struct Publisher {
    opts: ClientOptions,
    /// WHIP session URL and ETag; `None` when another signalling set the peer up.
    session: Option<(String, Option<String>)>,
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
        Self::check_options(&opts)?;
        let n = negotiate(whip_url, &opts, true).await?;
        Self::start(n, opts).await
    }

    /// For signalling other than WHIP (e.g. Janus): `exchange` gets the offer SDP and
    /// returns the answer SDP. Refuses the same options as [`Publisher::connect`].
    pub async fn connect_with<F, Fut>(
        opts: ClientOptions,
        exchange: F,
    ) -> Result<Publisher, ClientError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<String, ClientError>>,
    {
        Self::check_options(&opts)?;
        let n = negotiate_with(&opts, true, exchange).await?;
        Self::start(n, opts).await
    }

    fn check_options(opts: &ClientOptions) -> Result<(), ClientError> {
        if opts.video_source == VideoSource::Clip && opts.video == Some(VideoCodec::H264) {
            return Err(ClientError::Options(
                "VideoSource::Clip is VP8 only, but video is H264".into(),
            ));
        }
        Ok(())
    }

    async fn start(n: Negotiated, opts: ClientOptions) -> Result<Publisher, ClientError> {
        let stats = Arc::new(Mutex::new(PublisherStats::default()));
        let state = match PublishState::new(&n, &opts, stats.clone()) {
            Ok(s) => s,
            Err(e) => {
                if let Some(session) = &n.session {
                    let _ = delete_session(
                        &session.session_url,
                        opts.token.as_deref(),
                        opts.http_timeout,
                    )
                    .await;
                }
                return Err(e);
            }
        };
        let session = n
            .session
            .as_ref()
            .map(|s| (s.session_url.clone(), s.etag.clone()));
        let peer = PeerHandle::spawn_with_tcp(n.rtc, n.socket, n.tcp, Role::Publish(state))?;
        Ok(Publisher {
            session,
            opts,
            stats,
            peer,
        })
    }

    /// Absolute session URL (the `Location` header resolved against the WHIP URL); `None`
    /// without WHIP.
    pub fn session_url(&self) -> Option<&str> {
        self.session.as_ref().map(|(url, _)| url.as_str())
    }

    /// The `ETag` the server sent, if any.
    pub fn etag(&self) -> Option<&str> {
        self.session.as_ref().and_then(|(_, etag)| etag.as_deref())
    }

    /// A snapshot of what has been sent so far.
    pub fn stats(&self) -> PublisherStats {
        lock(&self.stats).clone()
    }

    /// Waits until ICE and DTLS are up.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), ClientError> {
        self.peer.wait_connected(timeout).await
    }

    /// Stops media, closes the peer and DELETEs the WHIP session; returns the HTTP status
    /// (200 without WHIP, where ending the session is up to whoever signalled it).
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
