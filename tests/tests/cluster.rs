//! Three huddle nodes (the `huddle` binary, as processes) sharing a real Redis: a room is
//! placed on one node, WHIP/WHEP requests to the others are redirected there (307) and get
//! media, the room WebSocket is relayed to it, `GET /cluster` lists the nodes, and when the
//! room's node is killed the room is placed anew and re-POSTing clients resume on a live
//! node. Needs Debian's `redis-server` (scripts/test installs it) and the `huddle` binary
//! beside the test executable (`cargo test --workspace` builds it; alone:
//! `cargo build --bin huddle`, or set HUDDLE_BIN).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use huddle_client::{ClientOptions, Publisher, Viewer};
use huddle_tests::eventually;
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "cluster-shared-token";
const ROOM: &str = "stage";

/// Ports handed out in this process: a node binds its ports only once it runs, so a port
/// free now may be another node's already.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A loopback port free for TCP and UDP both (a node listens for ICE over TCP on its UDP
/// port) and not handed out before.
fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("free TCP port");
        let port = tcp.local_addr().expect("bound TCP port").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() && !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn connect_redis(url: &str) -> redis::aio::ConnectionManager {
    let client = redis::Client::open(url).expect("redis URL");
    let started = Instant::now();
    loop {
        match redis::aio::ConnectionManager::new(client.clone()).await {
            Ok(c) => return c,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                tracing::debug!("redis-server not up yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("redis-server does not answer: {e}"),
        }
    }
}

fn start_redis() -> (Process, String) {
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("redis-server starts (apt-get install redis-server)");
    (Process(child), format!("redis://127.0.0.1:{port}/"))
}

fn huddle_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("HUDDLE_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("test executable");
    let mut dir = exe.parent().expect("its folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("huddle");
    assert!(
        bin.is_file(),
        "{} missing: cargo build --bin huddle (or set HUDDLE_BIN)",
        bin.display()
    );
    bin
}

struct Node {
    id: String,
    base: String,
    process: Option<Process>,
}

impl Node {
    fn start(id: &str, redis: &str) -> Node {
        Node::start_with(id, redis, &[])
    }

    fn start_with(id: &str, redis: &str, extra: &[&str]) -> Node {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let udp = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(huddle_bin())
            .args(["--http", &http.to_string(), "--udp", &udp.to_string()])
            .args(["--token", TOKEN])
            .args(if extra.contains(&"--workers") {
                &[][..]
            } else {
                &["--workers", "1"][..]
            })
            .args(["--redis", redis, "--node-id", id])
            .args(extra)
            .env_remove("HUDDLE_CONFIG")
            .env_remove("HUDDLE_PUBLIC_IP")
            .env_remove("HUDDLE_PUBLIC_URL")
            .env(
                "RUST_LOG",
                std::env::var("HUDDLE_CLUSTER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // Its log lines (stdout) only when asked for with HUDDLE_CLUSTER_LOG.
            .stdout(if std::env::var_os("HUDDLE_CLUSTER_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::inherit())
            .spawn()
            .expect("huddle starts");
        Node {
            id: id.to_owned(),
            base: format!("http://{http}"),
            process: Some(Process(child)),
        }
    }

    fn url(&self, endpoint: &str) -> String {
        format!("{}/{endpoint}/{ROOM}", self.base)
    }

    /// Kills the process (SIGKILL: no goodbye to Redis).
    fn kill(&mut self) {
        self.process.take();
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        token: Some(TOKEN.into()),
        http_timeout: Duration::from_secs(3),
        ..ClientOptions::default()
    }
}

async fn cluster_view(node: &Node) -> Option<serde_json::Value> {
    let response = reqwest::Client::new()
        .get(format!("{}/cluster", node.base))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    serde_json::from_str(&response.text().await.ok()?).ok()
}

fn node_ids(view: &serde_json::Value) -> Vec<String> {
    view["nodes"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(|n| n["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn placement(redis: &mut redis::aio::ConnectionManager) -> Option<String> {
    redis::cmd("GET")
        .arg(format!("huddle:room:{ROOM}"))
        .query_async(redis)
        .await
        .expect("GET the placement")
}

/// Waits for a viewer's first video packet; the time it took since `from`.
async fn first_video(viewer: &Viewer, from: Instant, within: Duration) -> Duration {
    let got = eventually(within, || async { viewer.stats().video.packets > 0 }).await;
    assert!(
        got,
        "no video within {within:?}: {:?}",
        viewer.stats().video
    );
    viewer
        .stats()
        .video
        .first_packet_at
        .map_or(from.elapsed(), |at| at - from)
}

/// A WHEP viewer POSTed to `url` whose session must live under `lives_on`, and the time
/// from its POST to its first video packet.
async fn view_at(url: &str, lives_on: &str) -> (Viewer, Duration) {
    let asked = Instant::now();
    let viewer = Viewer::connect(url, options()).await.expect("WHEP viewer");
    assert!(
        viewer
            .session_url()
            .is_some_and(|u| u.starts_with(lives_on)),
        "the session lives on {lives_on}: {:?}",
        viewer.session_url()
    );
    let took = first_video(&viewer, asked, Duration::from_secs(10)).await;
    (viewer, took)
}

/// Connects `make()` until it succeeds or `within` passes (each failure: the node is gone
/// or the room not placed anew yet).
async fn retry<T, F, Fut>(within: Duration, what: &str, mut make: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, huddle_client::ClientError>>,
{
    let deadline = Instant::now() + within;
    loop {
        match make().await {
            Ok(t) => return t,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("{what}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{what}: still failing after {within:?}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_placed_redirected_and_moved_when_their_node_dies() {
    huddle_tests::init_logging();
    huddle_client::ensure_crypto_provider();
    let (redis_process, redis_url) = start_redis();
    let mut nodes = [
        Node::start("node-a", &redis_url),
        Node::start("node-b", &redis_url),
        Node::start("node-c", &redis_url),
    ];
    let mut redis = connect_redis(&redis_url).await;

    // Every node registers itself: GET /cluster on any of them lists all three.
    let all = ["node-a", "node-b", "node-c"];
    let listed = eventually(Duration::from_secs(20), || async {
        match cluster_view(&nodes[2]).await {
            Some(v) => node_ids(&v) == all,
            None => false,
        }
    })
    .await;
    assert!(
        listed,
        "GET /cluster lists three nodes: {:?}",
        cluster_view(&nodes[2]).await
    );

    // A publisher on A: the room is placed there (all nodes idle; it stays where asked).
    let publisher = Publisher::connect(&nodes[0].url("whip"), options())
        .await
        .expect("WHIP publisher on A");
    assert!(
        publisher
            .session_url()
            .is_some_and(|u| u.starts_with(&nodes[0].base)),
        "{:?}",
        publisher.session_url()
    );
    assert_eq!(placement(&mut redis).await.as_deref(), Some("node-a"));

    // A WHEP POST to B is answered 307 with A's endpoint.
    let offer = huddle_tests::str0m_offer(str0m::media::Direction::RecvOnly);
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(nodes[1].url("whep"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .expect("POST to B");
    assert_eq!(raw.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        raw.headers().get("location").and_then(|l| l.to_str().ok()),
        Some(nodes[0].url("whep").as_str())
    );

    // Viewers POSTed to B and C follow the redirect and receive A's media.
    let mut joins = Vec::new();
    let mut viewers = Vec::new();
    for node in &nodes[1..] {
        let (viewer, took) = view_at(&node.url("whep"), &nodes[0].base).await;
        println!(
            "cross-node join: WHEP POST to {} → first video packet from node-a in {} ms",
            node.id,
            took.as_millis()
        );
        joins.push(took);
        viewers.push(viewer);
    }
    for v in &viewers {
        let before = v.stats().video.packets;
        assert!(
            eventually(Duration::from_secs(5), || async {
                v.stats().video.packets > before + 20
            })
            .await,
            "media keeps flowing"
        );
    }

    // The room WebSocket on C is relayed to A: its welcome lists A's WHIP publisher.
    let ws = format!(
        "{}/rooms/{ROOM}/ws?token={TOKEN}",
        nodes[2].base.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws)
        .await
        .expect("room socket on C");
    socket
        .send(Message::text(r#"{"type":"join","name":"ada"}"#))
        .await
        .expect("join");
    let welcome = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("welcome in time");
    let Some(Ok(Message::Text(welcome))) = welcome else {
        panic!("no welcome: {welcome:?}")
    };
    assert!(
        welcome.contains(r#""type":"welcome""#) && welcome.contains(r#""source":"whip""#),
        "the member joined A's room: {welcome}"
    );
    drop(socket);

    // The heartbeats carry each node's load: A counts its publisher and two viewers.
    let loaded = eventually(Duration::from_secs(6), || async {
        cluster_view(&nodes[1]).await.is_some_and(|v| {
            v["nodes"].as_array().is_some_and(|n| {
                n.iter().any(|n| {
                    n["id"] == "node-a"
                        && n["participants"].as_u64().is_some_and(|p| p >= 3)
                        && n["forwarded_pps"].as_f64().is_some_and(|pps| pps > 0.0)
                })
            })
        })
    })
    .await;
    let view = cluster_view(&nodes[1]).await.expect("GET /cluster");
    println!("GET /cluster: {view}");
    assert!(loaded, "A's load is reported: {view}");
    assert_eq!(node_ids(&view), all);
    assert_eq!(view["rooms"][ROOM], "node-a");

    // A dies. Its heartbeat stops; the room is placed anew when a client asks again.
    nodes[0].kill();
    let killed = Instant::now();
    drop(publisher);
    drop(viewers);
    let whip_b = nodes[1].url("whip");
    let publisher = retry(Duration::from_secs(10), "publisher re-POST to B", || {
        let url = whip_b.clone();
        async move { Publisher::connect(&url, options()).await }
    })
    .await;
    let new_owner = placement(&mut redis).await.expect("placed anew");
    assert_ne!(new_owner, "node-a");
    let owner_base = nodes
        .iter()
        .find(|n| n.id == new_owner)
        .map(|n| n.base.clone())
        .expect("a live node");
    assert!(
        publisher
            .session_url()
            .is_some_and(|u| u.starts_with(&owner_base))
    );
    let mut resumed = Vec::new();
    for node in &nodes[1..] {
        let whep = node.url("whep");
        let viewer = retry(Duration::from_secs(10), "viewer re-POST", || {
            let url = whep.clone();
            async move { Viewer::connect(&url, options()).await }
        })
        .await;
        assert!(
            viewer
                .session_url()
                .is_some_and(|u| u.starts_with(&owner_base))
        );
        first_video(&viewer, killed, Duration::from_secs(10)).await;
        resumed.push(viewer);
    }
    let failover = killed.elapsed();
    println!(
        "failover: node-a killed → room on {new_owner}, publisher and both viewers receiving again in {} ms",
        failover.as_millis()
    );
    assert!(
        failover < Duration::from_secs(10),
        "resumed within 10 s: {failover:?}"
    );
    let view = cluster_view(&nodes[2]).await.expect("GET /cluster");
    assert_eq!(
        node_ids(&view),
        ["node-b", "node-c"],
        "A dropped out: {view}"
    );

    // Everyone leaves: the owner releases the placement once the room has stayed empty.
    for viewer in resumed {
        assert_eq!(viewer.close().await.expect("viewer DELETE"), 200);
    }
    assert_eq!(publisher.close().await.expect("publisher DELETE"), 200);
    let emptied = Instant::now();
    let released = eventually(Duration::from_secs(12), || async {
        placement(&mut redis.clone()).await.is_none()
    })
    .await;
    assert!(released, "the empty room's placement is released");
    println!(
        "room empty → placement released in {} ms",
        emptied.elapsed().as_millis()
    );

    // Redis goes away: nodes keep serving, every room locally.
    drop(redis_process);
    let solo = format!("{}/whip/solo", nodes[2].base);
    let alone = Publisher::connect(&solo, options())
        .await
        .expect("a node without Redis still serves");
    assert!(
        alone
            .session_url()
            .is_some_and(|u| u.starts_with(&nodes[2].base))
    );
    println!(
        "cross-node joins: {:?} ms; failover: {} ms",
        joins.iter().map(Duration::as_millis).collect::<Vec<_>>(),
        failover.as_millis()
    );
}

/// The pulls `node` lists in `GET /cluster`: (room, origin URL, packets).
async fn pulls(node: &Node) -> Vec<(String, String, u64)> {
    let Some(view) = cluster_view(node).await else {
        return Vec::new();
    };
    view["pulls"]
        .as_array()
        .map(|p| {
            p.iter()
                .map(|p| {
                    (
                        p["room"].as_str().unwrap_or_default().to_owned(),
                        p["origin"].as_str().unwrap_or_default().to_owned(),
                        p["packets"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// With `--cascade-after 1`, a broadcast published on A is served by B and C to their own
/// viewers: each pulls it from A once (one WHEP session per node pair, whatever the number
/// of viewers; on B, spread over two workers), every viewer decodes it, a late viewer starts
/// at once, and a node whose viewers left ends its pull.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_cascades_once_per_node_pair() {
    huddle_tests::init_logging();
    huddle_client::ensure_crypto_provider();
    let (_redis_process, redis_url) = start_redis();
    let cascade = ["--cascade-after", "1"];
    // B spreads its viewers over two workers: the pulled feed is relayed on between them.
    let spread = [
        "--cascade-after",
        "1",
        "--workers",
        "2",
        "--spread-after",
        "1",
    ];
    let nodes = [
        Node::start_with("node-a", &redis_url, &cascade),
        Node::start_with("node-b", &redis_url, &spread),
        Node::start_with("node-c", &redis_url, &cascade),
    ];
    let mut redis = connect_redis(&redis_url).await;
    let listed = eventually(Duration::from_secs(20), || async {
        cluster_view(&nodes[0])
            .await
            .is_some_and(|v| node_ids(&v).len() == 3)
    })
    .await;
    assert!(listed, "three nodes: {:?}", cluster_view(&nodes[0]).await);

    let publisher = Publisher::connect(&nodes[0].url("whip"), options())
        .await
        .expect("WHIP publisher on A");
    assert_eq!(placement(&mut redis).await.as_deref(), Some("node-a"));
    // A's heartbeat tells the others the room has reached --cascade-after.
    let sized = eventually(Duration::from_secs(6), || async {
        cluster_view(&nodes[1]).await.is_some_and(|v| {
            v["nodes"].as_array().is_some_and(|n| {
                n.iter()
                    .any(|n| n["id"] == "node-a" && n["room_sizes"][ROOM].as_u64() >= Some(1))
            })
        })
    })
    .await;
    assert!(
        sized,
        "A reports the room's size: {:?}",
        cluster_view(&nodes[1]).await
    );

    // Two viewers on B and two on C: their sessions live there.
    let mut viewers = Vec::new();
    for node in [&nodes[1], &nodes[1], &nodes[2], &nodes[2]] {
        let (viewer, took) = view_at(&node.url("whep"), &node.base).await;
        println!(
            "cascaded join: WHEP POST to {} → first video packet in {} ms",
            node.id,
            took.as_millis()
        );
        viewers.push(viewer);
    }
    // A viewer POSTed to A itself is spilled (307) to another node, which serves it.
    let spilled = Viewer::connect(&nodes[0].url("whep"), options())
        .await
        .expect("WHEP viewer via A");
    assert!(
        spilled
            .session_url()
            .is_some_and(|u| !u.starts_with(&nodes[0].base)),
        "A spilled the viewer: {:?}",
        spilled.session_url()
    );
    first_video(&spilled, Instant::now(), Duration::from_secs(10)).await;
    viewers.push(spilled);

    // Let media flow, then compare what crossed each node pair with what was published.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sent_before = publisher.stats();
    let (b0, c0) = (pulls(&nodes[1]).await, pulls(&nodes[2]).await);
    let decoded0: Vec<u64> = viewers
        .iter()
        .map(|v| v.stats().video.frames.decoded)
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent_after = publisher.stats();
    let (b1, c1) = (pulls(&nodes[1]).await, pulls(&nodes[2]).await);
    let sent = (sent_after.video_packets_sent + sent_after.audio_packets_sent)
        - (sent_before.video_packets_sent + sent_before.audio_packets_sent);
    for (node, before, after) in [(&nodes[1], &b0, &b1), (&nodes[2], &c0, &c1)] {
        assert_eq!(after.len(), 1, "{} pulls the room once: {after:?}", node.id);
        let (room, origin, packets) = &after[0];
        assert_eq!(room, ROOM);
        assert!(origin.starts_with(&nodes[0].base), "from A: {origin}");
        let carried = packets - before.first().map_or(0, |p| p.2);
        println!(
            "node-a → {}: {carried} packets over its one pull while the publisher sent {sent} \
             ({:.2} per published packet)",
            node.id,
            carried as f64 / sent as f64
        );
        assert!(
            carried as f64 <= sent as f64 * 1.1 && carried as f64 >= sent as f64 * 0.8,
            "each published packet crosses to {} once: {carried} vs {sent}",
            node.id
        );
    }
    for (v, before) in viewers.iter().zip(&decoded0) {
        let st = v.stats();
        assert!(
            st.video.frames.decoded > before + 30,
            "every viewer decodes: {:?}",
            st.video.frames
        );
        assert_eq!(st.video.payload_mismatches, 0, "payloads arrive intact");
        assert!(st.audio.packets > 0, "audio too");
    }
    // A counts its publisher and the two pulls, not the five viewers.
    let a_size = eventually(Duration::from_secs(6), || async {
        cluster_view(&nodes[0]).await.is_some_and(|v| {
            v["nodes"].as_array().is_some_and(|n| {
                n.iter()
                    .any(|n| n["id"] == "node-a" && n["room_sizes"][ROOM].as_u64() == Some(3))
            })
        })
    })
    .await;
    assert!(a_size, "A hosts 3: {:?}", cluster_view(&nodes[0]).await);

    // A late viewer on B decodes at once (the pull asks A for a keyframe, or B's cache has one).
    let asked = Instant::now();
    let late = Viewer::connect(&nodes[1].url("whep"), options())
        .await
        .expect("late viewer on B");
    let decoded = eventually(Duration::from_secs(3), || async {
        late.stats().video.frames.decoded > 0
    })
    .await;
    println!(
        "late viewer on node-b: first decoded frame after {} ms",
        late.stats()
            .video
            .frames
            .decode_times
            .first()
            .map_or(0, |t| (*t - asked).as_millis())
    );
    assert!(decoded, "the late viewer decodes: {:?}", late.stats().video);

    // C's viewers leave: C ends its pull; B keeps its own.
    let mut keep = Vec::new();
    for v in viewers {
        if v.session_url()
            .is_some_and(|u| u.starts_with(&nodes[2].base))
        {
            v.close().await.expect("DELETE the session on C");
        } else {
            keep.push(v);
        }
    }
    let ended = eventually(Duration::from_secs(10), || async {
        pulls(&nodes[2]).await.is_empty()
    })
    .await;
    assert!(ended, "C's pull ended: {:?}", pulls(&nodes[2]).await);
    assert_eq!(pulls(&nodes[1]).await.len(), 1, "B still pulls");
    drop(keep);
    drop(late);
}
