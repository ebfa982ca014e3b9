//! One media worker: a thread with its own UDP socket and its own [`Sfu`], driven by a
//! single-threaded tokio runtime. Nothing on its packet path is shared with another thread;
//! it talks to the rest of the server through its command queue, and to other workers
//! through theirs (relay batches).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use huddle_core::{
    Answer, CoreError, Datagram, IceRestart, MediaKind, ParticipantId, Preference, Prepared, Relay,
    RelayLink, Sfu, SubscriptionReport, TrackId, Transport,
};
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::Shared;
use super::board::{Report, residence_histogram};
use super::events::on_event;
use crate::tcp::TcpMedia;
use crate::udp;

/// How often a worker writes its report to the board.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// What a worker is asked to do.
pub(crate) enum Command {
    /// A participant whose offer was accepted joins `room`. On an edge, `upstream` is the link
    /// that feeds the room (and the worker at its other end).
    Admit {
        room: String,
        prepared: Box<Prepared>,
        upstream: Option<(RelayLink, usize)>,
        reply: oneshot::Sender<Result<Answer, CoreError>>,
    },
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
    /// What a subscriber asked for a track (tile size, pinned layer).
    Preference(
        ParticipantId,
        TrackId,
        Preference,
        oneshot::Sender<Result<bool, CoreError>>,
    ),
    /// A member asks to publish another track, or to stop one of its own.
    Publish(
        ParticipantId,
        MediaKind,
        oneshot::Sender<Result<(), CoreError>>,
    ),
    Unpublish(
        ParticipantId,
        TrackId,
        oneshot::Sender<Result<(), CoreError>>,
    ),
    /// The explained decisions of a room's video subscriptions here.
    Subscriptions(String, oneshot::Sender<Vec<SubscriptionReport>>),
    Stats(oneshot::Sender<Report>),
    /// A participant's connectivity diagnosis so far, if it is here.
    Diagnosis(
        ParticipantId,
        oneshot::Sender<Option<crate::diagnosis::Record>>,
    ),
    /// Origin: relay `room`'s feed over `link` to worker `edge`.
    RelayTo {
        room: String,
        link: RelayLink,
        edge: usize,
    },
    /// Edge: `room` is fed over `link` from worker `origin`.
    RelayFrom {
        room: String,
        link: RelayLink,
        origin: usize,
    },
    /// Edge: `room` is fed over `link` by a pull from another node; what flows back
    /// (keyframe requests, "nobody watches") goes to `pull`.
    PullFrom {
        room: String,
        link: RelayLink,
        pull: mpsc::Sender<Relay>,
    },
    /// Relay messages from another worker (or a pull), in order.
    Relay(Vec<(RelayLink, Relay)>),
    CloseRelay(RelayLink),
    /// Close every session politely; reply once the goodbyes are sent.
    Drain(oneshot::Sender<()>),
    Stop,
}

/// The other end of a link this worker is on, and the room it serves.
#[derive(Debug)]
struct LinkEnd {
    peer: Peer,
    room: String,
}

/// Who is at the other end of a link.
#[derive(Debug)]
enum Peer {
    Worker(usize),
    /// A pull from another node, on its own task.
    Pull(mpsc::Sender<Relay>),
}

pub(crate) struct Worker {
    pub index: usize,
    pub sfu: Sfu,
    /// The addresses in this worker's host candidates.
    pub advertised: Vec<SocketAddr>,
    pub commands: mpsc::Receiver<Command>,
    pub shared: Shared,
}

