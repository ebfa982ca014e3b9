//! A room-call participant over the room WebSocket (`/rooms/{room}/ws`), as huddle's page.
//!
//! The protocol (huddle-server's `signaling/messages.rs`): send `join`, get `welcome` (our
//! id); send one offer with sendonly video + audio and a data channel labelled `chat`, get
//! the `answer`; from then on answer every server `offer` (others' tracks added or removed).
//! An incoming track's `msid` stream id is its publisher's participant id. Chat goes over the
//! data channel: `{"text":…}` out, `{"from","name","text","at"}` in.
//!
//! Two tasks: the usual str0m drive loop ([`crate::peer`]) publishing synthetic media and
//! verifying every received packet per remote participant, and a signalling task that owns
//! the WebSocket and hands server offers to the drive loop (one mutation, then a drain).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use str0m::Candidate;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;
use crate::offer::{build_rtc, drain_idle};
use crate::options::{ClientOptions, VideoSource};
use crate::peer::{Control, MemberState, PeerHandle, PublishState, Role, ViewerShared, lock};
use crate::stats::{ChatMessage, MemberStats, PublisherStats};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long `leave` waits for the WebSocket to close.
const LEAVE_GRACE: Duration = Duration::from_secs(2);

/// State shared by the drive loop, the signalling task and the handle.
#[derive(Debug, Default)]
pub(crate) struct MemberShared {
    pub id: String,
    pub connected: bool,
    pub signaling_open: bool,
    pub received: BTreeMap<String, ViewerShared>,
    pub server_offers: u64,
    pub chat: Vec<ChatMessage>,
    pub joined: Vec<String>,
    pub left: Vec<String>,
    pub speakers: Vec<(Option<String>, Instant)>,
    pub tracks: Vec<(String, String)>,
    pub errors: Vec<String>,
}

impl MemberShared {
    fn snapshot(&self, published: PublisherStats) -> MemberStats {
        MemberStats {
            id: self.id.clone(),
            connected: self.connected,
            signaling_open: self.signaling_open,
            published,
            received: self
                .received
                .iter()
                .map(|(k, v)| (k.clone(), v.snapshot()))
                .collect(),
            server_offers: self.server_offers,
            chat: self.chat.clone(),
            joined: self.joined.clone(),
            left: self.left.clone(),
            speakers: self.speakers.clone(),
            tracks: self.tracks.clone(),
            errors: self.errors.clone(),
        }
    }

    /// Room events that need no reply (`participant-joined`, `participant-left`, `speaker`,
    /// `track-published`, `error`).
    fn note(&mut self, msg: &Value) {
        let str_of = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        match text(msg, "type") {
            Some("participant-joined") => self
                .joined
                .push(str_of(msg.get("participant").and_then(|p| p.get("id")))),
            Some("participant-left") => self.left.push(str_of(msg.get("id"))),
            Some("track-published") => self
                .tracks
                .push((str_of(msg.get("participant")), str_of(msg.get("track")))),
            Some("speaker") => self.speakers.push((
                msg.get("participant")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                Instant::now(),
            )),
            Some("error") => self.errors.push(str_of(msg.get("reason"))),
            _ => {}
        }
    }
}

/// What the handle asks the signalling task to send.
#[derive(Debug)]
enum Outgoing {
    Raw(String),
    Leave,
}

/// One participant of a room call, speaking the room WebSocket protocol like huddle's page,
/// publishing synthetic audio + video (payloads with the huddle header) and verifying what
/// every other participant publishes.
#[derive(Debug)]
pub struct RoomMember {
    id: String,
    join_started: Instant,
    shared: Arc<Mutex<MemberShared>>,
    published: Arc<Mutex<PublisherStats>>,
    control: mpsc::UnboundedSender<Control>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    signaling: Option<JoinHandle<()>>,
    peer: PeerHandle,
}

