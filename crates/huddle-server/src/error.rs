//! Every error an HTTP client can see, and the one place where each becomes a status code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use huddle_core::CoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("unsupported content type {0:?}; expected {1}")]
    UnsupportedMediaType(String, &'static str),
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("empty body: expected an SDP offer")]
    EmptyOffer,
    #[error("no such session")]
    UnknownSession,
    #[error("missing bearer token")]
    Unauthorized,
    /// A token was presented but is not valid (RFC 6750 `invalid_token`).
    #[error("invalid bearer token: {0}")]
    InvalidToken(String),
    /// A valid token that does not grant this room or action.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("If-Match does not match the session's ETag")]
    PreconditionFailed,
    #[error("media loop is not running")]
    Unavailable,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Over a per-client limit (rate, sessions per address or identity).
    #[error("too many requests: {0}")]
    TooMany(String),
}

impl ApiError {
    /// The HTTP status of this refusal, and the reason it is counted under in
    /// `huddle_refused_total` ([`crate::telemetry::REFUSALS`]): one table for both.
    fn class(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Core(e) => match e {
                CoreError::MalformedSdp(_)
                | CoreError::OfferRejected(_)
                | CoreError::NoUsableMedia(_)
                | CoreError::MalformedCandidate(_)
                | CoreError::AnswerRejected(_)
                | CoreError::InvalidRoomName => (StatusCode::BAD_REQUEST, "bad_request"),
                CoreError::UnknownParticipant(_) => (StatusCode::NOT_FOUND, "not_found"),
                CoreError::Full(_) => (StatusCode::SERVICE_UNAVAILABLE, "server_full"),
                CoreError::Refused(_) => (StatusCode::SERVICE_UNAVAILABLE, "room_limit"),
                CoreError::PeerFailed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "peer_failed"),
            },
            ApiError::UnsupportedMediaType(..) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_request")
            }
            ApiError::EmptyOffer | ApiError::NotUtf8 => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::UnknownSession => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::PreconditionFailed => {
                (StatusCode::PRECONDITION_FAILED, "precondition_failed")
            }
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            ApiError::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "client_limit"),
        }
    }

    /// The reason this refusal is counted under in `huddle_refused_total`.
    pub fn reason(&self) -> &'static str {
        self.class().1
    }

    pub fn status(&self) -> StatusCode {
        self.class().0
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        crate::telemetry::refused(self.reason());
        let challenge = match self {
            // RFC 6750 §3: a request without credentials gets the bare challenge.
            ApiError::InvalidToken(_) => "Bearer error=\"invalid_token\"",
            _ => "Bearer",
        };
        if status.is_server_error() {
            tracing::warn!("{status}: {self}");
        } else {
            tracing::debug!("{status}: {self}");
        }
        let mut response = (status, format!("{self}\n")).into_response();
        let headers = response.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
