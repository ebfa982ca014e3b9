//! Pulls: a room hosted on another node, fed to this one **once**, over a WHEP session to
//! that node, and fanned out here. Each pull runs on its own task with its own UDP socket;
//! it feeds the room's home worker over a relay link, as one worker feeds another
//! ([`huddle_core::Pull`] turns the session into relay messages).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use huddle_core::{CoreError, Datagram, MediaKind, Pull, Relay, RelayLink, Transport};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::Shared;
use super::worker::Command;

/// Longest the other node may take to answer the pull's offer (or its DELETE).
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Keyframe requests and "nobody watches" queued for a pull.
const QUEUE: usize = 64;
/// The header that marks a node's pull: the room's node serves it itself, never elsewhere.
pub const PULL_HEADER: &str = "x-huddle-pull";

/// Where to pull a room from.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The room's WHEP URL at its node.
    pub whep: String,
    /// A credential the other node accepts for viewing the room.
    pub token: Option<String>,
    /// This node's id, sent in [`PULL_HEADER`].
    pub node: String,
}

/// The pulls of this node, by room.
#[derive(Debug, Default)]
pub(crate) struct Pulls {
    active: std::sync::Mutex<HashMap<String, Active>>,
    /// Held while a pull is being set up (one at a time: two viewers arriving together
    /// start one pull), never by readers of `active`.
    starting: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Active {
    tx: mpsc::Sender<Relay>,
    origin: String,
    packets: Arc<AtomicU64>,
}

/// One pull, as `GET /cluster` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PullReport {
    pub room: String,
    pub origin: String,
    /// RTP packets received over the pull's session.
    pub packets: u64,
}

