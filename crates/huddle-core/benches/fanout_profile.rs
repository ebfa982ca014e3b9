//! One fan-out workload, deterministic, for instruction counts (`valgrind --tool=callgrind
//! --toggle-collect=*replay*`) and profiles: a publisher's video packets replayed into an
//! `Sfu` that forwards them to N connected viewers, in batches of B.
//!
//!     cargo bench -p huddle-core --bench fanout_profile -- VIEWERS BATCH PACKETS

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::{Duration, Instant};

use huddle_core::{Datagram, Transport};
use sim::Net;

/// Feeds the captured datagrams to the core, draining what it sends (kept apart for
/// callgrind's `--toggle-collect`).
#[inline(never)]
fn replay(
    net: &mut Net,
    packets: &[(std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)],
    batch: usize,
) -> usize {
    let mut sent = 0;
    for chunk in packets.chunks(batch) {
        let now = net.now;
        let datagrams = chunk.iter().map(|(source, destination, bytes)| Datagram {
            transport: Transport::Udp,
            source: *source,
            destination: *destination,
            contents: bytes,
        });
        net.sfu.handle_datagrams(now, datagrams);
        while net.sfu.poll_transmit().is_some() {
            sent += 1;
        }
    }
    sent
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let viewers = args.first().copied().unwrap_or(10);
    let batch = args.get(1).copied().unwrap_or(1);
    let count = args.get(2).copied().unwrap_or(3000);
    let mut net = Net::new();
    let p = net.publisher("pub", "room");
    for _ in 0..viewers {
        net.viewer("v", "room");
    }
    net.run(Duration::from_secs(2));
    let packets = net.capture_video(p, count);
    let before = net.sfu.stats().packets_forwarded;
    let start = Instant::now();
    let sent = replay(&mut net, &packets, batch);
    let elapsed = start.elapsed();
    let forwarded = net.sfu.stats().packets_forwarded - before;
    println!(
        "{viewers} viewers, batch {batch}: {} packets in, {forwarded} forwarded, {sent} datagrams out, {:.2} µs per forwarded packet",
        packets.len(),
        elapsed.as_secs_f64() * 1e6 / forwarded.max(1) as f64
    );
}
