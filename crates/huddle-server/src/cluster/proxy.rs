//! A room WebSocket for a room hosted on another node: this node opens the same socket on
//! the owner (same path, query and `Authorization`, so the owner checks the same token) and
//! relays messages both ways until either side closes. Browsers cannot follow a redirect on
//! a WebSocket, so relaying keeps the call page unchanged: it talks to whichever node served
//! it. Between nodes the relay uses `ws://` (plain: nodes talk over their own network).

use axum::extract::ws::{self, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// Why the owner's socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the room's node has a URL a WebSocket cannot use: {0}")]
    Url(String),
    #[error("the room's node did not accept the WebSocket: {0}")]
    Connect(#[from] tungstenite::Error),
}

type Upstream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `path_and_query` on the node at `base` (`http://host:port`), presenting
/// `authorization` (the client's header, if it sent one).
pub async fn connect(
    base: &str,
    path_and_query: &str,
    authorization: Option<&axum::http::HeaderValue>,
) -> Result<Upstream, ProxyError> {
    let ws_base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        return Err(ProxyError::Url(base.to_owned()));
    };
    let url = format!("{ws_base}{path_and_query}");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ProxyError::Url(format!("{url}: {e}")))?;
    if let Some(value) = authorization
        && let Ok(v) = tungstenite::http::HeaderValue::from_bytes(value.as_bytes())
    {
        request
            .headers_mut()
            .insert(tungstenite::http::header::AUTHORIZATION, v);
    }
    let (upstream, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(upstream)
}

/// Relays between the page's socket and the owner's until one side ends.
pub async fn relay(page: WebSocket, upstream: Upstream) {
    let (mut page_tx, mut page_rx) = page.split();
    let (mut up_tx, mut up_rx) = upstream.split();
    loop {
        tokio::select! {
            from_page = page_rx.next() => {
                let Some(Ok(msg)) = from_page else { break };
                let close = matches!(msg, ws::Message::Close(_));
                if up_tx.send(to_upstream(msg)).await.is_err() || close {
                    break;
                }
            }
            from_owner = up_rx.next() => {
                let Some(Ok(msg)) = from_owner else { break };
                let Some(msg) = to_page(msg) else { continue };
                let close = matches!(msg, ws::Message::Close(_));
                if page_tx.send(msg).await.is_err() || close {
                    break;
                }
            }
        }
    }
    let _ = up_tx.close().await;
    let _ = page_tx.close().await;
}

fn to_upstream(msg: ws::Message) -> Message {
    match msg {
        ws::Message::Text(t) => Message::text(t.as_str()),
        ws::Message::Binary(b) => Message::binary(b),
        ws::Message::Ping(b) => Message::Ping(b),
        ws::Message::Pong(b) => Message::Pong(b),
        ws::Message::Close(frame) => {
            Message::Close(frame.map(|f| tungstenite::protocol::CloseFrame {
                code: f.code.into(),
                reason: f.reason.as_str().into(),
            }))
        }
    }
}

fn to_page(msg: Message) -> Option<ws::Message> {
    Some(match msg {
        Message::Text(t) => ws::Message::Text(t.as_str().into()),
        Message::Binary(b) => ws::Message::Binary(b),
        Message::Ping(b) => ws::Message::Ping(b),
        Message::Pong(b) => ws::Message::Pong(b),
        Message::Close(frame) => ws::Message::Close(frame.map(|f| ws::CloseFrame {
            code: f.code.into(),
            reason: f.reason.as_str().into(),
        })),
        Message::Frame(_) => return None,
    })
}
