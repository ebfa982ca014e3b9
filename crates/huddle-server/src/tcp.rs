//! ICE over TCP (RFC 6544): a media worker's passive TCP candidate. The worker listens on TCP
//! at its UDP socket's address and port; each accepted connection carries datagrams framed as
//! RFC 4571 says (a 16-bit big-endian length before each), which the worker hands to its core
//! as [`Transport::Tcp`](huddle_core::Transport) datagrams, and the core's TCP transmits go
//! back on the connection whose peer they name.
//!
//! Each connection has a reader task and a writer task on the worker's runtime, so that a
//! slow or hostile peer never stalls the packet loop: frames reach the loop through a bounded
//! queue, and a transmit for a connection whose send queue is full is dropped (like a UDP
//! datagram the kernel had no room for). Everything is bounded: connections per worker, frame
//! size, the time to a STUN request the core answers (its first frame must look like STUN, and
//! a connection the core has sent nothing on after [`ANSWERED_WITHIN`] is closed: only a check
//! with the right ICE credentials is answered), and silence afterwards.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use huddle_core::Transmit;
use rustc_hash::FxHashMap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
use tracing::debug;

use crate::udp::{MAX_DATAGRAM, canonical};

/// Connections one worker keeps at once; more are refused (closed at once).
pub const MAX_CONNECTIONS: usize = 256;
/// A connection on which the core has sent nothing (no answer to a valid STUN check) by
/// then is closed; so is one whose first frame has not arrived by then.
pub const ANSWERED_WITHIN: Duration = Duration::from_secs(5);
/// A connection from which nothing arrives for this long is closed (ICE consent checks
/// arrive every few seconds on a live one).
pub const IDLE: Duration = Duration::from_secs(30);
/// Frames queued towards one peer; beyond it transmits to that peer are dropped.
const SEND_QUEUE: usize = 1024;
/// Frames queued from all connections towards the packet loop (readers wait when full).
const RECV_QUEUE: usize = 1024;

/// Binds the TCP listener of a media worker: the same address and port as its UDP socket.
pub fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    // A restart must not wait for the last run's connections in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// RFC 4571 framing: a 2-byte length, frames up to what it can express. Frames longer than
/// any WebRTC datagram are dropped by the reader, not here, so the stream stays in step.
fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(2)
        .max_frame_length(usize::from(u16::MAX))
        .new_codec()
}

/// What a connection's reader tells the packet loop.
#[derive(Debug)]
enum FromPeer {
    Frame(SocketAddr, BytesMut),
    Closed(SocketAddr),
}

/// What happened to connections, for the worker's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub accepted: u64,
    pub refused: u64,
    pub frames_in: u64,
    pub dropped_out: u64,
    /// Closed for want of a valid STUN check.
    pub unanswered: u64,
}

/// One open connection, as the packet loop holds it. Dropping it closes the connection: the
/// writer's queue ends, and the reader is told through `_open`.
#[derive(Debug)]
struct Peer {
    queue: mpsc::Sender<Bytes>,
    _open: oneshot::Sender<()>,
    opened: Instant,
    /// The core sent something on it (it answered a valid STUN check).
    answered: bool,
}

/// A worker's TCP listener and its connections, by (canonical) peer address.
#[derive(Debug)]
pub struct TcpMedia {
    listener: TcpListener,
    peers: FxHashMap<SocketAddr, Peer>,
    from_peers: mpsc::Receiver<FromPeer>,
    to_loop: mpsc::Sender<FromPeer>,
    pub counts: Counts,
}

impl TcpMedia {
    /// Takes a listener from [`bind`] onto the current tokio runtime.
    pub fn new(listener: std::net::TcpListener) -> io::Result<Self> {
        let (to_loop, from_peers) = mpsc::channel(RECV_QUEUE);
        Ok(TcpMedia {
            listener: TcpListener::from_std(listener)?,
            peers: FxHashMap::default(),
            from_peers,
            to_loop,
            counts: Counts::default(),
        })
    }

    pub fn connections(&self) -> usize {
        self.peers.len()
    }

