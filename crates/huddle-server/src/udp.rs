//! The media sockets: UDP with large kernel buffers, read and written in batches
//! (`recvmmsg`/`sendmmsg` on Linux, one datagram per call elsewhere), with every buffer and
//! message header allocated once per socket.
//!
//! A socket bound to `[::]` is dual-stack: IPv4 peers arrive as v4-mapped addresses
//! (`::ffff:a.b.c.d`). Sources are handed on in canonical form (plain IPv4), and an IPv4
//! destination is mapped back to v4-mapped when sent on an IPv6 socket, so that the core and
//! its ICE candidates only ever see one form of each address.

use std::io;
use std::net::{IpAddr, SocketAddr};

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

/// Binds a media socket with large send and receive buffers (not yet tied to a runtime, so
/// that a worker thread can take it to its own).
pub fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
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
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // [::] serves IPv4 peers too, whatever net.ipv6.bindv6only says.
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A media socket and its batch buffers.
#[derive(Debug)]
pub struct Socket {
    socket: UdpSocket,
    bufs: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    meta: Vec<(usize, SocketAddr)>,
    sys: sys::Scratch,
    /// An IPv6 socket: IPv4 destinations are sent to as v4-mapped.
    v6: bool,
}

/// A source address as the core sees it: a v4-mapped IPv6 address as plain IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// A destination as a socket of family `v6` takes it: IPv4 as v4-mapped on an IPv6 socket.
pub fn for_socket(addr: SocketAddr, v6: bool) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) if v6 => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        _ => addr,
    }
}

