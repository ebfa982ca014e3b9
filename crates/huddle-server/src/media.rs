//! The media loop: one UDP socket, one [`Sfu`], one task. HTTP handlers talk to it through
//! [`MediaHandle`]; it turns their commands, datagrams and timeouts into core calls and sends
//! what the core wants sent.

use std::net::SocketAddr;
use std::time::Instant;

use huddle_core::{
    Answer, CoreError, Datagram, Event, IceRestart, MediaKind, ParticipantId, Role, Sfu, SfuStats,
};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::sessions::Sessions;
use crate::signaling::Registry;
use crate::signaling::messages::{Kind, ServerMessage};
use crate::udp;

/// How often the core's counters are published to `/metrics`.
const METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Longest chat message relayed, in characters.
const MAX_CHAT_CHARS: usize = 2000;

enum Command {
    Publish(String, String, oneshot::Sender<Result<Answer, CoreError>>),
    View(String, String, oneshot::Sender<Result<Answer, CoreError>>),
    Member(
        String,
        String,
        String,
        oneshot::Sender<Result<Answer, CoreError>>,
    ),
    Answer(
        ParticipantId,
        String,
        oneshot::Sender<Result<(), CoreError>>,
    ),
    Candidate(
        ParticipantId,
        String,
        oneshot::Sender<Result<(), CoreError>>,
    ),
    Patch(
        ParticipantId,
        String,
        oneshot::Sender<Result<IceRestart, CoreError>>,
    ),
    Leave(ParticipantId, oneshot::Sender<Result<(), CoreError>>),
    Stats(oneshot::Sender<SfuStats>),
}

/// Sends commands to the media loop. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaHandle {
    tx: mpsc::Sender<Command>,
}

/// The media loop stopped: the server is shutting down.
#[derive(Debug)]
pub struct Stopped;

impl MediaHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    pub async fn publish(
        &self,
        room: String,
        offer: String,
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        self.ask(|r| Command::Publish(room, offer, r)).await
    }

    pub async fn view(
        &self,
        room: String,
        offer: String,
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        self.ask(|r| Command::View(room, offer, r)).await
    }

    /// A browser's first offer: `label` is its id in room signaling.
    pub async fn member(
        &self,
        room: String,
        label: String,
        offer: String,
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        self.ask(|r| Command::Member(room, label, offer, r)).await
    }

    /// A member's answer to a server offer.
    pub async fn answer(
        &self,
        id: ParticipantId,
        sdp: String,
    ) -> Result<Result<(), CoreError>, Stopped> {
        self.ask(|r| Command::Answer(id, sdp, r)).await
    }

    pub async fn candidate(
        &self,
        id: ParticipantId,
        candidate: String,
    ) -> Result<Result<(), CoreError>, Stopped> {
        self.ask(|r| Command::Candidate(id, candidate, r)).await
    }

    pub async fn patch(
        &self,
        id: ParticipantId,
        fragment: String,
    ) -> Result<Result<IceRestart, CoreError>, Stopped> {
        self.ask(|r| Command::Patch(id, fragment, r)).await
    }

    pub async fn leave(&self, id: ParticipantId) -> Result<Result<(), CoreError>, Stopped> {
        self.ask(|r| Command::Leave(id, r)).await
    }

    pub async fn stats(&self) -> Result<SfuStats, Stopped> {
        self.ask(Command::Stats).await
    }
}

/// Spawns the media loop on the current runtime.
pub fn spawn(
    socket: UdpSocket,
    advertised: SocketAddr,
    sfu: Sfu,
    sessions: Sessions,
    registry: Registry,
) -> (MediaHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(256);
    let task = tokio::spawn(run(socket, advertised, sfu, rx, sessions, registry));
    (MediaHandle { tx }, task)
}

async fn run(
    socket: UdpSocket,
    advertised: SocketAddr,
    mut sfu: Sfu,
    mut rx: mpsc::Receiver<Command>,
    sessions: Sessions,
    registry: Registry,
) {
    let mut batch = udp::RecvBatch::default();
    let mut outgoing = Vec::new();
    let mut next_metrics = Instant::now();
    loop {
        // Tests inject a failure of the loop itself here (feature `failpoints`).
        fail::fail_point!("media-loop");
        let wake = sfu.poll_timeout();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = udp::recv(&socket, &mut batch) => match r {
                Ok(_) => {
                    let datagrams = batch
                        .datagrams()
                        .map(|(source, contents)| Datagram { source, destination: advertised, contents });
                    sfu.handle_datagrams(Instant::now(), datagrams);
                }
                // ICMP errors surface here on some systems: not fatal.
                Err(e) => debug!("udp recv: {e}"),
            },
            cmd = rx.recv() => match cmd {
                Some(cmd) => handle_command(&mut sfu, cmd),
                None => break,
            },
            () = sleep => sfu.handle_timeout(Instant::now()),
        }
        // Under constant traffic the timer branch may lose every race: run due timers anyway.
        let now = Instant::now();
        if now >= next_metrics {
            next_metrics = now + METRICS_INTERVAL;
            crate::telemetry::publish(&sfu.stats(), sessions.len());
        }
        if sfu.poll_timeout().is_some_and(|t| t <= now) {
            sfu.handle_timeout(now);
        }
        while let Some(e) = sfu.poll_event() {
            on_event(&mut sfu, &sessions, &registry, e);
        }
        outgoing.extend(std::iter::from_fn(|| sfu.poll_transmit()));
        udp::send(&socket, &mut outgoing).await;
    }
    info!("media loop stopped");
}

