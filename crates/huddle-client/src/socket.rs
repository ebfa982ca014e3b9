//! The drive loop's UDP socket: registered with tokio and read on every wake-up, or — a
//! lean viewer once media flows — taken out of tokio and read in batches on a tick.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

use crate::batch_recv::{self, Buffers, Datagram};

#[derive(Debug)]
pub(crate) enum PeerSocket {
    /// Woken by tokio when datagrams arrive.
    Woken(UdpSocket),
    /// Non-blocking, not registered with tokio: read with [`PeerSocket::recv_batch`].
    Polled(std::net::UdpSocket),
    /// Only while [`PeerSocket::make_polled`] runs, and after it failed.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "socket closed")
}

impl PeerSocket {
    pub fn is_polled(&self) -> bool {
        matches!(self, PeerSocket::Polled(_))
    }

    /// Sends one datagram (polled: without waiting; a full send buffer is an error).
    pub async fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        match self {
            PeerSocket::Woken(s) => s.send_to(buf, to).await,
            PeerSocket::Polled(s) => s.send_to(buf, to),
            PeerSocket::Closed => Err(closed()),
        }
    }

    /// Waits for a datagram; never completes on a polled socket.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            PeerSocket::Woken(s) => s.recv_from(buf).await,
            PeerSocket::Polled(_) | PeerSocket::Closed => std::future::pending().await,
        }
    }

    /// A datagram already queued (woken socket only).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            PeerSocket::Woken(s) => s.try_recv_from(buf),
            PeerSocket::Polled(_) | PeerSocket::Closed => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Up to a batch of queued datagrams (polled socket only; a woken one returns 0).
    pub fn recv_batch(&self, bufs: &mut Buffers, out: &mut Vec<Datagram>) -> io::Result<usize> {
        match self {
            PeerSocket::Woken(_) | PeerSocket::Closed => {
                out.clear();
                Ok(0)
            }
            PeerSocket::Polled(s) => batch_recv::recv_batch(s, bufs, out),
        }
    }

    /// Deregisters a woken socket from tokio and prepares it for batched reads (on failure
    /// the socket is closed).
    pub fn make_polled(&mut self) -> io::Result<()> {
        match std::mem::replace(self, PeerSocket::Closed) {
            PeerSocket::Woken(s) => {
                let s = s.into_std()?;
                s.set_nonblocking(true)?;
                batch_recv::prepare(&s)?;
                *self = PeerSocket::Polled(s);
                Ok(())
            }
            other => {
                *self = other;
                Ok(())
            }
        }
    }
}