impl Pulls {
    /// Makes sure `room` is fed here from `origin`: reuses the pull running for it, or
    /// starts one (waiting for the other node's answer, so that a refusal reaches the
    /// viewer that asked).
    pub(crate) async fn ensure(
        &self,
        shared: &Shared,
        bind: SocketAddr,
        advertised: SocketAddr,
        room: &str,
        origin: &Origin,
    ) -> Result<(), CoreError> {
        let _starting = self.starting.lock().await;
        if self.active().get(room).is_some_and(|a| !a.tx.is_closed()) {
            return Ok(());
        }
        let socket = std::net::UdpSocket::bind(SocketAddr::new(bind.ip(), 0))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(|s| tokio::net::UdpSocket::from_std(s))
            .map_err(|e| CoreError::Refused(format!("pull socket: {e}")))?;
        let port = socket
            .local_addr()
            .map_err(|e| CoreError::Refused(format!("pull socket: {e}")))?
            .port();
        let local = SocketAddr::new(advertised.ip(), port);
        let (mut pull, offer) = Pull::offer(Instant::now(), local)?;
        let (answer, session) = post(origin, offer).await?;
        pull.accept_answer(Instant::now(), &answer)?;
        let (home, link) = shared.placement().home_for_pull(room);
        let (tx, rx) = mpsc::channel(QUEUE);
        shared.send(
            home,
            Command::PullFrom {
                room: room.to_owned(),
                link,
                pull: tx.clone(),
            },
        );
        let packets = Arc::new(AtomicU64::new(0));
        info!(%room, origin = %origin.whep, %link, "pulling the room from its node");
        let task = Task {
            pull,
            socket,
            local,
            home,
            link,
            shared: shared.clone(),
            rx,
            packets: packets.clone(),
        };
        let origin_for_delete = origin.clone();
        tokio::spawn(async move {
            task.run().await;
            delete(&origin_for_delete, &session).await;
        });
        self.active().insert(
            room.to_owned(),
            Active {
                tx,
                origin: origin.whep.clone(),
                packets,
            },
        );
        Ok(())
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        // Plain bookkeeping: consistent after every statement, whatever panicked while held.
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn report(&self) -> Vec<PullReport> {
        let mut pulls = self.active();
        pulls.retain(|_, a| !a.tx.is_closed());
        let mut list: Vec<PullReport> = pulls
            .iter()
            .map(|(room, a)| PullReport {
                room: room.clone(),
                origin: a.origin.clone(),
                packets: a.packets.load(Ordering::Relaxed),
            })
            .collect();
        list.sort_by(|a, b| a.room.cmp(&b.room));
        list
    }
}

/// A running pull.
struct Task {
    pull: Pull,
    socket: tokio::net::UdpSocket,
    local: SocketAddr,
    home: usize,
    link: RelayLink,
    shared: Shared,
    rx: mpsc::Receiver<Relay>,
    packets: Arc<AtomicU64>,
}

impl Task {
    async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        loop {
            self.flush().await;
            if let Some(why) = self.pull.ended() {
                info!(link = %self.link, why, "pull stopped");
                // The room here loses its feed; a later viewer starts a new pull.
                self.shared.send(self.home, Command::CloseRelay(self.link));
                return;
            }
            let wake = self.pull.poll_timeout();
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => if let Ok((n, source)) = r {
                    let contents = buf.get(..n).unwrap_or_default();
                    let datagram = Datagram {
                        transport: Transport::Udp,
                        source,
                        destination: self.local,
                        contents,
                    };
                    self.pull.handle_datagram(Instant::now(), datagram);
                },
                msg = self.rx.recv() => match msg {
                    Some(Relay::KeyframeRequest { kind, .. }) => {
                        self.pull.request_keyframe(Instant::now(), kind);
                    }
                    Some(Relay::Unsubscribed) | None => self.pull.close(),
                    Some(_) => {}
                },
                () = tokio::time::sleep_until(wake.into()) => self.pull.handle_timeout(Instant::now()),
            }
        }
    }

    /// Sends what the session wants sent, and hands the feed to the room's worker.
    async fn flush(&mut self) {
        while let Some(t) = self.pull.poll_transmit() {
            if let Err(e) = self.socket.send_to(&t.contents, t.destination).await {
                tracing::debug!("pull send: {e}");
            }
        }
        let batch: Vec<(RelayLink, Relay)> = std::iter::from_fn(|| self.pull.poll_relay())
            .map(|m| (self.link, m))
            .collect();
        if !batch.is_empty() {
            self.packets.store(self.pull.packets(), Ordering::Relaxed);
            let ended = batch.iter().any(|(_, m)| {
                matches!(
                    m,
                    Relay::Ended {
                        kind: MediaKind::Video
                    }
                )
            });
            if !self.shared.try_send(self.home, Command::Relay(batch)) && ended {
                warn!(link = %self.link, "the room's worker is far behind; its feed ended");
            }
        }
    }
}

fn http() -> Result<reqwest::Client, CoreError> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CoreError::Refused(format!("pull: {e}")))
}

/// POSTs the pull's offer; returns the answer and the session's URL.
async fn post(origin: &Origin, offer: String) -> Result<(String, String), CoreError> {
    let refused = |why: String| CoreError::Refused(format!("the room's node: {why}"));
    let mut req = http()?
        .post(&origin.whep)
        .header(reqwest::header::CONTENT_TYPE, "application/sdp")
        .header(PULL_HEADER, &origin.node)
        .body(offer);
    if let Some(t) = &origin.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| refused(e.to_string()))?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.map_err(|e| refused(e.to_string()))?;
    if status != reqwest::StatusCode::CREATED {
        return Err(refused(format!("{status}: {}", body.trim())));
    }
    let location = location.ok_or_else(|| refused("no Location for the session".into()))?;
    let session = reqwest::Url::parse(&origin.whep)
        .and_then(|base| base.join(&location))
        .map_err(|e| refused(format!("Location {location:?}: {e}")))?;
    Ok((body, session.to_string()))
}

/// Ends the session at the other node (best effort: it times out there anyway).
async fn delete(origin: &Origin, session: &str) {
    let Ok(client) = http() else { return };
    let mut req = client.delete(session);
    if let Some(t) = &origin.token {
        req = req.bearer_auth(t);
    }
    if let Err(e) = req.send().await {
        tracing::debug!("pull: DELETE {session}: {e}");
    }
}
