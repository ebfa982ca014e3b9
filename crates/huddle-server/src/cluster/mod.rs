//! Several huddle nodes as one service, coordinated through Redis (`--redis`).
//!
//! - [`registry`]: each node's record (URL, media addresses, load) under a key with a TTL,
//!   rewritten by its heartbeat.
//! - [`placement`]: which node hosts a room, placed once on the least-loaded live node and
//!   kept alive by the owner's heartbeat; a dead owner's rooms expire and are placed anew.
//! - [`proxy`]: a room WebSocket for a room hosted elsewhere, relayed to the owner.
//! - [`cascade`]: where a WHEP viewer goes past `--cascade-after`: another node, which
//!   pulls the room from its node once.
//!
//! The HTTP layer asks [`Cluster::route`] where a room lives: [`Route::Local`], or the owner's
//! URL to redirect (WHIP/WHEP, 307) or relay (WebSocket) to. Without `--redis` every room is
//! local. Redis being unreachable is never fatal: the node logs it and serves every room
//! locally until Redis answers again.

pub mod cascade;
pub mod placement;
pub mod proxy;
pub mod registry;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::media::MediaHandle;
use registry::{CpuMeter, HEARTBEAT, NodeRecord};

/// Longest a request waits for Redis before the room is served locally.
const REDIS_WAIT: Duration = Duration::from_millis(1500);
/// A placed room with no participants on its owner is released after this long (the time a
/// redirected client has to arrive).
const EMPTY_GRACE: Duration = Duration::from_secs(5);
/// Placement attempts per request (a lost race or a dead owner costs one).
const ATTEMPTS: usize = 3;

/// Where a room's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// This node hosts it (or there is no cluster, or Redis cannot be reached).
    Local,
    /// Node `node` hosts it; `url` is its public HTTP base URL; `size` its participants
    /// in the room, as of its last heartbeat.
    Remote {
        node: String,
        url: String,
        size: usize,
    },
}

/// What a node needs to join a cluster.
#[derive(Clone, Debug)]
pub struct Membership {
    pub redis: String,
    pub node_id: String,
    pub public_url: String,
    pub media: Vec<SocketAddr>,
    /// `--cascade-after` (0: off).
    pub cascade_after: usize,
}

/// The cluster as the HTTP layer sees it: cheap to clone; without `--redis`, always local.
#[derive(Clone, Debug, Default)]
pub struct Cluster(Option<Arc<Inner>>);

#[derive(Debug)]
struct Inner {
    id: String,
    redis: redis::Client,
    conn: OnceCell<ConnectionManager>,
    media: MediaHandle,
    /// This node's record as of its latest heartbeat.
    me: Mutex<NodeRecord>,
    /// Rooms placed on this node, and when each last had participants here (or was placed).
    owned: Mutex<HashMap<String, Instant>>,
    cascade_after: usize,
}

/// Checks the cluster options: a Redis URL that parses, a public URL without a path, a
/// node id usable in a key.
pub fn validate(config: &Config) -> Result<(), ConfigError> {
    if let Some(url) = redis_url(config) {
        redis::Client::open(url).map_err(|e| ConfigError::Redis(url.to_owned(), e.to_string()))?;
    }
    if let Some(url) = config.public_url.as_deref().filter(|u| !u.is_empty()) {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .map(|r| r.trim_end_matches('/'));
        if rest.is_none_or(|r| r.is_empty() || r.contains('/')) {
            return Err(ConfigError::PublicUrl(url.to_owned()));
        }
    }
    if let Some(id) = config.node_id.as_deref() {
        let ok = (1..=64).contains(&id.chars().count())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(ConfigError::NodeId(id.to_owned()));
        }
    }
    Ok(())
}

/// `--redis`, unless empty.
pub fn redis_url(config: &Config) -> Option<&str> {
    config.redis.as_deref().filter(|u| !u.is_empty())
}

/// A random node id.
pub fn random_node_id() -> String {
    let mut bytes = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    format!("node-{}", hex::encode(bytes))
}

impl Cluster {
    /// A node on its own: every room is local.
    pub fn local() -> Self {
        Cluster(None)
    }

    /// Joins the cluster: starts the heartbeat (which connects to Redis, and reconnects,
    /// in the background). The task runs until aborted.
    pub fn join(
        membership: Membership,
        media: MediaHandle,
    ) -> Result<(Cluster, JoinHandle<()>), redis::RedisError> {
        let redis = redis::Client::open(membership.redis.as_str())?;
        let me = NodeRecord {
            id: membership.node_id.clone(),
            url: membership.public_url.trim_end_matches('/').to_owned(),
            media: membership.media.iter().map(ToString::to_string).collect(),
            ..NodeRecord::default()
        };
        let inner = Arc::new(Inner {
            id: membership.node_id,
            redis,
            conn: OnceCell::new(),
            media,
            me: Mutex::new(me),
            owned: Mutex::new(HashMap::new()),
            cascade_after: membership.cascade_after,
        });
        tracing::info!(node = %inner.id, url = %inner.me().url, "cluster: joining through Redis");
        let task = tokio::spawn(heartbeat(inner.clone()));
        Ok((Cluster(Some(inner)), task))
    }

    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// This node's id, in a cluster.
    pub fn node_id(&self) -> Option<&str> {
        self.0.as_deref().map(|i| i.id.as_str())
    }

