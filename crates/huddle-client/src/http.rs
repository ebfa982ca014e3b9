//! WHIP/WHEP signalling over HTTP: POST the offer, DELETE the session.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, LOCATION};
use reqwest::{Client, StatusCode, Url};

use crate::error::ClientError;

/// What a successful POST returned.
#[derive(Clone, Debug)]
pub struct SessionCreated {
    /// Answer SDP (response body).
    pub answer: String,
    /// Session URL, resolved against the POST URL.
    pub session_url: String,
    /// `ETag` header, if any.
    pub etag: Option<String>,
}

fn client(timeout: Duration) -> Result<Client, ClientError> {
    Ok(Client::builder().no_proxy().timeout(timeout).build()?)
}

fn with_token(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(t) => req.header(AUTHORIZATION, format!("Bearer {t}")),
        None => req,
    }
}

/// Removes every `a=candidate` and `a=end-of-candidates` line (OBS-shaped offer).
pub fn strip_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let l = line.trim_start();
        if l.starts_with("a=candidate") || l.starts_with("a=end-of-candidates") {
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Redirects followed at most by one POST.
const MAX_REDIRECTS: usize = 5;

/// POSTs an offer to a WHIP/WHEP endpoint; requires `201 Created` and a `Location`. A
/// `307`/`308` (a cluster node sending the client to the room's node) is followed with the
/// same body and token, and the `Location` is resolved against the URL that answered.
pub async fn post_offer(
    endpoint: &str,
    offer: String,
    token: Option<&str>,
    timeout: Duration,
) -> Result<SessionCreated, ClientError> {
    let mut url = Url::parse(endpoint).map_err(|e| ClientError::Url(format!("{endpoint}: {e}")))?;
    // Redirects by hand: reqwest would drop the Authorization header on the way to another
    // host or port.
    let http = Client::builder()
        .no_proxy()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut redirects = 0;
    let resp = loop {
        let req = http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/sdp")
            .body(offer.clone());
        let resp = with_token(req, token).send().await?;
        let status = resp.status();
        if status != StatusCode::TEMPORARY_REDIRECT && status != StatusCode::PERMANENT_REDIRECT {
            break resp;
        }
        redirects += 1;
        if redirects > MAX_REDIRECTS {
            return Err(ClientError::Protocol(format!(
                "more than {MAX_REDIRECTS} redirects from {endpoint}"
            )));
        }
        let to = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Protocol(format!("{status} without a Location header")))?;
        url = url
            .join(to)
            .map_err(|e| ClientError::Url(format!("Location {to}: {e}")))?;
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.text().await?;
    if status != StatusCode::CREATED {
        return Err(ClientError::Http {
            status: status.as_u16(),
            body,
        });
    }
    let location = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ClientError::Protocol("201 without a Location header".into()))?;
    let session_url = url
        .join(location)
        .map_err(|e| ClientError::Url(format!("Location {location}: {e}")))?
        .to_string();
    let etag = headers
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(SessionCreated {
        answer: body,
        session_url,
        etag,
    })
}

/// DELETEs a session URL and returns the HTTP status, whatever it is.
pub async fn delete_session(
    session_url: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<u16, ClientError> {
    let url =
        Url::parse(session_url).map_err(|e| ClientError::Url(format!("{session_url}: {e}")))?;
    let resp = with_token(client(timeout)?.delete(url), token)
        .send()
        .await?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_candidates() {
        let sdp = "v=0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=mid:0\r\na=end-of-candidates\r\n";
        assert_eq!(strip_candidates(sdp), "v=0\r\na=mid:0\r\n");
    }
}
