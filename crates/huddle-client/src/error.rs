//! The one error type of the client.

/// Everything that can go wrong while signalling or running a peer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an unexpected HTTP status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Response body (text, possibly empty).
        body: String,
    },
    /// The HTTP request itself failed (connect, timeout, …).
    #[error("HTTP request failed: {0}")]
    Request(#[from] reqwest::Error),
    /// A URL could not be parsed or resolved.
    #[error("invalid URL: {0}")]
    Url(String),
    /// The server broke the WHIP/WHEP protocol (missing Location, bad SDP, …).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// str0m refused something.
    #[error("WebRTC error: {0}")]
    Rtc(#[from] str0m::RtcError),
    /// Socket error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Waiting for something took too long.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The options contradict each other (e.g. a VP8 clip with H.264 video).
    #[error("invalid options: {0}")]
    Options(String),
    /// The peer's drive task has ended.
    #[error("peer closed: {0}")]
    Closed(String),
}