fn ws_err(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(format!("room WebSocket {what}: {e}"))
}

/// `ws_url` with `?token=` from `opts.token` unless it already has one.
fn with_token(ws_url: &str, token: Option<&str>) -> String {
    match token {
        Some(t) if !ws_url.contains("token=") => {
            let sep = if ws_url.contains('?') { '&' } else { '?' };
            format!("{ws_url}{sep}token={t}")
        }
        _ => ws_url.to_owned(),
    }
}

/// Next JSON text message; other frames are skipped.
async fn next_json(ws: &mut Ws) -> Result<Value, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(t.as_str())
                    .map_err(|e| ws_err("sent invalid JSON", e));
            }
            Some(Ok(Message::Close(f))) => {
                return Err(ClientError::Closed(format!("room WebSocket closed: {f:?}")));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ClientError::Closed(format!("room WebSocket read: {e}"))),
            None => return Err(ClientError::Closed("room WebSocket ended".into())),
        }
    }
}

async fn send_json(ws: &mut Ws, v: Value) -> Result<(), ClientError> {
    ws.send(Message::text(v.to_string()))
        .await
        .map_err(|e| ws_err("send", e))
}

impl RoomMember {
    /// Joins the room at `ws_url` (`ws://host:port/rooms/{room}/ws`, `?token=` added from
    /// `opts.token` if missing) as `name`: `join` → `welcome`, then our offer (sendonly
    /// video if `opts.video`, sendonly audio if `opts.audio`, data channel `chat`) →
    /// `answer`. Returns once the answer is applied; media flows once ICE and DTLS are up.
    ///
    /// Only [`VideoSource::Synthetic`] is supported (the receivers verify every payload).
    pub async fn join(
        ws_url: &str,
        name: &str,
        opts: ClientOptions,
    ) -> Result<RoomMember, ClientError> {
        if opts.video_source != VideoSource::Synthetic {
            return Err(ClientError::Options(
                "RoomMember sends synthetic media only".into(),
            ));
        }
        let join_started = Instant::now();
        let url = with_token(ws_url, opts.token.as_deref());
        let handshake = tokio::time::timeout(opts.http_timeout, Self::handshake(&url, name, &opts));
        let (ws, shared, rtc, socket, video_mid, audio_mid) = handshake
            .await
            .map_err(|_| ClientError::Timeout(format!("joining {ws_url}")))??;

        let id = lock(&shared).id.clone();
        let published = Arc::new(Mutex::new(PublisherStats::default()));
        let publish = PublishState::for_rtc(&rtc, video_mid, audio_mid, &opts, published.clone())?;
        let state = MemberState {
            publish,
            request_keyframes: opts.request_keyframes,
            last_pli: Default::default(),
            chat: None,
            shared: shared.clone(),
        };
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let peer =
            PeerHandle::spawn_with_control(rtc, socket, Role::Member(state), Some(control_rx))?;
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let signaling = tokio::spawn(signaling(ws, shared.clone(), control_tx.clone(), out_rx));
        Ok(RoomMember {
            id,
            join_started,
            shared,
            published,
            control: control_tx,
            outgoing: out_tx,
            signaling: Some(signaling),
            peer,
        })
    }

    /// `join` → `welcome`, offer → answer; the `Rtc` with the answer applied.
    #[allow(clippy::type_complexity)]
    async fn handshake(
        url: &str,
        name: &str,
        opts: &ClientOptions,
    ) -> Result<
        (
            Ws,
            Arc<Mutex<MemberShared>>,
            str0m::Rtc,
            UdpSocket,
            Option<str0m::media::Mid>,
            Option<str0m::media::Mid>,
        ),
        ClientError,
    > {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| ws_err("connect", e))?;
        send_json(&mut ws, json!({"type": "join", "name": name})).await?;
        let welcome = next_json(&mut ws).await?;
        if text(&welcome, "type") != Some("welcome") {
            return Err(ClientError::Protocol(format!(
                "expected welcome, got {welcome}"
            )));
        }
        let id = text(&welcome, "id")
            .ok_or_else(|| ClientError::Protocol(format!("welcome without id: {welcome}")))?
            .to_owned();
        let shared = Arc::new(Mutex::new(MemberShared {
            id: id.clone(),
            signaling_open: true,
            ..MemberShared::default()
        }));

