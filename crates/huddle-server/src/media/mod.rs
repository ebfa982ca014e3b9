//! The media workers: one thread per worker, each with its own UDP socket and [`Sfu`], and
//! [`MediaHandle`], through which HTTP and WebSocket handlers reach them.
//!
//! A join is placed first ([`placement`]): a room lives on one worker while it is small, a
//! large room's viewers spread over the others, each fed by one relay from the room's home.
//! The offer is then accepted on the caller's task ([`huddle_core::prepare`]: SDP parsing,
//! `Rtc` construction), so that a burst of joins costs the packet loops only the insertion.
//!
//! - [`worker`]: the loop of one worker; [`events`]: what it does with the core's events;
//!   [`board`]: the reports workers leave for `/metrics` and `/debug/stats`.

pub mod board;
mod destination;
mod events;
pub mod placement;
pub mod pull;
mod worker;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use huddle_core::{
    Answer, CoreError, IceRestart, Ids, MediaKind, ParticipantId, Preference, Role, Sfu, SfuConfig,
    SfuStats, SubscriptionReport, TrackId,
};
use tokio::sync::{mpsc, oneshot};

use board::{Board, Report};
use placement::{Decision, Placement};
use worker::{Command, Worker};

use crate::sessions::Sessions;
use crate::signaling::Registry;

/// Commands queued per worker before senders wait (HTTP) or drop (relay batches).
const QUEUE: usize = 1024;

/// What every worker and handler shares.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    workers: Arc<[mpsc::Sender<Command>]>,
    placement: Arc<Mutex<Placement>>,
    pub sessions: Sessions,
    pub registry: Registry,
    pub board: Board,
    /// Diagnoses of participants that left.
    pub diagnoses: crate::diagnosis::Diagnoses,
}

impl Shared {
    pub(crate) fn placement(&self) -> MutexGuard<'_, Placement> {
        // Placement is plain bookkeeping, consistent after every call: a panic elsewhere
        // while it was held cannot have left it half-updated.
        self.placement.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a control command for `worker`; a full queue (a worker far behind) drops it
    /// with a warning rather than stall the caller, which may be another worker's loop.
    fn send(&self, worker: usize, cmd: Command) {
        if let Some(tx) = self.workers.get(worker)
            && let Err(e) = tx.try_send(cmd)
        {
            tracing::warn!(worker, "worker queue: {e}");
        }
    }

    /// Queues `cmd` for `worker` if there is room; false if it was dropped.
    fn try_send(&self, worker: usize, cmd: Command) -> bool {
        self.workers
            .get(worker)
            .is_some_and(|tx| tx.try_send(cmd).is_ok())
    }
}

/// Reaches the media workers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaHandle {
    shared: Shared,
    /// Each worker's core configuration (its advertised addresses), for accepting offers.
    configs: Arc<[SfuConfig]>,
    /// Each worker's socket address, as bound.
    binds: Arc<[SocketAddr]>,
    pulls: Arc<pull::Pulls>,
}

/// The media workers stopped: the server is shutting down (or failed).
#[derive(Debug)]
pub struct Stopped;

/// A media worker's thread ended; `reason` says how.
#[derive(Debug)]
pub struct WorkerExit {
    pub worker: usize,
    pub reason: String,
}

/// One worker's bound sockets.
#[derive(Debug)]
pub struct Sockets {
    pub udp: std::net::UdpSocket,
    /// ICE over TCP: the listener on the UDP socket's address and port.
    pub tcp: Option<std::net::TcpListener>,
    /// The addresses it is advertised as (one host candidate each, per transport).
    pub advertised: Vec<SocketAddr>,
}

/// How to run the workers.
#[derive(Debug)]
pub struct MediaConfig {
    /// One worker each.
    pub sockets: Vec<Sockets>,
    /// Advertise passive TCP candidates (every worker has its listener).
    pub ice_tcp: bool,
    /// Participants a room keeps on its home worker before viewers spread out.
    pub spread_after: usize,
    /// Rooms at once, and participants per room.
    pub max_rooms: usize,
    pub max_room_participants: usize,
    /// Peers not connected by then are dropped (and diagnosed).
    pub connect_timeout: std::time::Duration,
    /// Cameras of non-speakers are held low in rooms with more videos than this (0: never).
    pub speaker_focus_after: usize,
    /// Viewers get a bandwidth estimate that their layers follow.
    pub bandwidth_estimation: bool,
}