    /// Where requests for `room` go. Places the room if it is not placed yet (or its owner
    /// is dead). Any Redis trouble: served locally, with a warning.
    /// A name the core would refuse is local too (it is refused there, never placed).
    pub async fn route(&self, room: &str) -> Route {
        let Some(inner) = &self.0 else {
            return Route::Local;
        };
        if !huddle_core::room::valid_room_name(room) {
            return Route::Local;
        }
        let Some(mut conn) = inner.conn.get().cloned() else {
            tracing::warn!(%room, "cluster: Redis not connected; serving the room locally");
            return Route::Local;
        };
        match tokio::time::timeout(REDIS_WAIT, inner.resolve(&mut conn, room)).await {
            Ok(Ok(route)) => route,
            Ok(Err(e)) => {
                tracing::warn!(%room, "cluster: Redis: {e}; serving the room locally");
                Route::Local
            }
            Err(_) => {
                tracing::warn!(%room, "cluster: Redis did not answer within {REDIS_WAIT:?}; serving the room locally");
                Route::Local
            }
        }
    }

    /// The cluster as JSON for `GET /cluster`: live nodes with their load, and placements.
    pub async fn view(&self) -> serde_json::Value {
        let Some(inner) = &self.0 else {
            return serde_json::json!({ "enabled": false, "nodes": [], "rooms": {} });
        };
        let me = inner.me();
        let pulls = inner.media.pulls();
        let listed = match inner.conn.get().cloned() {
            None => Err("not connected".to_owned()),
            Some(mut conn) => tokio::time::timeout(REDIS_WAIT, async {
                let nodes = registry::live_nodes(&mut conn).await?;
                let rooms = placement::all(&mut conn).await?;
                Ok::<_, redis::RedisError>((nodes, rooms))
            })
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string())),
        };
        match listed {
            Ok((mut nodes, rooms)) => {
                nodes.sort_by(|a, b| a.id.cmp(&b.id));
                let rooms: serde_json::Map<String, serde_json::Value> =
                    rooms.into_iter().map(|(r, n)| (r, n.into())).collect();
                serde_json::json!({
                    "enabled": true, "node": me.id, "redis": "connected",
                    "nodes": nodes, "rooms": rooms, "pulls": pulls,
                })
            }
            Err(e) => serde_json::json!({
                "enabled": true, "node": me.id, "redis": e,
                "nodes": [me], "rooms": {}, "pulls": pulls,
            }),
        }
    }

    /// Leaves the cluster now (a graceful shutdown): removes this node's record and releases
    /// its rooms, so that they are placed elsewhere at once rather than after the TTL.
    pub async fn leave(&self) {
        let Some(inner) = &self.0 else { return };
        let Some(mut conn) = inner.conn.get().cloned() else {
            return;
        };
        let rooms: Vec<String> = inner.owned().drain().map(|(r, _)| r).collect();
        let _ = tokio::time::timeout(REDIS_WAIT, async {
            for room in &rooms {
                let _ = placement::release(&mut conn, room, &inner.id).await;
            }
            registry::remove(&mut conn, &inner.id).await
        })
        .await;
    }
}

