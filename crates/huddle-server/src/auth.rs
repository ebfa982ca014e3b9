//! Bearer-token authentication: the one place that decides whether a request may proceed.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::AppState;

/// Checks a request's credentials against the server's token (none configured: all pass).
/// The token comes from `Authorization: Bearer …`, or from `query_token` where a client cannot
/// set headers (browser WebSockets).
pub fn authorize(
    expected: Option<&str>,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .or(query_token);
    match presented {
        None => Err(ApiError::Unauthorized),
        Some(t) if !constant_time_eq(t.as_bytes(), expected.as_bytes()) => {
            Err(ApiError::InvalidToken)
        }
        Some(_) => Ok(()),
    }
}

/// Middleware for the WHIP/WHEP routes. CORS preflights (`OPTIONS`) carry no credentials by
/// design and pass.
pub async fn require_bearer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::OPTIONS
        && let Err(e) = authorize(state.token.as_deref(), request.headers(), None)
    {
        return e.into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
