//! The media loop: one UDP socket, one [`Sfu`], one task. HTTP handlers talk to it through
//! [`MediaHandle`]; it turns their commands, datagrams and timeouts into core calls and sends
//! what the core wants sent.

use std::net::SocketAddr;
use std::time::Instant;

use huddle_core::{Answer, CoreError, Datagram, Event, IceRestart, ParticipantId, Sfu, SfuStats};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::sessions::Sessions;

/// Largest datagram read; anything bigger is not WebRTC.
const RECV_BUF: usize = 2048;

enum Command {
    Publish(String, String, oneshot::Sender<Result<Answer, CoreError>>),
    View(String, String, oneshot::Sender<Result<Answer, CoreError>>),
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
) -> (MediaHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(256);
    let task = tokio::spawn(run(socket, advertised, sfu, rx, sessions));
    (MediaHandle { tx }, task)
}

async fn run(
    socket: UdpSocket,
    advertised: SocketAddr,
    mut sfu: Sfu,
    mut rx: mpsc::Receiver<Command>,
    sessions: Sessions,
) {
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let wake = sfu.poll_timeout();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    let contents = buf.get(..n).unwrap_or_default();
                    sfu.handle_datagram(Instant::now(), Datagram { source, destination: advertised, contents });
                    // Take whatever else is already queued before sending, without waiting.
                    for _ in 0..64 {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => {
                                let contents = buf.get(..n).unwrap_or_default();
                                sfu.handle_datagram(Instant::now(), Datagram { source, destination: advertised, contents });
                            }
                            Err(_) => break,
                        }
                    }
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
        while let Some(t) = sfu.poll_transmit() {
            if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                debug!(to = %t.destination, "udp send: {e}");
            }
        }
        while let Some(e) = sfu.poll_event() {
            on_event(&sessions, e);
        }
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

fn on_event(sessions: &Sessions, e: Event) {
    match &e {
        Event::Left {
            participant,
            reason,
            ..
        } => {
            info!(%participant, ?reason, "participant left");
            sessions.end_participant(*participant);
        }
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