        let socket = UdpSocket::bind(SocketAddr::new(opts.bind_ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = build_rtc(opts, true)?;
        let cand = Candidate::host(local, "udp")
            .map_err(|e| ClientError::Protocol(format!("host candidate {local}: {e}")))?;
        rtc.add_local_candidate(cand);
        drain_idle(&mut rtc)?;
        let mut api = rtc.sdp_api();
        // Like the page: one stream (our id) with camera then microphone.
        let video_mid = opts.video.map(|_| {
            api.add_media(
                MediaKind::Video,
                Direction::SendOnly,
                Some(id.clone()),
                None,
                None,
            )
        });
        let audio_mid = opts.audio.then(|| {
            api.add_media(
                MediaKind::Audio,
                Direction::SendOnly,
                Some(id.clone()),
                None,
                None,
            )
        });
        api.add_channel("chat".into());
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| ClientError::Protocol("nothing to offer".into()))?;
        drain_idle(&mut rtc)?;
        send_json(
            &mut ws,
            json!({"type": "offer", "sdp": offer.to_sdp_string()}),
        )
        .await?;
        let answer = loop {
            let msg = next_json(&mut ws).await?;
            match text(&msg, "type") {
                Some("answer") => break text(&msg, "sdp").unwrap_or_default().to_owned(),
                Some("error") => {
                    return Err(ClientError::Protocol(format!(
                        "offer refused: {}",
                        text(&msg, "reason").unwrap_or_default()
                    )));
                }
                _ => lock(&shared).note(&msg),
            }
        };
        let answer = SdpAnswer::from_sdp_string(&answer)
            .map_err(|e| ClientError::Protocol(format!("unparsable answer SDP: {e}")))?;
        rtc.sdp_api().accept_answer(pending, answer)?;
        drain_idle(&mut rtc)?;
        Ok((ws, shared, rtc, socket, video_mid, audio_mid))
    }

    /// Our participant id (from `welcome`; also the msid of our tracks at the others).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When `join` was called (for join-time figures).
    pub fn join_started(&self) -> Instant {
        self.join_started
    }

    /// A snapshot of what was sent, received and said. Cheap: no latency samples (see
    /// [`RoomMember::take_latency`]).
    pub fn stats(&self) -> MemberStats {
        let published = lock(&self.published).clone();
        lock(&self.shared).snapshot(published)
    }

    /// Send → receive latency samples (µs) of every received packet since the last call,
    /// all remote participants and both kinds together (at most 100,000 per stream kept
    /// between calls).
    pub fn take_latency(&self) -> Vec<u64> {
        let mut s = lock(&self.shared);
        let mut out = Vec::new();
        for r in s.received.values_mut() {
            out.append(&mut r.audio.take_latency());
            out.append(&mut r.video.take_latency());
        }
        out
    }

    /// Waits until ICE and DTLS are up.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), ClientError> {
        self.peer.wait_connected(timeout).await
    }

    /// Sends `{"text": text}` on the chat data channel (an error is recorded in
    /// `stats().errors` if the channel is not open yet).
    pub fn say(&self, text: &str) {
        let _ = self.control.send(Control::Chat(text.to_owned()));
    }

    /// Sends a raw text message on the room WebSocket (for protocol tests).
    pub fn send_raw(&self, text: &str) {
        let _ = self.outgoing.send(Outgoing::Raw(text.to_owned()));
    }

    /// Sends `{"type":"leave"}`, closes the WebSocket and the peer connection.
    pub async fn leave(mut self) {
        let _ = self.outgoing.send(Outgoing::Leave);
        if let Some(mut task) = self.signaling.take()
            && tokio::time::timeout(LEAVE_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
        self.peer.shutdown().await;
    }
}