impl Worker {
    /// Runs until told to stop (or the socket fails). `tcp`: the ICE-TCP listener, if any.
    pub(crate) async fn run(self, socket: std::net::UdpSocket, tcp: Option<std::net::TcpListener>) {
        let Worker {
            index,
            mut sfu,
            advertised,
            mut commands,
            shared,
        } = self;
        let Some(destinations) = super::destination::Destinations::new(&advertised) else {
            warn!(worker = index, "media socket: no advertised address");
            return;
        };
        let mut socket = match udp::Socket::new(socket) {
            Ok(s) => s,
            Err(e) => {
                warn!(worker = index, "media socket: {e}");
                return;
            }
        };
        let mut tcp = match tcp.map(TcpMedia::new).transpose() {
            Ok(t) => t,
            Err(e) => {
                warn!(worker = index, "media TCP listener: {e}");
                return;
            }
        };
        let mut frames: Vec<(std::net::SocketAddr, bytes::BytesMut)> = Vec::new();
        let mut links: FxHashMap<RelayLink, LinkEnd> = FxHashMap::default();
        let mut outgoing = Vec::new();
        let mut relays: Vec<Vec<(RelayLink, Relay)>> = vec![Vec::new(); shared.workers.len()];
        let mut report = Report::default();
        let mut reset_seen = shared.board.reset_generation();
        let mut next_report = Instant::now();
        let mut told = super::events::Told::default();
        let mut drained: Option<oneshot::Sender<()>> = None;
        let timer_lag = metrics::histogram!(crate::telemetry::TIMER_LAG);
        let estimates = metrics::histogram!(crate::telemetry::ESTIMATES);
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
            let mut received = None;
            tokio::select! {
                r = socket.recv() => match r {
                    Ok(_) => {
                        let now = Instant::now();
                        received = Some(now);
                        let datagrams = socket
                            .datagrams()
                            .map(|(source, contents)| Datagram {
                                transport: Transport::Udp,
                                source,
                                destination: destinations.for_source(source),
                                contents,
                            });
                        sfu.handle_datagrams(now, datagrams);
                    }
                    // ICMP errors surface here on some systems: not fatal.
                    Err(e) => debug!("udp recv: {e}"),
                },
                first = tcp_recv(&mut tcp) => {
                    let now = Instant::now();
                    received = Some(now);
                    frames.push(first);
                    if let Some(t) = &mut tcp {
                        frames.extend(std::iter::from_fn(|| t.try_recv()).take(udp::BATCH));
                    }
                    let datagrams = frames.iter().map(|(source, contents)| Datagram {
                        transport: Transport::Tcp,
                        source: *source,
                        destination: destinations.for_source(*source),
                        contents,
                    });
                    sfu.handle_datagrams(now, datagrams);
                    frames.clear();
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Stop) | None => break,
                    Some(Command::Drain(reply)) => {
                        sfu.close_all(Instant::now());
                        drained = Some(reply);
                    }
                    Some(cmd) => command(&mut sfu, &shared, index, &mut links, &mut report, cmd),
                },
                () = sleep => {
                    let now = Instant::now();
                    if let Some(due) = wake {
                        timer_lag.record(now.saturating_duration_since(due).as_secs_f64());
                    }
                    sfu.handle_timeout(now);
                }
            }
            // Under constant traffic the timer branch may lose every race: run due timers anyway.
            let now = Instant::now();
            if sfu.poll_timeout().is_some_and(|t| t <= now) {
                sfu.handle_timeout(now);
            }
            while let Some(e) = sfu.poll_event() {
                on_event(&mut sfu, &shared, e);
            }
            route_relays(
                &mut sfu,
                &shared,
                index,
                &mut links,
                &mut relays,
                &mut report,
            );
            outgoing.extend(std::iter::from_fn(|| sfu.poll_transmit()));
            // ICE-TCP transmits go on their connections (none without a listener: the core
            // then has no TCP candidate; any that came would be dropped, never sent as UDP).
            for t in outgoing.extract_if(.., |t| t.transport == Transport::Tcp) {
                if let Some(tcp) = &mut tcp {
                    tcp.send(t);
                }
            }
            let residence = &mut report.residence;
            socket
                .send(&mut outgoing, |n| {
                    if let Some(at) = received {
                        let us = at.elapsed().as_micros();
                        let _ = residence.record_n(u64::try_from(us).unwrap_or(u64::MAX), n as u64);
                    }
                })
                .await;
            if let Some(reply) = drained.take() {
                // The goodbyes just left with the rest.
                let _ = reply.send(());
            }
            if now >= next_report {
                next_report = now + REPORT_INTERVAL;
                if let Some(tcp) = &mut tcp {
                    tcp.sweep(now);
                }
                let generation = shared.board.reset_generation();
                if generation != reset_seen {
                    reset_seen = generation;
                    report.residence = residence_histogram();
                }
                report.stats = sfu.stats();
                shared.board.write(index, &report);
                for p in sfu.rooms().flat_map(|r| r.participants()) {
                    if let Some(bits) = p.estimate {
                        estimates.record(bits as f64);
                    }
                }
                super::events::tell_quality(&sfu, &shared, now, &mut told);
            }
        }
        info!(worker = index, "media worker stopped");
    }
}

/// The next frame from an ICE-TCP connection; never, without a listener.
async fn tcp_recv(tcp: &mut Option<TcpMedia>) -> (std::net::SocketAddr, bytes::BytesMut) {
    match tcp {
        Some(t) => t.recv().await,
        None => std::future::pending().await,
    }
}

