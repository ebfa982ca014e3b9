//! `broadcast`: one publisher → N viewers in one room, one measurement window (viewers
//! join `connect_concurrency` at a time, or paced at `join_rate` per second).

use super::{Fleet, Joins, Memory, RunOptions, Window, measure};
use crate::procstat::rss_of;
use crate::report::BroadcastReport;
use crate::server_window;
use crate::sut::Sut;

/// Runs the scenario against `sut` and returns the report (peers closed, SUT left running).
pub async fn run(
    sut: &dyn Sut,
    viewers: usize,
    opts: &RunOptions,
    harness_threads: usize,
) -> Result<BroadcastReport, String> {
    let pid = sut.pid();
    let baseline = pid.and_then(rss_of);
    let room = format!("loadtest-broadcast-{}", std::process::id());
    let mut fleet = Fleet::publish(sut, &room, &opts.media).await?;
    fleet.add_viewers(sut, viewers, opts).await;
    if !fleet.settle(opts.settle_timeout).await {
        tracing::warn!(
            "not every viewer received media within {:?}",
            opts.settle_timeout
        );
    }
    // Let join-time keyframe requests and bursts pass before measuring.
    tokio::time::sleep(opts.settle_pause()).await;
    let counters = server_window::open(sut).await;
    let window: Window = measure(&fleet, pid, opts.seconds, opts.progress, "broadcast").await;
    let server = server_window::close(sut, counters).await;
    let joins = Joins::of(&fleet);
    let memory = Memory::of(pid, baseline, fleet.viewer_count() + 1);
    fleet.close(sut).await;
    Ok(BroadcastReport {
        scenario: "broadcast",
        sut: sut.name().to_owned(),
        media: opts.media.clone(),
        lean_sample_one_in: opts.lean.map(|l| l.sample_one_in),
        harness_threads,
        window,
        server,
        joins,
        memory,
        ratio_to_floor: None,
    })
}
