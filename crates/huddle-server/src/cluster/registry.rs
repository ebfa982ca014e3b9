//! The node registry in Redis: each node's record (`huddle:node:{id}`, JSON) written by its
//! heartbeat with a time to live, so that a node that stops heartbeating drops out of the
//! cluster by itself. The record carries what placement compares: participants, forwarded
//! packets per second and CPU.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

/// How often a node rewrites its record (and refreshes its rooms' placements).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a record (and a placement) outlives its last heartbeat.
pub const TTL: Duration = Duration::from_secs(6);

/// SCAN rounds at most when listing keys (each asks for 100).
const SCAN_ROUNDS: usize = 100;

pub fn node_key(id: &str) -> String {
    format!("huddle:node:{id}")
}

/// One node as the cluster sees it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    pub id: String,
    /// Base URL of its HTTP server (`http://host:port`), where other nodes send its clients.
    pub url: String,
    /// Its media workers' advertised UDP addresses.
    pub media: Vec<String>,
    /// Peer connections on the node.
    pub participants: usize,
    /// Rooms open on the node.
    pub rooms: usize,
    /// RTP packets written to subscribers per second, over the last heartbeat.
    pub forwarded_pps: f64,
    /// The process's CPU use over the last heartbeat, in percent of one core (Linux only).
    pub cpu_percent: Option<f64>,
    /// Participants per room open on the node (a room's node spills viewers past
    /// `--cascade-after`).
    #[serde(default)]
    pub room_sizes: std::collections::BTreeMap<String, usize>,
}

impl NodeRecord {
    /// What placement minimizes: participants, with a stream's worth of forwarded packets
    /// (≈ 200/s) counted as one more.
    pub fn load(&self) -> f64 {
        self.participants as f64 + self.forwarded_pps / 200.0
    }
}

/// Writes (or refreshes) `record` with [`TTL`].
pub async fn write(conn: &mut ConnectionManager, record: &NodeRecord) -> redis::RedisResult<()> {
    let json = serde_json::to_string(record).unwrap_or_default();
    redis::cmd("SET")
        .arg(node_key(&record.id))
        .arg(json)
        .arg("PX")
        .arg(ttl_ms())
        .query_async::<()>(conn)
        .await
}

/// Removes this node's record (a node shutting down leaves at once).
pub async fn remove(conn: &mut ConnectionManager, id: &str) -> redis::RedisResult<()> {
    redis::cmd("DEL")
        .arg(node_key(id))
        .query_async::<()>(conn)
        .await
}

/// The record of node `id`, if its heartbeat is alive.
pub async fn node(
    conn: &mut ConnectionManager,
    id: &str,
) -> redis::RedisResult<Option<NodeRecord>> {
    let json: Option<String> = redis::cmd("GET")
        .arg(node_key(id))
        .query_async(conn)
        .await?;
    Ok(json.and_then(|j| parse(&j)))
}

/// Every live node's record.
pub async fn live_nodes(conn: &mut ConnectionManager) -> redis::RedisResult<Vec<NodeRecord>> {
    let keys = scan(conn, "huddle:node:*").await?;
    let values = mget(conn, &keys).await?;
    Ok(values.iter().flatten().filter_map(|j| parse(j)).collect())
}

fn parse(json: &str) -> Option<NodeRecord> {
    serde_json::from_str(json)
        .map_err(|e| tracing::warn!("cluster: unreadable node record: {e}"))
        .ok()
}

pub(super) fn ttl_ms() -> u64 {
    TTL.as_millis() as u64
}

/// The keys matching `pattern` (a bounded SCAN).
pub(super) async fn scan(
    conn: &mut ConnectionManager,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    for _ in 0..SCAN_ROUNDS {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(100)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// The values of `keys`, in order (`None` for keys gone meanwhile).
pub(super) async fn mget(
    conn: &mut ConnectionManager,
    keys: &[String],
) -> redis::RedisResult<Vec<Option<String>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    redis::cmd("MGET").arg(keys).query_async(conn).await
}

/// Measures the process's CPU time between heartbeats (from `/proc/self/stat`).
#[derive(Debug)]
pub struct CpuMeter {
    last: Option<(Instant, u64)>,
    ticks_per_second: f64,
}

impl Default for CpuMeter {
    fn default() -> Self {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|t| *t > 0)
            .unwrap_or(100);
        CpuMeter {
            last: None,
            ticks_per_second: ticks as f64,
        }
    }
}

impl CpuMeter {
    /// Percent of one core used since the previous call (`None` on the first call, or where
    /// `/proc` cannot tell).
    pub fn sample(&mut self, now: Instant) -> Option<f64> {
        let ticks = process_ticks()?;
        let previous = self.last.replace((now, ticks));
        let (at, before) = previous?;
        let elapsed = now.duration_since(at).as_secs_f64();
        (elapsed > 0.0)
            .then(|| ticks.saturating_sub(before) as f64 / self.ticks_per_second / elapsed * 100.0)
    }
}

/// User plus system CPU time of this process, in clock ticks.
fn process_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is the first, utime
    // the 12th and stime the 13th.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_counts_participants_and_forwarding() {
        let idle = NodeRecord::default();
        let busy = NodeRecord {
            participants: 2,
            forwarded_pps: 400.0,
            ..NodeRecord::default()
        };
        assert_eq!(idle.load(), 0.0);
        assert_eq!(busy.load(), 4.0);
    }

    #[test]
    fn cpu_is_measured_between_samples() {
        let mut meter = CpuMeter::default();
        let start = Instant::now();
        assert_eq!(
            meter.sample(start),
            None,
            "the first sample has no interval"
        );
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        let cpu = meter.sample(Instant::now());
        assert!(cpu.is_some_and(|c| c >= 0.0), "{cpu:?}");
    }
}