fn command(
    sfu: &mut Sfu,
    shared: &Shared,
    me: usize,
    links: &mut FxHashMap<RelayLink, LinkEnd>,
    report: &mut Report,
    cmd: Command,
) {
    let now = Instant::now();
    // A requester that went away (client hung up) is not an error.
    match cmd {
        Command::Admit {
            room,
            prepared,
            upstream,
            reply,
        } => {
            if let Some((link, origin)) = upstream {
                feed_from(sfu, shared, me, links, &room, link, origin);
            }
            let _ = reply.send(sfu.admit(now, &room, *prepared));
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
        Command::Preference(id, track, pref, reply) => {
            let _ = reply.send(sfu.set_preference(now, id, track, pref));
        }
        Command::Publish(id, kind, reply) => {
            let _ = reply.send(sfu.request_publish(now, id, kind));
        }
        Command::Unpublish(id, track, reply) => {
            let _ = reply.send(sfu.request_unpublish(now, id, track));
        }
        Command::Subscriptions(room, reply) => {
            let _ = reply.send(sfu.subscriptions(now, &room));
        }
        Command::Diagnosis(id, reply) => {
            let _ = reply.send(super::events::record_of(sfu, id));
        }
        Command::Stats(reply) => {
            report.stats = sfu.stats();
            let _ = reply.send(report.clone());
        }
        Command::RelayTo { room, link, edge } => {
            links.insert(
                link,
                LinkEnd {
                    peer: Peer::Worker(edge),
                    room: room.clone(),
                },
            );
            if let Err(e) = sfu.relay_to(now, &room, link) {
                warn!(%link, "cannot relay {room}: {e}");
            }
        }
        Command::RelayFrom { room, link, origin } => {
            feed_from(sfu, shared, me, links, &room, link, origin);
        }
        Command::PullFrom { room, link, pull } => {
            if let Err(e) = sfu.relay_from(&room, link) {
                warn!(%link, "cannot be fed {room}: {e}");
                return;
            }
            links.insert(
                link,
                LinkEnd {
                    peer: Peer::Pull(pull),
                    room,
                },
            );
        }
        Command::Relay(batch) => {
            for (link, msg) in batch {
                sfu.relay_in(now, link, msg);
            }
        }
        Command::CloseRelay(link) => {
            links.remove(&link);
            sfu.close_relay(now, link);
        }
        Command::Drain(_) | Command::Stop => {}
    }
}

/// Makes `room` here an edge fed over `link` from `origin`. If this end had let the link go
/// (its room emptied) while a viewer was on its way, the origin is asked to start over.
fn feed_from(
    sfu: &mut Sfu,
    shared: &Shared,
    me: usize,
    links: &mut FxHashMap<RelayLink, LinkEnd>,
    room: &str,
    link: RelayLink,
    origin: usize,
) {
    let known = links.contains_key(&link);
    if !known {
        links.insert(
            link,
            LinkEnd {
                peer: Peer::Worker(origin),
                room: room.to_owned(),
            },
        );
    }
    let fed = sfu
        .room(room)
        .is_some_and(|r| r.upstream_link() == Some(link));
    if fed {
        return;
    }
    if let Err(e) = sfu.relay_from(room, link) {
        warn!(%link, "cannot be fed {room}: {e}");
        return;
    }
    if known {
        shared.send(
            origin,
            Command::RelayTo {
                room: room.to_owned(),
                link,
                edge: me,
            },
        );
    }
}

/// Carries what the core wants relayed to the workers at the other ends, one batch per
/// worker per loop turn. A full queue drops the batch (counted), never blocks this loop.
fn route_relays(
    sfu: &mut Sfu,
    shared: &Shared,
    me: usize,
    links: &mut FxHashMap<RelayLink, LinkEnd>,
    batches: &mut [Vec<(RelayLink, Relay)>],
    report: &mut Report,
) {
    while let Some((link, msg)) = sfu.poll_relay() {
        if matches!(msg, Relay::Unsubscribed) {
            edge_emptied(sfu, shared, me, links, link);
            continue;
        }
        let Some(end) = links.get(&link) else {
            continue;
        };
        match &end.peer {
            Peer::Worker(w) => {
                if let Some(batch) = batches.get_mut(*w) {
                    batch.push((link, msg));
                }
            }
            // Keyframe requests for the other node; a full queue loses one (the next
            // request asks again).
            Peer::Pull(pull) => {
                if pull.try_send(msg).is_err() {
                    report.relay_dropped += 1;
                }
            }
        }
    }
    for (worker, batch) in batches.iter_mut().enumerate() {
        if batch.is_empty() {
            continue;
        }
        let batch = std::mem::take(batch);
        let n = batch.len() as u64;
        if !shared.try_send(worker, Command::Relay(batch)) {
            report.relay_dropped += n;
            debug!(worker, "relay queue full: {n} messages dropped");
        }
    }
}

/// The last viewer of an edge room here left. Unless a viewer is on its way in, the link
/// closes at both ends; otherwise the room is fed again at once.
fn edge_emptied(
    sfu: &mut Sfu,
    shared: &Shared,
    me: usize,
    links: &mut FxHashMap<RelayLink, LinkEnd>,
    link: RelayLink,
) {
    let Some(end) = links.get(&link) else {
        return;
    };
    let origin = match &end.peer {
        Peer::Worker(w) => *w,
        Peer::Pull(pull) => {
            // Nobody here watches the pulled room any more: the pull ends its session.
            let _ = pull.try_send(Relay::Unsubscribed);
            links.remove(&link);
            sfu.close_relay(Instant::now(), link);
            return;
        }
    };
    let room = end.room.clone();
    if shared.placement().edge_emptied(&room, link) {
        links.remove(&link);
        shared.send(origin, Command::CloseRelay(link));
    } else {
        links.remove(&link);
        feed_from(sfu, shared, me, links, &room, link, origin);
        shared.send(
            origin,
            Command::RelayTo {
                room,
                link,
                edge: me,
            },
        );
    }
}