impl Inner {
    fn me(&self) -> NodeRecord {
        self.me.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn owned(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn own(&self, room: &str) {
        self.owned().insert(room.to_owned(), Instant::now());
    }

    async fn resolve(&self, conn: &mut ConnectionManager, room: &str) -> redis::RedisResult<Route> {
        for _ in 0..ATTEMPTS {
            match placement::owner(conn, room).await? {
                Some(owner) if owner == self.id => {
                    self.own(room);
                    return Ok(Route::Local);
                }
                Some(owner) => match registry::node(conn, &owner).await? {
                    Some(node) => {
                        let size = node.room_sizes.get(room).copied().unwrap_or(0);
                        return Ok(Route::Remote {
                            node: owner,
                            url: node.url,
                            size,
                        });
                    }
                    None => {
                        // The owner stopped heartbeating: its rooms are free.
                        if placement::release(conn, room, &owner).await? {
                            tracing::info!(%room, dead = %owner, "cluster: the room's node is gone; placing it anew");
                        }
                    }
                },
                None => {
                    let nodes = registry::live_nodes(conn).await?;
                    let me = self.me();
                    let chosen = placement::choose(&me, &nodes).clone();
                    if placement::claim(conn, room, &chosen.id).await? {
                        tracing::info!(%room, node = %chosen.id, load = chosen.load(), "cluster: room placed");
                        if chosen.id == self.id {
                            self.own(room);
                            return Ok(Route::Local);
                        }
                        return Ok(Route::Remote {
                            node: chosen.id,
                            url: chosen.url,
                            size: 0,
                        });
                    }
                    // Another node placed it meanwhile: read its choice.
                }
            }
        }
        tracing::warn!(%room, "cluster: no stable placement after {ATTEMPTS} attempts; serving locally");
        Ok(Route::Local)
    }

    /// Connects to Redis if not connected yet; the connection manager reconnects by itself
    /// afterwards.
    async fn connection(&self) -> Option<ConnectionManager> {
        if let Some(c) = self.conn.get() {
            return Some(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        match ConnectionManager::new_with_config(self.redis.clone(), config).await {
            Ok(c) => {
                tracing::info!(node = %self.id, "cluster: connected to Redis");
                Some(self.conn.get_or_init(|| async { c }).await.clone())
            }
            Err(e) => {
                tracing::warn!("cluster: cannot reach Redis: {e}; serving rooms locally meanwhile");
                None
            }
        }
    }

    /// Takes this node's load from the media workers.
    fn sample(&self, cpu: &mut CpuMeter, last: &mut Option<(Instant, u64)>) {
        let now = Instant::now();
        let stats = self.media.report().stats;
        let sizes = self
            .media
            .rooms()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
        let pps = match last.replace((now, stats.packets_forwarded)) {
            Some((at, before)) => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    stats.packets_forwarded.saturating_sub(before) as f64 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        let cpu = cpu.sample(now);
        let mut me = self.me.lock().unwrap_or_else(|e| e.into_inner());
        me.participants = stats.participants;
        me.room_sizes = sizes;
        me.rooms = stats.rooms;
        me.forwarded_pps = (pps * 10.0).round() / 10.0;
        me.cpu_percent = cpu.map(|c| (c * 10.0).round() / 10.0);
    }

    /// One heartbeat: this node's record, then its placements (refreshed while the room has
    /// participants here, released once it has been empty for [`EMPTY_GRACE`]; a room open
    /// here but placed nowhere, as after a Redis outage, is claimed).
    async fn beat(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        registry::write(conn, &self.me()).await?;
        let now = Instant::now();
        // A room pulled from its node is open here but placed there.
        let pulled: Vec<String> = self.media.pulls().into_iter().map(|p| p.room).collect();
        let local: Vec<String> = self
            .media
            .rooms()
            .into_iter()
            .filter(|(r, n)| *n > 0 && !pulled.contains(r))
            .map(|(r, _)| r)
            .collect();
        let (keep, stale) = {
            let mut owned = self.owned();
            for room in &local {
                owned.insert(room.clone(), now);
            }
            let (keep, stale): (Vec<_>, Vec<_>) = owned
                .iter()
                .map(|(r, at)| (r.clone(), now.duration_since(*at) < EMPTY_GRACE))
                .partition(|(_, active)| *active);
            for (room, _) in &stale {
                owned.remove(room);
            }
            (keep, stale)
        };
        for (room, _) in stale {
            if placement::release(conn, &room, &self.id).await? {
                tracing::info!(%room, "cluster: room empty; placement released");
            }
        }
        for (room, _) in keep {
            if !placement::refresh(conn, &room, &self.id).await? {
                if placement::claim(conn, &room, &self.id).await? {
                    tracing::info!(%room, "cluster: open room placed here");
                } else if local.contains(&room) {
                    let other = placement::owner(conn, &room).await?.unwrap_or_default();
                    tracing::warn!(%room, %other, "cluster: room open here is placed on another node; new joins go there");
                    self.owned().remove(&room);
                }
            }
        }
        Ok(())
    }
}

/// Every [`HEARTBEAT`]: samples the load, connects if need be, writes the record and the
/// placements. Errors are logged and the next beat tries again; the task ends only when
/// the server aborts it.
async fn heartbeat(inner: Arc<Inner>) {
    let mut cpu = CpuMeter::default();
    let mut forwarded = None;
    let mut ticker = tokio::time::interval(HEARTBEAT);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        inner.sample(&mut cpu, &mut forwarded);
        let Some(mut conn) = inner.connection().await else {
            continue;
        };
        match tokio::time::timeout(HEARTBEAT, inner.beat(&mut conn)).await {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!("cluster: Redis answers again");
                }
                failing = false;
            }
            Ok(Err(e)) if !failing => {
                tracing::warn!("cluster: heartbeat failed: {e}; serving rooms locally meanwhile");
                failing = true;
            }
            Err(_) if !failing => {
                tracing::warn!("cluster: heartbeat timed out; serving rooms locally meanwhile");
                failing = true;
            }
            _ => {}
        }
    }
}
