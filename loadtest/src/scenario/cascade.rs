//! `cascade`: one publisher → N viewers across a cluster of three huddle nodes (a real
//! `redis-server`, `--cascade-after 1`): the publisher on node A, the viewers POSTed half to B
//! and half to C, which each pull the room from A once. Then the same broadcast on one node
//! alone, so that the relay's cost shows as the difference in CPU per forwarded packet.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use super::{Fleet, RunOptions, Window, broadcast, measure};
use crate::procstat::CpuSample;
use crate::sut::{HuddleProcess, Sut, free_tcp_port, wait_healthy};

/// One node's share of the cluster run.
#[derive(Clone, Debug, Serialize)]
pub struct NodeFigures {
    pub node: String,
    pub cpu_pct: Option<f64>,
    /// RTP packets its pull carried from the room's node over the window (0 on A).
    pub pulled_packets: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct CascadeReport {
    pub scenario: &'static str,
    pub viewers: usize,
    /// The cluster run: what the viewers (on B and C) received; server figures are A's.
    pub cluster: Window,
    pub nodes: Vec<NodeFigures>,
    /// The three nodes' CPU time over the window ÷ packets the viewers received.
    pub cluster_cpu_us_per_forwarded_packet: Option<f64>,
    /// The same broadcast on one node.
    pub single: Window,
    /// Cluster minus single node, per forwarded packet: what cascading costs.
    pub relay_overhead_us_per_forwarded_packet: Option<f64>,
}

impl CascadeReport {
    pub fn print(&self) {
        println!(
            "cascade: 1 publisher on node-a → {} viewers on node-b and node-c",
            self.viewers
        );
        for n in &self.nodes {
            println!(
                "  {}: CPU {}, pulled {} packets",
                n.node,
                super::fmt_pct(n.cpu_pct),
                n.pulled_packets
            );
        }
        let w = &self.cluster;
        println!(
            "  cluster: {} of {} packets received ({:.2} % short), loss {:.3} %, {:.1} µs CPU per forwarded packet (three nodes)",
            w.packets_received,
            w.packets_expected,
            w.delivery_shortfall_pct,
            w.loss_pct,
            self.cluster_cpu_us_per_forwarded_packet.unwrap_or(f64::NAN)
        );
        println!(
            "  one node: {} of {} received, {:.1} µs CPU per forwarded packet",
            self.single.packets_received,
            self.single.packets_expected,
            self.single
                .server_cpu_us_per_forwarded_packet
                .unwrap_or(f64::NAN)
        );
        println!(
            "  relay overhead: {:.1} µs per forwarded packet",
            self.relay_overhead_us_per_forwarded_packet
                .unwrap_or(f64::NAN)
        );
    }
}

/// `redis-server` on a free loopback port, stopped when dropped.
struct Redis {
    child: Child,
    url: String,
}

impl Redis {
    fn start() -> Result<Redis, String> {
        let port = free_tcp_port().map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e} (Debian package redis-server)"))?;
        Ok(Redis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn json(resp: reqwest::Response) -> Option<serde_json::Value> {
    serde_json::from_str(&resp.text().await.ok()?).ok()
}

/// RTP packets `node`'s pulls carried so far (its `GET /cluster`).
async fn pulled(node: &HuddleProcess) -> u64 {
    let url = format!("{}/cluster", node.base_url());
    let Ok(resp) = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
    else {
        return 0;
    };
    let Some(view) = json(resp).await else {
        return 0;
    };
    view.get("pulls").and_then(|p| p.as_array()).map_or(0, |p| {
        p.iter()
            .filter_map(|p| p.get("packets").and_then(|n| n.as_u64()))
            .sum()
    })
}

/// Waits until `node` lists `room` on node-a with at least one participant.
async fn room_reported(node: &HuddleProcess, room: &str, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    let client = reqwest::Client::new();
    while std::time::Instant::now() < deadline {
        if let Ok(resp) = client
            .get(format!("{}/cluster", node.base_url()))
            .send()
            .await
            && let Some(view) = json(resp).await
            && view
                .get("nodes")
                .and_then(|n| n.as_array())
                .is_some_and(|n| {
                    n.iter().any(|n| {
                        n.get("id").and_then(|i| i.as_str()) == Some("node-a")
                            && n.get("room_sizes")
                                .and_then(|r| r.get(room))
                                .and_then(|r| r.as_u64())
                                >= Some(1)
                    })
                })
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Runs the cluster broadcast, then the single-node one, with the huddle binary `bin`.
pub async fn run(
    bin: &std::path::Path,
    viewers: usize,
    opts: &RunOptions,
    harness_threads: usize,
) -> Result<CascadeReport, String> {
    let redis = Redis::start()?;
    let mut nodes = Vec::new();
    for id in ["node-a", "node-b", "node-c"] {
        let args: Vec<String> = [
            "--redis",
            &redis.url,
            "--node-id",
            id,
            "--cascade-after",
            "1",
            "--workers",
            "1",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        nodes.push(HuddleProcess::start(bin, None, &args).await?);
    }
    for n in &nodes {
        wait_healthy(n.base_url(), Duration::from_secs(10)).await?;
    }
    let [a, b, c] = nodes.as_mut_slice() else {
        return Err("three nodes".into());
    };
    let room = format!("loadtest-cascade-{}", std::process::id());
    let mut fleet = Fleet::publish(&*a, &room, &opts.media).await?;
    if !room_reported(&*b, &room, Duration::from_secs(10)).await {
        return Err("node-b never saw the room's size on node-a".into());
    }
    fleet.add_viewers(&*b, viewers / 2, opts).await;
    fleet.add_viewers(&*c, viewers - viewers / 2, opts).await;
    if !fleet.settle(opts.settle_timeout).await {
        tracing::warn!(
            "not every viewer received media within {:?}",
            opts.settle_timeout
        );
    }
    tokio::time::sleep(opts.settle_pause()).await;
    let pids = [a.pid(), b.pid(), c.pid()];
    let before: Vec<CpuSample> = pids.iter().map(|p| CpuSample::take(*p)).collect();
    let pulled_before = [pulled(&*b).await, pulled(&*c).await];
    let cluster = measure(&fleet, a.pid(), opts.seconds, opts.progress, "cascade").await;
    let after: Vec<CpuSample> = pids.iter().map(|p| CpuSample::take(*p)).collect();
    let pulled_after = [pulled(&*b).await, pulled(&*c).await];
    fleet.close(&*a).await;
    let mut total = Duration::ZERO;
    let mut figures = Vec::new();
    for (i, id) in ["node-a", "node-b", "node-c"].into_iter().enumerate() {
        let (Some(x), Some(y)) = (before.get(i), after.get(i)) else {
            continue;
        };
        total += y.cpu_since(x).unwrap_or_default();
        let pulled_packets = i
            .checked_sub(1)
            .and_then(|j| Some(pulled_after.get(j)?.saturating_sub(*pulled_before.get(j)?)))
            .unwrap_or(0);
        figures.push(NodeFigures {
            node: id.to_owned(),
            cpu_pct: y.percent_since(x),
            pulled_packets,
        });
    }
    for n in nodes.iter_mut() {
        n.stop();
    }
    drop(redis);
    let cluster_us = (cluster.packets_received > 0)
        .then(|| total.as_secs_f64() * 1e6 / cluster.packets_received as f64);

    let mut single = HuddleProcess::start(bin, None, &["--workers".into(), "1".into()]).await?;
    let r = broadcast::run(&single, viewers, opts, harness_threads).await;
    single.stop();
    let single = r?.window;
    let overhead = cluster_us
        .zip(single.server_cpu_us_per_forwarded_packet)
        .map(|(c, s)| c - s);
    Ok(CascadeReport {
        scenario: "cascade",
        viewers,
        cluster,
        nodes: figures,
        cluster_cpu_us_per_forwarded_packet: cluster_us,
        single,
        relay_overhead_us_per_forwarded_packet: overhead,
    })
}