/// Starts one thread per socket. Returns the handle and a queue on which each worker's end
/// is reported (a panic included).
pub fn spawn(
    config: MediaConfig,
    sessions: Sessions,
    registry: Registry,
) -> std::io::Result<(MediaHandle, mpsc::UnboundedReceiver<WorkerExit>)> {
    let n = config.sockets.len();
    let ids = Ids::default();
    let mut senders = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = mpsc::channel(QUEUE);
        senders.push(tx);
        receivers.push(rx);
    }
    let shared = Shared {
        workers: senders.into(),
        placement: Arc::new(Mutex::new({
            let mut p = Placement::new(n, config.spread_after);
            p.limit(config.max_rooms, config.max_room_participants);
            p
        })),
        sessions,
        registry,
        board: Board::new(n),
        diagnoses: Default::default(),
    };
    let (exits, exited) = mpsc::unbounded_channel();
    let mut configs = Vec::with_capacity(n);
    let mut binds = Vec::with_capacity(n);
    for (index, (sockets, commands)) in config.sockets.into_iter().zip(receivers).enumerate() {
        let Sockets {
            udp: socket,
            tcp,
            advertised,
        } = sockets;
        let core = SfuConfig {
            ids: ids.clone(),
            ice_tcp: config.ice_tcp && tcp.is_some(),
            connect_timeout: config.connect_timeout,
            speaker_focus_after: config.speaker_focus_after,
            bandwidth_estimation: config.bandwidth_estimation,
            ..SfuConfig::new(advertised.clone())
        };
        configs.push(core.clone());
        binds.push(socket.local_addr()?);
        let worker = Worker {
            index,
            sfu: Sfu::new(core),
            advertised,
            commands,
            shared: shared.clone(),
        };
        let exits = exits.clone();
        std::thread::Builder::new()
            .name(format!("huddle-media-{index}"))
            .spawn(move || {
                let reason = run_thread(worker, socket, tcp);
                let _ = exits.send(WorkerExit {
                    worker: index,
                    reason,
                });
            })?;
    }
    Ok((
        MediaHandle {
            shared,
            configs: configs.into(),
            binds: binds.into(),
            pulls: Arc::default(),
        },
        exited,
    ))
}

/// Runs a worker on its own single-threaded runtime; returns how it ended.
fn run_thread(
    worker: Worker,
    socket: std::net::UdpSocket,
    tcp: Option<std::net::TcpListener>,
) -> String {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return format!("no runtime: {e}"),
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(worker.run(socket, tcp));
    })) {
        Ok(()) => "it returned".to_owned(),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            format!("panicked: {message}")
        }
    }
}