    /// Waits for the next frame from any connection, accepting new connections and
    /// forgetting closed ones meanwhile. Cancel-safe (used in `select!`).
    pub async fn recv(&mut self) -> (SocketAddr, BytesMut) {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.admit(stream, canonical(peer)),
                    // E.g. the peer reset before we accepted, or out of descriptors.
                    Err(e) => debug!("tcp accept: {e}"),
                },
                Some(msg) = self.from_peers.recv() => match msg {
                    FromPeer::Frame(peer, frame) => {
                        self.counts.frames_in += 1;
                        return (peer, frame);
                    }
                    FromPeer::Closed(peer) => {
                        self.peers.remove(&peer);
                    }
                },
            }
        }
    }

    /// A frame already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<(SocketAddr, BytesMut)> {
        loop {
            match self.from_peers.try_recv().ok()? {
                FromPeer::Frame(peer, frame) => {
                    self.counts.frames_in += 1;
                    return Some((peer, frame));
                }
                FromPeer::Closed(peer) => {
                    self.peers.remove(&peer);
                }
            }
        }
    }

    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.peers.len() >= MAX_CONNECTIONS || self.peers.contains_key(&peer) {
            self.counts.refused += 1;
            debug!(%peer, "tcp connection refused: {} open", self.peers.len());
            return; // dropping the stream closes it
        }
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, "TCP_NODELAY: {e}");
        }
        self.counts.accepted += 1;
        let (read, write) = stream.into_split();
        let (queue, rx) = mpsc::channel(SEND_QUEUE);
        let (open, closed) = oneshot::channel();
        self.peers.insert(
            peer,
            Peer {
                queue,
                _open: open,
                opened: Instant::now(),
                answered: false,
            },
        );
        tokio::spawn(read_frames(
            FramedRead::new(read, codec()),
            peer,
            self.to_loop.clone(),
            closed,
        ));
        tokio::spawn(write_frames(FramedWrite::new(write, codec()), peer, rx));
    }

    /// Sends a TCP transmit on the connection to its destination; dropped (and counted) when
    /// there is none or its queue is full.
    pub fn send(&mut self, t: Transmit) {
        let Some(peer) = self.peers.get_mut(&t.destination) else {
            // E.g. a check towards an active candidate's port 9: only the peer connects.
            self.counts.dropped_out += 1;
            return;
        };
        peer.answered = true;
        match peer.queue.try_send(Bytes::from(t.contents)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.counts.dropped_out += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counts.dropped_out += 1;
                self.peers.remove(&t.destination);
            }
        }
    }

    /// Closes the connections the core has not answered within [`ANSWERED_WITHIN`].
    pub fn sweep(&mut self, now: Instant) {
        let before = self.peers.len();
        self.peers.retain(|addr, p| {
            let keep = p.answered || now.saturating_duration_since(p.opened) < ANSWERED_WITHIN;
            if !keep {
                debug!(peer = %addr, "tcp connection closed: no valid STUN check in {ANSWERED_WITHIN:?}");
            }
            keep
        });
        self.counts.unanswered += (before - self.peers.len()) as u64;
    }
}

/// RFC 7983: a first byte of 0..=3 is STUN; a request has a 20-byte header.
fn looks_like_stun(frame: &[u8]) -> bool {
    frame.len() >= 20 && frame.first().is_some_and(|b| *b <= 3)
}

/// Reads frames until the peer closes, misbehaves or goes quiet; then tells the loop.
async fn read_frames(
    mut frames: FramedRead<tokio::net::tcp::OwnedReadHalf, LengthDelimitedCodec>,
    peer: SocketAddr,
    to_loop: mpsc::Sender<FromPeer>,
    mut closed: oneshot::Receiver<()>,
) {
    let mut first = true;
    loop {
        let wait = if first { ANSWERED_WITHIN } else { IDLE };
        let next = tokio::select! {
            // The loop let the connection go: no Closed message needed.
            _ = &mut closed => return,
            next = tokio::time::timeout(wait, frames.next()) => next,
        };
        let frame = match next {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => {
                debug!(%peer, "tcp connection closed: {e}");
                break;
            }
            Ok(None) => break,
            Err(_) => {
                debug!(%peer, "tcp connection closed: nothing valid for {wait:?}");
                break;
            }
        };
        if frame.len() > MAX_DATAGRAM {
            debug!(%peer, len = frame.len(), "tcp frame too long for a datagram: dropped");
            continue;
        }
        if first {
            if !looks_like_stun(&frame) {
                debug!(%peer, "tcp connection closed: its first frame is not STUN");
                break;
            }
            first = false;
        }
        if to_loop.send(FromPeer::Frame(peer, frame)).await.is_err() {
            return; // the worker stopped
        }
    }
    let _ = to_loop.send(FromPeer::Closed(peer)).await;
}

/// Writes queued frames, flushing when the queue runs dry; ends when the loop forgets the
/// connection (dropping the write half closes it) or the peer is gone.
async fn write_frames(
    mut sink: FramedWrite<tokio::net::tcp::OwnedWriteHalf, LengthDelimitedCodec>,
    peer: SocketAddr,
    mut queue: mpsc::Receiver<Bytes>,
) {
    while let Some(frame) = queue.recv().await {
        let mut result = sink.feed(frame).await;
        while result.is_ok()
            && let Ok(frame) = queue.try_recv()
        {
            result = sink.feed(frame).await;
        }
        if let Err(e) = result.and(SinkExt::<Bytes>::flush(&mut sink).await) {
            debug!(%peer, "tcp send: {e}");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_is_told_by_its_first_byte_and_header() {
        let mut request = [0u8; 20];
        request[1] = 1;
        assert!(looks_like_stun(&request));
        assert!(!looks_like_stun(&request[..19]));
        assert!(!looks_like_stun(&[0x16; 40]), "DTLS");
        assert!(!looks_like_stun(&[]));
    }
}