impl Socket {
    /// Takes a socket from [`bind`] onto the current tokio runtime.
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        let v6 = socket.local_addr()?.is_ipv6();
        Ok(Socket {
            v6,
            socket: UdpSocket::from_std(socket)?,
            bufs: Box::new([[0u8; MAX_DATAGRAM]; BATCH]),
            meta: Vec::with_capacity(BATCH),
            sys: sys::Scratch::default(),
        })
    }

    /// The datagrams of the last receive: (source in [`canonical`] form, contents).
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.meta
            .iter()
            .zip(self.bufs.iter())
            .map(|((len, from), buf)| (canonical(*from), buf.get(..*len).unwrap_or_default()))
    }

    /// Waits for at least one datagram and reads up to [`BATCH`] of them.
    pub async fn recv(&mut self) -> io::Result<usize> {
        loop {
            self.socket.readable().await?;
            let Socket {
                socket,
                bufs,
                meta,
                sys,
                ..
            } = self;
            match socket.try_io(Interest::READABLE, || sys.recv(socket, bufs, meta)) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends every transmit, batching system calls, and clears the list. A datagram the
    /// kernel refuses (unreachable destination…) is logged and skipped; the rest still go.
    /// `sent(n)` is told, before each system call, how many datagrams it carries.
    pub async fn send(&mut self, transmits: &mut Vec<Transmit>, mut sent: impl FnMut(usize)) {
        let mut done = 0;
        while done < transmits.len() {
            let pending = transmits.get(done..).unwrap_or_default();
            sent(pending.len().min(BATCH));
            let Socket {
                socket, sys, v6, ..
            } = self;
            match socket.try_io(Interest::WRITABLE, || sys.send(socket, pending, *v6)) {
                Ok(n) => done += n.max(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.socket.writable().await {
                        debug!("udp socket not writable: {e}");
                        break;
                    }
                }
                Err(e) => {
                    // The first datagram of `pending` failed: skip it.
                    if let Some(t) = pending.first() {
                        debug!(to = %t.destination, "udp send: {e}");
                    }
                    done += 1;
                }
            }
        }
        transmits.clear();
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use arrayvec::ArrayVec;
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
    use tokio::net::UdpSocket;

    use super::{BATCH, MAX_DATAGRAM};
    use huddle_core::Transmit;

    /// Message headers for both directions, allocated once.
    pub struct Scratch {
        recv: MultiHeaders<SockaddrStorage>,
        send: MultiHeaders<SockaddrStorage>,
    }

    impl std::fmt::Debug for Scratch {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Scratch")
        }
    }

    impl Default for Scratch {
        fn default() -> Self {
            Scratch {
                recv: MultiHeaders::preallocate(BATCH, None),
                send: MultiHeaders::preallocate(BATCH, None),
            }
        }
    }

    fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = addr.as_sockaddr_in() {
            return Some(SocketAddr::from(*v4));
        }
        addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
    }

    impl Scratch {
        pub fn recv(
            &mut self,
            socket: &UdpSocket,
            bufs: &mut [[u8; MAX_DATAGRAM]; BATCH],
            meta: &mut Vec<(usize, SocketAddr)>,
        ) -> io::Result<usize> {
            let mut iovs = bufs.each_mut().map(|b| [IoSliceMut::new(b.as_mut_slice())]);
            let results = recvmmsg(
                socket.as_raw_fd(),
                &mut self.recv,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(io::Error::from)?;
            meta.clear();
            for r in results {
                // A datagram without a usable source address cannot be answered: keep its
                // slot with an unspecified source so buffers stay aligned; the core drops it.
                let from = r
                    .address
                    .as_ref()
                    .and_then(to_std)
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                meta.push((r.bytes, from));
            }
            Ok(meta.len())
        }

        pub fn send(
            &mut self,
            socket: &UdpSocket,
            transmits: &[Transmit],
            v6: bool,
        ) -> io::Result<usize> {
            let chunk = transmits
                .get(..transmits.len().min(BATCH))
                .unwrap_or_default();
            let iovs: ArrayVec<[IoSlice<'_>; 1], BATCH> =
                chunk.iter().map(|t| [IoSlice::new(&t.contents)]).collect();
            let addrs: ArrayVec<Option<SockaddrStorage>, BATCH> = chunk
                .iter()
                .map(|t| Some(SockaddrStorage::from(super::for_socket(t.destination, v6))))
                .collect();
            let results = sendmmsg(
                socket.as_raw_fd(),
                &mut self.send,
                &iovs,
                &addrs,
                [],
                MsgFlags::MSG_DONTWAIT,
            )
            .map_err(io::Error::from)?;
            Ok(results.count())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

    use super::MAX_DATAGRAM;
    use huddle_core::Transmit;

    #[derive(Debug, Default)]
    pub struct Scratch;

    impl Scratch {
        pub fn recv(
            &mut self,
            socket: &UdpSocket,
            bufs: &mut [[u8; MAX_DATAGRAM]; super::BATCH],
            meta: &mut Vec<(usize, SocketAddr)>,
        ) -> io::Result<usize> {
            meta.clear();
            let Some(buf) = bufs.first_mut() else {
                return Ok(0);
            };
            let (n, from) = socket.try_recv_from(buf)?;
            meta.push((n, from));
            Ok(1)
        }

        pub fn send(
            &mut self,
            socket: &UdpSocket,
            transmits: &[Transmit],
            v6: bool,
        ) -> io::Result<usize> {
            match transmits.first() {
                Some(t) => socket
                    .try_send_to(&t.contents, super::for_socket(t.destination, v6))
                    .map(|_| 1),
                None => Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_mapped_sources_become_ipv4_and_go_back_mapped_on_ipv6_sockets() {
        assert_eq!(canonical(a("[::ffff:127.0.0.1]:5000")), a("127.0.0.1:5000"));
        assert_eq!(canonical(a("[::1]:5000")), a("[::1]:5000"));
        assert_eq!(canonical(a("127.0.0.1:5000")), a("127.0.0.1:5000"));
        assert_eq!(
            for_socket(a("127.0.0.1:5000"), true),
            a("[::ffff:127.0.0.1]:5000")
        );
        assert_eq!(for_socket(a("127.0.0.1:5000"), false), a("127.0.0.1:5000"));
        assert_eq!(for_socket(a("[::1]:5000"), true), a("[::1]:5000"));
    }
}