impl MediaHandle {
    async fn ask<T>(
        &self,
        worker: usize,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        let queue = self.shared.workers.get(worker).ok_or(Stopped)?;
        queue.send(make(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Every open room on this server and its participants.
    pub fn rooms(&self) -> Vec<(String, usize)> {
        self.shared.placement().rooms()
    }

    /// The worker of an existing participant.
    fn worker_of(&self, id: ParticipantId) -> Result<usize, CoreError> {
        self.shared
            .placement()
            .worker_of(id)
            .ok_or(CoreError::UnknownParticipant(id))
    }

    pub async fn publish(
        &self,
        room: String,
        offer: String,
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        self.join(room, Role::Publisher, None, offer).await
    }

    pub async fn view(
        &self,
        room: String,
        offer: String,
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        self.join(room, Role::Viewer, None, offer).await
    }

    /// A browser's first offer: `label` is its id in room signaling; `grants` says whether it
    /// may (publish, subscribe).
    pub async fn member(
        &self,
        room: String,
        label: String,
        offer: String,
        grants: (bool, bool),
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        self.join_as(room, Role::Member, Some(label), offer, grants)
            .await
    }

    /// A WHEP viewer of a room hosted on another node, served here: the room is pulled from
    /// its node once (the first such viewer starts the pull) and fanned out here.
    pub async fn view_pulled(
        &self,
        room: String,
        offer: String,
        origin: &pull::Origin,
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        if !huddle_core::room::valid_room_name(&room) {
            return Ok(Err(CoreError::InvalidRoomName));
        }
        let (Some(bind), Some(advertised)) = (
            self.binds.first(),
            self.configs.first().and_then(|c| c.candidates.first()),
        ) else {
            return Err(Stopped);
        };
        if let Err(e) = self
            .pulls
            .ensure(&self.shared, *bind, *advertised, &room, origin)
            .await
        {
            return Ok(Err(e));
        }
        self.join(room, Role::Viewer, None, offer).await
    }

    /// The rooms this node pulls from others.
    pub fn pulls(&self) -> Vec<pull::PullReport> {
        self.pulls.report()
    }

    /// Places a join, accepts its offer here (off the media loops), and admits it on its
    /// worker, setting up the relay first if it lands on a new edge.
    async fn join(
        &self,
        room: String,
        role: Role,
        label: Option<String>,
        offer: String,
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        self.join_as(room, role, label, offer, (true, true)).await
    }

    async fn join_as(
        &self,
        room: String,
        role: Role,
        label: Option<String>,
        offer: String,
        (publish, subscribe): (bool, bool),
    ) -> Result<Result<Answer, CoreError>, Stopped> {
        if !huddle_core::room::valid_room_name(&room) {
            return Ok(Err(CoreError::InvalidRoomName));
        }
        let decision = match self.shared.placement().place(&room, role) {
            Ok(d) => d,
            Err(reason) => return Ok(Err(CoreError::Refused(reason))),
        };
        let Some(config) = self.configs.get(decision.worker) else {
            return Err(Stopped);
        };
        let prepared = huddle_core::prepare(config, Instant::now(), role, label.as_deref(), &offer);
        let prepared = match prepared {
            Ok(mut p) => {
                p.restrict(publish, subscribe);
                p
            }
            Err(e) => {
                self.refused(&room, decision);
                return Ok(Err(e));
            }
        };
        let upstream = decision.link.map(|l| (l.id, l.origin));
        if let Some(link) = decision.link.filter(|_| decision.new_link) {
            // The edge learns where its feed comes from before the origin starts sending it.
            self.shared.send(
                link.edge,
                Command::RelayFrom {
                    room: room.clone(),
                    link: link.id,
                    origin: link.origin,
                },
            );
            self.shared.send(
                link.origin,
                Command::RelayTo {
                    room: room.clone(),
                    link: link.id,
                    edge: link.edge,
                },
            );
        }
        let answer = self
            .ask(decision.worker, |reply| Command::Admit {
                room: room.clone(),
                prepared: Box::new(prepared),
                upstream,
                reply,
            })
            .await;
        match &answer {
            Ok(Ok(a)) => self
                .shared
                .placement()
                .joined(a.participant, &room, decision.worker),
            _ => self.refused(&room, decision),
        }
        answer
    }

    /// A placed join did not happen: uncount it, and close a link nobody else needs.
    fn refused(&self, room: &str, decision: Decision) {
        let mut placement = self.shared.placement();
        placement.refused(room, decision.worker);
        if let Some(link) = decision.link
            && placement.edge_emptied(room, link.id)
        {
            drop(placement);
            self.shared.send(link.origin, Command::CloseRelay(link.id));
            self.shared.send(link.edge, Command::CloseRelay(link.id));
        }
    }

    /// A member's answer to a server offer.
    pub async fn answer(
        &self,
        id: ParticipantId,
        sdp: String,
    ) -> Result<Result<(), CoreError>, Stopped> {
        let worker = match self.worker_of(id) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        self.ask(worker, |r| Command::Answer(id, sdp, r)).await
    }

    pub async fn candidate(
        &self,
        id: ParticipantId,
        candidate: String,
    ) -> Result<Result<(), CoreError>, Stopped> {
        let worker = match self.worker_of(id) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        self.ask(worker, |r| Command::Candidate(id, candidate, r))
            .await
    }

    pub async fn patch(
        &self,
        id: ParticipantId,
        fragment: String,
    ) -> Result<Result<IceRestart, CoreError>, Stopped> {
        let worker = match self.worker_of(id) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        self.ask(worker, |r| Command::Patch(id, fragment, r)).await
    }

    pub async fn leave(&self, id: ParticipantId) -> Result<Result<(), CoreError>, Stopped> {
        let worker = match self.worker_of(id) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        self.ask(worker, |r| Command::Leave(id, r)).await
    }

    /// What subscriber `id` asked for `track` (tile size, pinned layer).
    pub async fn preference(
        &self,
        id: ParticipantId,
        track: TrackId,
        preference: Preference,
    ) -> Result<Result<bool, CoreError>, Stopped> {
        let worker = match self.worker_of(id) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        self.ask(worker, |r| Command::Preference(id, track, preference, r))
            .await
    }

    /// A member asks to publish another track (a screen share).
    pub async fn publish_track(
        &self,
        id: ParticipantId,
        kind: MediaKind,
    ) -> Result<Result<(), CoreError>, Stopped> {
        let worker = match self.worker_of(id) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        self.ask(worker, |r| Command::Publish(id, kind, r)).await
    }

    /// A member stops one of its tracks.
    pub async fn unpublish_track(
        &self,
        id: ParticipantId,
        track: TrackId,
    ) -> Result<Result<(), CoreError>, Stopped> {
        let worker = match self.worker_of(id) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        self.ask(worker, |r| Command::Unpublish(id, track, r)).await
    }

    /// The explained decisions of `room`'s video subscriptions, from every worker.
    pub async fn subscriptions(&self, room: &str) -> Result<Vec<SubscriptionReport>, Stopped> {
        let mut all = Vec::new();
        for w in 0..self.shared.workers.len() {
            all.extend(
                self.ask(w, |r| Command::Subscriptions(room.to_owned(), r))
                    .await?,
            );
        }
        Ok(all)
    }

    /// The connectivity diagnosis of participant `id`: asked of its worker while it is
    /// there, kept for a while after it left.
    pub async fn diagnosis(
        &self,
        id: ParticipantId,
    ) -> Result<Option<crate::diagnosis::Record>, Stopped> {
        let live = self.shared.placement().worker_of(id);
        if let Some(worker) = live
            && let Some(record) = self.ask(worker, |r| Command::Diagnosis(id, r)).await?
        {
            return Ok(Some(record));
        }
        Ok(self.shared.diagnoses.get(id))
    }

    /// Every worker's counters, asked for now and added up.
    pub async fn stats(&self) -> Result<SfuStats, Stopped> {
        let mut total = SfuStats::default();
        for w in 0..self.shared.workers.len() {
            let report: Report = self.ask(w, Command::Stats).await?;
            total = total + report.stats;
        }
        Ok(total)
    }

    /// The workers' latest reports (at most a second old), added up.
    pub fn report(&self) -> Report {
        self.shared.board.total()
    }

    /// Forwarded packets per worker, from the latest reports.
    pub fn forwarded_per_worker(&self) -> Vec<u64> {
        self.shared.board.forwarded_per_worker()
    }

    /// Starts a fresh residence-time measurement window on every worker.
    pub fn reset_residence(&self) {
        self.shared.board.reset_residence();
    }

    /// Relay links between workers.
    pub fn relay_links(&self) -> usize {
        self.shared.placement().links()
    }

    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Ends every session politely on every worker; returns once the goodbyes are sent.
    pub async fn drain(&self) {
        for w in 0..self.shared.workers.len() {
            let _ = self.ask(w, Command::Drain).await;
        }
    }

    /// Asks every worker to stop.
    pub fn stop(&self) {
        for w in 0..self.shared.workers.len() {
            self.shared.send(w, Command::Stop);
        }
    }
}