fn handle_command(sfu: &mut Sfu, cmd: Command) {
    let now = Instant::now();
    // A requester that went away (client hung up) is not an error.
    match cmd {
        Command::Publish(room, offer, reply) => {
            let _ = reply.send(sfu.publish(now, &room, &offer));
        }
        Command::View(room, offer, reply) => {
            let _ = reply.send(sfu.view(now, &room, &offer));
        }
        Command::Member(room, label, offer, reply) => {
            let _ = reply.send(sfu.member(now, &room, &label, &offer));
        }
        Command::Answer(id, sdp, reply) => {
            let _ = reply.send(sfu.accept_answer(now, id, &sdp));
        }
        Command::Candidate(id, candidate, reply) => {
            let _ = reply.send(sfu.add_remote_candidate(now, id, &candidate));
        }
        Command::Patch(id, fragment, reply) => {
            let _ = reply.send(sfu.patch(now, id, &fragment));
        }
        Command::Leave(id, reply) => {
            let _ = reply.send(sfu.leave(now, id));
        }
        Command::Stats(reply) => {
            let _ = reply.send(sfu.stats());
        }
    }
}

/// Tells HTTP sessions and room signaling what happened in the core.
fn on_event(sfu: &mut Sfu, sessions: &Sessions, registry: &Registry, e: Event) {
    match e {
        Event::Joined {
            room,
            participant,
            role: Role::Publisher,
        } => registry.whip_joined(&room, participant),
        Event::Left {
            participant,
            reason,
            ..
        } => {
            info!(%participant, ?reason, "participant left");
            sessions.end_participant(participant);
            registry.participant_left(participant);
        }
        Event::TrackPublished {
            participant,
            track,
            kind,
            ..
        } => {
            if let Some(label) = registry.label(participant) {
                let msg = ServerMessage::TrackPublished {
                    participant: label,
                    track: track.to_string(),
                    kind: kind_of(kind),
                };
                registry.broadcast_from(participant, msg);
            }
        }
        Event::TrackUnpublished {
            participant, track, ..
        } => {
            if let Some(label) = registry.label(participant) {
                let msg = ServerMessage::TrackUnpublished {
                    participant: label,
                    track: track.to_string(),
                };
                registry.broadcast_from(participant, msg);
            }
        }
        Event::Offer { participant, sdp } => {
            registry.send(participant, ServerMessage::Offer { sdp })
        }
        Event::Message {
            participant, data, ..
        } => relay_chat(sfu, registry, participant, &data),
        Event::CodecMismatch {
            subscriber,
            track,
            codecs,
        } => {
            warn!(%subscriber, %track, ?codecs, "track not forwarded: no common codec");
        }
        other => debug!(event = ?other),
    }
}

fn kind_of(kind: MediaKind) -> Kind {
    match kind {
        MediaKind::Audio => Kind::Audio,
        MediaKind::Video => Kind::Video,
    }
}

/// A chat message the page sent as `{"text": …}` goes to everyone else in its room as
/// `{"from", "name", "text", "at"}`; anything else is refused with an error to the sender.
fn relay_chat(sfu: &mut Sfu, registry: &Registry, from: ParticipantId, data: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Chat {
        text: String,
    }
    let text = match serde_json::from_slice::<Chat>(data) {
        Ok(c) if !c.text.trim().is_empty() && c.text.chars().count() <= MAX_CHAT_CHARS => c.text,
        Ok(_) => {
            let reason = format!("chat messages must have 1-{MAX_CHAT_CHARS} characters");
            registry.send(from, ServerMessage::Error { reason });
            return;
        }
        Err(e) => {
            let reason = format!("chat message is not {{\"text\": …}}: {e}");
            registry.send(from, ServerMessage::Error { reason });
            return;
        }
    };
    let (Some(label), Some(name)) = (registry.label(from), registry.name(from)) else {
        return;
    };
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let out =
        serde_json::json!({ "from": label, "name": name, "text": text, "at": at }).to_string();
    let now = Instant::now();
    for peer in registry.room_peers(from) {
        sfu.send_message(now, peer, out.as_bytes());
    }
}
