//! The hardware floor: what sealing and sending one forwarded packet costs at minimum.
//!
//! An SFU must at least encrypt each outgoing packet (SRTP AES-128-GCM) and hand it to the
//! kernel. Measured here in this process, on one thread: an aws-lc-rs AES-128-GCM seal of a
//! 1,200-byte payload, and `sendmmsg` of 1,228-byte datagrams in batches of 32 to a loopback
//! socket that another thread drains. Both loops are bounded in count and in time.

use std::io::IoSlice;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrIn, sendmmsg};
use serde::Serialize;

use crate::procstat::thread_cpu_ns;

/// Payload sealed per packet (the client's largest video payload).
pub const PAYLOAD: usize = 1200;
/// Datagram size sent: RTP header + payload + GCM tag.
pub const DATAGRAM: usize = 12 + PAYLOAD + 16;
/// Datagrams per `sendmmsg` call.
pub const BATCH: usize = 32;

/// Floor figures, nanoseconds of one core's CPU time per packet.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    pub seal_packets: u64,
    pub seal_ns_per_packet: f64,
    pub send_packets: u64,
    pub send_batch: usize,
    pub send_errors: u64,
    /// CPU time of the sending thread per packet (includes loopback delivery).
    pub send_ns_per_packet: f64,
    /// Wall time per packet on the sending thread.
    pub send_wall_ns_per_packet: f64,
    pub received_by_drain: u64,
    /// seal + send.
    pub floor_ns_per_packet: f64,
}

/// Limits of the floor loops.
#[derive(Clone, Copy, Debug)]
pub struct FloorLimits {
    pub max_packets: u64,
    pub max_time: Duration,
}

impl Default for FloorLimits {
    fn default() -> Self {
        FloorLimits {
            max_packets: 2_000_000,
            max_time: Duration::from_secs(3),
        }
    }
}

/// AES-128-GCM seal of a 1,200-byte payload, ns of CPU per packet.
#[allow(clippy::expect_used)] // a constant key and buffer: valid by construction
pub fn seal_cost(limits: FloorLimits) -> (u64, f64) {
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[0x42; 16]).expect("16-byte key"));
    let header = [0x80u8, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7];
    let mut buf = vec![0x5au8; PAYLOAD];
    let deadline = Instant::now() + limits.max_time;
    let cpu0 = thread_cpu_ns();
    let mut n = 0u64;
    while n < limits.max_packets {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header[..]),
                &mut buf,
            )
            .expect("seal");
        let _ = std::hint::black_box(tag);
        n += 1;
        if n.is_multiple_of(4096) && Instant::now() >= deadline {
            break;
        }
    }
    let cpu = thread_cpu_ns() - cpu0;
    (n, cpu as f64 / n.max(1) as f64)
}

/// Batched UDP send cost: (packets, errors, CPU ns/packet, wall ns/packet, drained).
pub fn send_cost(limits: FloorLimits) -> std::io::Result<(u64, u64, f64, f64, u64)> {
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    rx.set_read_timeout(Some(Duration::from_millis(50)))?;
    let tx = UdpSocket::bind("127.0.0.1:0")?;
    let dest = match rx.local_addr()? {
        std::net::SocketAddr::V4(a) => SockaddrIn::from(a),
        std::net::SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let drained = Arc::new(AtomicU64::new(0));
    let drain_deadline = Instant::now() + limits.max_time + Duration::from_secs(2);
    let drain = {
        let (stop, drained) = (stop.clone(), drained.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) && Instant::now() < drain_deadline {
                if rx.recv(&mut buf).is_ok() {
                    drained.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let payload = vec![0xa5u8; DATAGRAM];
    let slices: Vec<[IoSlice<'_>; 1]> = (0..BATCH).map(|_| [IoSlice::new(&payload)]).collect();
    let addrs: Vec<Option<SockaddrIn>> = vec![Some(dest); BATCH];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
    let fd = tx.as_raw_fd();
    let deadline = Instant::now() + limits.max_time;
    let (wall0, cpu0) = (Instant::now(), thread_cpu_ns());
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut calls = 0u64;
    while sent < limits.max_packets {
        match sendmmsg(fd, &mut headers, &slices, &addrs, [], MsgFlags::empty()) {
            Ok(results) => sent += results.count() as u64,
            Err(_) => errors += 1,
        }
        calls += 1;
        if calls.is_multiple_of(64) && Instant::now() >= deadline {
            break;
        }
        if errors > 10_000 {
            break;
        }
    }
    let cpu = thread_cpu_ns() - cpu0;
    let wall = wall0.elapsed().as_nanos() as f64;
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    let n = sent.max(1) as f64;
    Ok((
        sent,
        errors,
        cpu as f64 / n,
        wall / n,
        drained.load(Ordering::Relaxed),
    ))
}

/// Measures both on the calling thread.
pub fn measure(limits: FloorLimits) -> std::io::Result<Floor> {
    let (seal_packets, seal_ns) = seal_cost(limits);
    let (send_packets, send_errors, send_ns, send_wall, drained) = send_cost(limits)?;
    Ok(Floor {
        seal_packets,
        seal_ns_per_packet: seal_ns,
        send_packets,
        send_batch: BATCH,
        send_errors,
        send_ns_per_packet: send_ns,
        send_wall_ns_per_packet: send_wall,
        received_by_drain: drained,
        floor_ns_per_packet: seal_ns + send_ns,
    })
}

impl Floor {
    pub fn print(&self) {
        println!("\nhardware floor (one core, this process):");
        println!(
            "  AES-128-GCM seal, {PAYLOAD} B (aws-lc-rs)   {:>8.0} ns/packet ({} packets)",
            self.seal_ns_per_packet, self.seal_packets
        );
        println!(
            "  sendmmsg ×{} of {DATAGRAM} B, loopback     {:>8.0} ns/packet CPU, {:.0} ns wall ({} packets, {} errors, {} drained)",
            self.send_batch,
            self.send_ns_per_packet,
            self.send_wall_ns_per_packet,
            self.send_packets,
            self.send_errors,
            self.received_by_drain
        );
        println!(
            "  floor = seal + send                  {:>8.0} ns/packet ({:.0}k packets/s per core)",
            self.floor_ns_per_packet,
            1e6 / self.floor_ns_per_packet
        );
    }

    /// `us_per_packet` as a multiple of the floor.
    pub fn ratio(&self, us_per_packet: f64) -> f64 {
        us_per_packet * 1000.0 / self.floor_ns_per_packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_floor_runs() {
        let limits = FloorLimits {
            max_packets: 2_000,
            max_time: Duration::from_millis(200),
        };
        let f = measure(limits).unwrap();
        assert!(f.seal_packets > 0 && f.send_packets > 0);
        assert!(f.floor_ns_per_packet > 0.0);
    }
}
