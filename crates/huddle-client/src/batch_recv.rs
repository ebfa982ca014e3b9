//! Batched, non-blocking receive (`recvmmsg`) with the kernel's receive timestamps
//! (`SO_TIMESTAMPNS`), for lean viewers that read their socket on a tick instead of on
//! every wake-up.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrLike, SockaddrStorage, recvmmsg,
    setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;

/// Datagrams per `recvmmsg` call.
pub(crate) const BATCH: usize = 8;
/// Largest datagram kept (bigger ones are truncated and dropped).
pub(crate) const DATAGRAM_MAX: usize = 2048;
/// Receive buffer asked for: a tick's worth of packets, and a replayed GOP, must fit.
const RCVBUF_BYTES: usize = 1 << 20;

/// Buffers for one batch.
pub(crate) type Buffers = [[u8; DATAGRAM_MAX]; BATCH];

/// One received datagram (its bytes are in the buffer of the same index).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Datagram {
    pub len: usize,
    pub source: SocketAddr,
    /// Kernel receive time, µs since the UNIX epoch (`None` without the timestamp).
    pub at_us: Option<u64>,
}

/// Turns on receive timestamps and a bigger receive buffer (best effort: the kernel may cap
/// the buffer at `net.core.rmem_max`).
pub(crate) fn prepare(sock: &UdpSocket) -> io::Result<()> {
    setsockopt(sock, sockopt::ReceiveTimestampns, &true)?;
    if let Err(e) = setsockopt(sock, sockopt::RcvBuf, &RCVBUF_BYTES) {
        tracing::debug!("SO_RCVBUF {RCVBUF_BYTES}: {e}");
    }
    Ok(())
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Receives up to [`BATCH`] queued datagrams without blocking into `bufs`, describing them
/// in `out` (cleared first). `Ok(0)` when nothing is queued.
pub(crate) fn recv_batch(
    sock: &UdpSocket,
    bufs: &mut Buffers,
    out: &mut Vec<Datagram>,
) -> io::Result<usize> {
    // Fresh headers per call: reused ones would keep the previous call's name and control
    // lengths.
    let mut headers =
        MultiHeaders::<SockaddrStorage>::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec)));
    recv_into(sock, &mut headers, bufs, out)
}

fn recv_into(
    sock: &UdpSocket,
    headers: &mut MultiHeaders<SockaddrStorage>,
    bufs: &mut Buffers,
    out: &mut Vec<Datagram>,
) -> io::Result<usize> {
    out.clear();
    let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
    let received = match recvmmsg(
        sock.as_raw_fd(),
        headers,
        iovs.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    ) {
        Ok(r) => r,
        Err(nix::errno::Errno::EAGAIN) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut count = 0;
    for msg in received {
        count += 1;
        if msg.flags.contains(MsgFlags::MSG_TRUNC) {
            out.push(Datagram {
                len: 0,
                source: SocketAddr::from(([0, 0, 0, 0], 0)),
                at_us: None,
            });
            continue;
        }
        let at_us = msg.cmsgs().ok().and_then(|mut c| {
            c.find_map(|m| match m {
                ControlMessageOwned::ScmTimestampns(ts) => {
                    Some(ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000)
                }
                _ => None,
            })
        });
        let source = msg
            .address
            .as_ref()
            .filter(|a| a.family().is_some())
            .and_then(to_std)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        out.push(Datagram {
            len: msg.bytes.min(DATAGRAM_MAX),
            source,
            at_us,
        });
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receives_a_batch_with_timestamps() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        prepare(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut bufs: Box<Buffers> = Box::new([[0; DATAGRAM_MAX]; BATCH]);
        let mut out = Vec::new();
        assert_eq!(recv_batch(&rx, &mut bufs, &mut out).unwrap(), 0);
        for i in 0..3u8 {
            tx.send_to(&[i; 100], rx.local_addr().unwrap()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let n = recv_batch(&rx, &mut bufs, &mut out).unwrap();
        assert_eq!(n, 3);
        let now = crate::media::now_us();
        for (i, d) in out.iter().enumerate() {
            assert_eq!(d.len, 100);
            assert_eq!(d.source, tx.local_addr().unwrap());
            assert_eq!(bufs[i][0], i as u8);
            let at = d.at_us.expect("kernel timestamp");
            assert!(at <= now && now - at < 5_000_000, "{at} vs {now}");
        }
    }
}
