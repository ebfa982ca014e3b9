//! Bearer-token authentication: the one place that decides whether a request may proceed.

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::AppState;

/// Requires `Authorization: Bearer <token>` when the server has a token. CORS preflights
/// (`OPTIONS`) carry no credentials by design and pass.
pub async fn require_bearer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = state.token.as_deref()
        && request.method() != Method::OPTIONS
    {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        match presented {
            None => return ApiError::Unauthorized.into_response(),
            Some(t) if !constant_time_eq(t.as_bytes(), expected.as_bytes()) => {
                return ApiError::Forbidden.into_response();
            }
            Some(_) => {}
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
