//! Setting a WHIP publisher or WHEP viewer up so that it reaches huddle only through a
//! [`Relay`]: it offers no candidates (`obs_like`), the server learns the relay's upstream
//! socket as its peer-reflexive address, and the answer's candidates name the relay.

use std::sync::{Arc, Mutex};

use huddle_client::http::post_offer;
use huddle_client::{ClientError, ClientOptions, Publisher, Viewer};

use super::link::Impairment;
use super::relay::Relay;
use super::sdp::{server_address, via_relay};

/// What the exchange left behind: the relay and the session URL.
type Made = Arc<Mutex<Option<(Relay, String)>>>;

/// POSTs `offer` to `url`, starts a relay to the server's candidate and returns the answer
/// rewritten to point at it.
async fn exchange(
    url: String,
    opts: ClientOptions,
    offer: String,
    impairments: (Impairment, Impairment),
    seed: u64,
    made: Made,
) -> Result<String, ClientError> {
    let session = post_offer(&url, offer, opts.token.as_deref(), opts.http_timeout).await?;
    let server = server_address(&session.answer)
        .ok_or_else(|| ClientError::Protocol("no UDP candidate in the answer".into()))?;
    let relay = Relay::start(server, impairments.0, impairments.1, seed).await?;
    let answer = via_relay(&session.answer, relay.client_side());
    *made.lock().unwrap_or_else(|p| p.into_inner()) = Some((relay, session.session_url));
    Ok(answer)
}

fn through(opts: ClientOptions) -> ClientOptions {
    ClientOptions {
        obs_like: true,
        ..opts
    }
}

fn take(made: &Made) -> Result<(Relay, String), ClientError> {
    made.lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| ClientError::Protocol("the exchange made no relay".into()))
}

/// A WHEP viewer whose traffic goes through a relay: `up` from the viewer to the server,
/// `down` back. Returns the viewer, the relay and the WHEP session URL.
pub async fn connect_viewer(
    whep_url: &str,
    opts: ClientOptions,
    up: Impairment,
    down: Impairment,
    seed: u64,
) -> Result<(Viewer, Relay, String), ClientError> {
    let opts = through(opts);
    let made = Made::default();
    let (url, o, m) = (whep_url.to_owned(), opts.clone(), made.clone());
    let viewer =
        Viewer::connect_with(opts, |offer| exchange(url, o, offer, (up, down), seed, m)).await?;
    let (relay, session) = take(&made)?;
    Ok((viewer, relay, session))
}

/// A WHIP publisher whose traffic goes through a relay: `up` from the publisher to the
/// server, `down` back.
pub async fn connect_publisher(
    whip_url: &str,
    opts: ClientOptions,
    up: Impairment,
    down: Impairment,
    seed: u64,
) -> Result<(Publisher, Relay, String), ClientError> {
    let opts = through(opts);
    let made = Made::default();
    let (url, o, m) = (whip_url.to_owned(), opts.clone(), made.clone());
    let publisher =
        Publisher::connect_with(opts, |offer| exchange(url, o, offer, (up, down), seed, m)).await?;
    let (relay, session) = take(&made)?;
    Ok((publisher, relay, session))
}
