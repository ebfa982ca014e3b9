//! ICE over TCP from the client's side ([`ClientOptions::ice_tcp_only`]): an active TCP
//! candidate (RFC 6544) that connects to the server's passive one, with datagrams framed as
//! RFC 4571 says (a 16-bit big-endian length before each).
//!
//! [`ClientOptions::ice_tcp_only`]: crate::ClientOptions::ice_tcp_only

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use str0m::Candidate;
use str0m::net::TcpType;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

use crate::error::ClientError;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(2)
        .max_frame_length(usize::from(u16::MAX))
        .new_codec()
}

/// Whether an `a=candidate` line is a TCP candidate.
fn is_tcp(line: &str) -> bool {
    // candidate:<foundation> <component> <transport> …
    line.split_whitespace()
        .nth(2)
        .is_some_and(|t| t.eq_ignore_ascii_case("tcp"))
}

/// `sdp` with its UDP candidates removed: only TCP ones are left to try.
pub fn only_tcp_candidates(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let l = line.trim_start();
        if l.starts_with("a=candidate") && !is_tcp(l) {
            continue;
        }
        out.push_str(line);
    }
    out
}

/// The address of the first passive TCP candidate in `sdp`.
pub fn passive_tcp_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter(|l| l.starts_with("candidate") && is_tcp(l))
        .filter_map(|l| Candidate::from_sdp_string(l).ok())
        .find(|c| c.tcptype() == Some(TcpType::Passive))
        .map(|c| c.addr())
}

/// One TCP connection to the server, carrying RFC 4571 frames.
#[derive(Debug)]
pub(crate) struct TcpLink {
    read: FramedRead<OwnedReadHalf, LengthDelimitedCodec>,
    write: FramedWrite<OwnedWriteHalf, LengthDelimitedCodec>,
    /// This end (the local candidate's address) and the server's end.
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

impl TcpLink {
    /// Connects to the server's passive candidate at `to`; returns the link and the local
    /// active candidate to add to the `Rtc`.
    pub async fn connect(to: SocketAddr) -> Result<(TcpLink, Candidate), ClientError> {
        let stream = TcpStream::connect(to).await?;
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        let candidate = Candidate::builder()
            .tcp()
            .host(local)
            .tcptype(TcpType::Active)
            .build()
            .map_err(|e| ClientError::Protocol(format!("TCP candidate {local}: {e}")))?;
        let (read, write) = stream.into_split();
        Ok((
            TcpLink {
                read: FramedRead::new(read, codec()),
                write: FramedWrite::new(write, codec()),
                local,
                peer: to,
            },
            candidate,
        ))
    }

    /// The next frame; `None` once the connection is closed or broken.
    pub async fn recv(&mut self) -> Option<BytesMut> {
        match self.read.next().await {
            Some(Ok(frame)) => Some(frame),
            Some(Err(e)) => {
                tracing::debug!("tcp recv: {e}");
                None
            }
            None => None,
        }
    }

    pub async fn send(&mut self, datagram: Vec<u8>) -> std::io::Result<()> {
        self.write.send(Bytes::from(datagram)).await
    }
}

/// The next frame of `link`; never without one (or once it closed).
pub(crate) async fn next_frame(link: &mut Option<TcpLink>) -> BytesMut {
    if let Some(l) = link
        && let Some(frame) = l.recv().await
    {
        return frame;
    }
    *link = None;
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_candidates_go_and_the_passive_tcp_one_is_found() {
        let sdp = "v=0\r\n\
                   a=candidate:1 1 udp 2130706175 127.0.0.1 5000 typ host\r\n\
                   a=candidate:2 1 tcp 1509949695 127.0.0.1 5000 typ host tcptype passive\r\n\
                   a=end-of-candidates\r\n";
        let munged = only_tcp_candidates(sdp);
        assert!(!munged.contains(" udp "), "{munged}");
        assert!(munged.contains("tcptype passive") && munged.contains("end-of-candidates"));
        assert_eq!(
            passive_tcp_candidate(sdp),
            Some("127.0.0.1:5000".parse().unwrap())
        );
        assert_eq!(passive_tcp_candidate("v=0\r\n"), None);
    }
}