impl Drop for RoomMember {
    fn drop(&mut self) {
        // Dropping the WebSocket tells the server we are gone.
        if let Some(task) = &self.signaling {
            task.abort();
        }
    }
}

/// Owns the WebSocket after the handshake: answers server offers through the drive loop,
/// records room events, sends what the handle asks for.
async fn signaling(
    mut ws: Ws,
    shared: Arc<Mutex<MemberShared>>,
    control: mpsc::UnboundedSender<Control>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) {
    loop {
        tokio::select! {
            msg = next_json(&mut ws) => {
                let msg = match msg {
                    Ok(m) => m,
                    Err(ClientError::Closed(_)) => break,
                    Err(e) => {
                        lock(&shared).errors.push(e.to_string());
                        continue;
                    }
                };
                if text(&msg, "type") != Some("offer") {
                    lock(&shared).note(&msg);
                    continue;
                }
                lock(&shared).server_offers += 1;
                let (reply, answer) = oneshot::channel();
                let sdp = text(&msg, "sdp").unwrap_or_default().to_owned();
                if control.send(Control::Offer { sdp, reply }).is_err() {
                    break; // the drive loop is gone
                }
                match answer.await {
                    Ok(Ok(sdp)) => {
                        if send_json(&mut ws, json!({"type": "answer", "sdp": sdp})).await.is_err() {
                            break;
                        }
                    }
                    Ok(Err(e)) => lock(&shared).errors.push(e),
                    Err(_) => break,
                }
            }
            out = outgoing.recv() => match out {
                Some(Outgoing::Raw(text)) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Leave) | None => {
                    let _ = send_json(&mut ws, json!({"type": "leave"})).await;
                    let _ = ws.close(None).await;
                    break;
                }
            }
        }
    }
    lock(&shared).signaling_open = false;
}

/// A message's string field, if it has one.
fn text<'a>(msg: &'a Value, key: &str) -> Option<&'a str> {
    msg.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_added_once() {
        assert_eq!(with_token("ws://h/rooms/a/ws", None), "ws://h/rooms/a/ws");
        assert_eq!(
            with_token("ws://h/rooms/a/ws", Some("t")),
            "ws://h/rooms/a/ws?token=t"
        );
        assert_eq!(
            with_token("ws://h/rooms/a/ws?x=1", Some("t")),
            "ws://h/rooms/a/ws?x=1&token=t"
        );
        assert_eq!(
            with_token("ws://h/rooms/a/ws?token=u", Some("t")),
            "ws://h/rooms/a/ws?token=u"
        );
    }

    #[test]
    fn room_events_are_noted() {
        let mut s = MemberShared::default();
        for m in [
            json!({"type": "participant-joined", "participant": {"id": "m2", "name": "b", "source": "browser", "audio_muted": false, "video_muted": false}}),
            json!({"type": "participant-left", "id": "m2"}),
            json!({"type": "error", "reason": "unknown type"}),
            json!({"type": "speaker", "participant": "m2"}),
            json!({"type": "speaker", "participant": null}),
            json!({"type": "track-published", "participant": "m2", "track": "t1", "kind": "audio"}),
        ] {
            s.note(&m);
        }
        assert_eq!(s.joined, vec!["m2"]);
        assert_eq!(s.left, vec!["m2"]);
        assert_eq!(s.errors, vec!["unknown type"]);
        let speakers: Vec<_> = s.speakers.iter().map(|(p, _)| p.as_deref()).collect();
        assert_eq!(speakers, vec![Some("m2"), None]);
        assert_eq!(s.tracks, vec![("m2".to_owned(), "t1".to_owned())]);
    }
}
