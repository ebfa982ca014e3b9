//! What the core costs per forwarded packet: one publisher's SRTP packets replayed into an
//! `Sfu` that fans them out to N connected viewers (decrypt once, rewrite and encrypt N times).
//! Peers run on the in-memory network of the tests; only the core is timed.

#[path = "../tests/sim/mod.rs"]
mod sim;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use huddle_core::{Datagram, Transport};
use sim::Net;

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (viewers, batch) in [(1usize, 1usize), (10, 1), (100, 1), (100, 8)] {
        let mut net = Net::new();
        let p = net.publisher("pub", "room");
        for _ in 0..viewers {
            net.viewer("v", "room");
        }
        net.run(Duration::from_secs(2));
        let before = net.sfu.stats().packets_forwarded;
        let mut fed = 0u64;
        group.throughput(criterion::Throughput::Elements(viewers as u64));
        group.bench_function(format!("{viewers} viewers, {batch} per batch"), |b| {
            b.iter_custom(|iters| {
                // SRTP refuses replays: every timed datagram is a fresh one from the publisher,
                // made (untimed) in chunks.
                let mut timed = Duration::ZERO;
                let mut left = iters as usize;
                while left > 0 {
                    let packets = net.capture_video(p, left.min(500));
                    left -= packets.len().min(left);
                    let start = Instant::now();
                    for chunk in packets.chunks(batch) {
                        let now = net.now;
                        let datagrams = chunk.iter().map(|(source, destination, bytes)| Datagram {
                            transport: Transport::Udp,
                            source: *source,
                            destination: *destination,
                            contents: bytes,
                        });
                        net.sfu.handle_datagrams(now, datagrams);
                        while net.sfu.poll_transmit().is_some() {}
                    }
                    timed += start.elapsed();
                    fed += packets.len() as u64;
                }
                timed
            })
        });
        let forwarded = net.sfu.stats().packets_forwarded - before;
        assert!(
            forwarded >= fed * viewers as u64 * 99 / 100,
            "{forwarded} forwarded of {fed} × {viewers}"
        );
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
