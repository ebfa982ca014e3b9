//! The media socket: one UDP socket with large kernel buffers, read and written in batches
//! (`recvmmsg`/`sendmmsg` on Linux, one datagram per call elsewhere).

use std::io;
use std::net::SocketAddr;

use huddle_core::Transmit;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tracing::debug;

/// Datagrams per batched system call.
pub const BATCH: usize = 32;
/// Largest datagram read; anything bigger is not WebRTC and is cut (then dropped by the core).
pub const MAX_DATAGRAM: usize = 2048;
/// Kernel buffer asked for in each direction: absorbs keyframe bursts to many subscribers.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// Binds the media socket with large send and receive buffers.
pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // The kernel caps these at net.core.{r,w}mem_max; less than asked is fine.
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER) {
        debug!("SO_RCVBUF: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER) {
        debug!("SO_SNDBUF: {e}");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Reusable receive buffers for one batch.
#[derive(Debug)]
pub struct RecvBatch {
    bufs: Vec<[u8; MAX_DATAGRAM]>,
    meta: Vec<(usize, SocketAddr)>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; BATCH],
            meta: Vec::with_capacity(BATCH),
        }
    }
}

impl RecvBatch {
    /// The datagrams of the last receive: (source, contents).
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.meta
            .iter()
            .zip(&self.bufs)
            .map(|((len, from), buf)| (*from, buf.get(..*len).unwrap_or_default()))
    }
}

/// Waits for at least one datagram and reads up to [`BATCH`] of them.
pub async fn recv(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    loop {
        socket.readable().await?;
        match socket.try_io(Interest::READABLE, || sys::recv(socket, batch)) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Sends every transmit, batching system calls, and clears the list. A datagram the kernel
/// refuses (unreachable destination…) is logged and skipped; the rest still go.
pub async fn send(socket: &UdpSocket, transmits: &mut Vec<Transmit>) {
    let mut sent = 0;
    while sent < transmits.len() {
        let pending = transmits.get(sent..).unwrap_or_default();
        match socket.try_io(Interest::WRITABLE, || sys::send(socket, pending)) {
            Ok(n) => sent += n.max(1),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = socket.writable().await {
                    debug!("udp socket not writable: {e}");
                    break;
                }
            }
            Err(e) => {
                // The first datagram of `pending` failed: skip it.
                if let Some(t) = pending.first() {
                    debug!(to = %t.destination, "udp send: {e}");
                }
                sent += 1;
            }
        }
    }
    transmits.clear();
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
    use tokio::net::UdpSocket;

    use super::{BATCH, RecvBatch};
    use huddle_core::Transmit;

    fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = addr.as_sockaddr_in() {
            return Some(SocketAddr::from(*v4));
        }
        addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
    }

    pub fn recv(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> = batch
            .bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(b.as_mut_slice())])
            .collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        batch.meta.clear();
        for r in results {
            // A datagram without a usable source address cannot be answered: keep its slot
            // with an unspecified source so buffers stay aligned; the core drops it.
            let from = r
                .address
                .as_ref()
                .and_then(to_std)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
            batch.meta.push((r.bytes, from));
        }
        Ok(batch.meta.len())
    }

    pub fn send(socket: &UdpSocket, transmits: &[Transmit]) -> io::Result<usize> {
        let chunk = transmits
            .get(..transmits.len().min(BATCH))
            .unwrap_or_default();
        let iovs: Vec<[IoSlice<'_>; 1]> =
            chunk.iter().map(|t| [IoSlice::new(&t.contents)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = chunk
            .iter()
            .map(|t| Some(SockaddrStorage::from(t.destination)))
            .collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
        let results = sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            &iovs,
            &addrs,
            [],
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(results.count())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;

    use tokio::net::UdpSocket;

    use super::RecvBatch;
    use huddle_core::Transmit;

    pub fn recv(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.meta.clear();
        let Some(buf) = batch.bufs.first_mut() else {
            return Ok(0);
        };
        let (n, from) = socket.try_recv_from(buf)?;
        batch.meta.push((n, from));
        Ok(1)
    }

    pub fn send(socket: &UdpSocket, transmits: &[Transmit]) -> io::Result<usize> {
        match transmits.first() {
            Some(t) => socket.try_send_to(&t.contents, t.destination).map(|_| 1),
            None => Ok(0),
        }
    }
}
