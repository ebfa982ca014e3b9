//! The system under test: how peers publish and view, and which process to measure.
//!
//! [`Sut`] is all a scenario needs, so another SFU can be driven by implementing it: huddle
//! speaks WHIP/WHEP ([`ExternalHuddle`], [`HuddleProcess`]); Janus's VideoRoom has its own
//! HTTP API ([`crate::janus::JanusProcess`]).

use std::future::Future;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use huddle_client::{ClientError, ClientOptions, Publisher, Viewer};

use crate::server_window::ServerCounters;

/// Why a publish or view did not work.
#[derive(Debug, thiserror::Error)]
pub enum SutError {
    /// The WebRTC client failed (signalling over HTTP, SDP, ICE/DTLS).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Janus's HTTP API refused or broke its protocol.
    #[error("Janus: {0}")]
    Janus(#[from] crate::janus::JanusError),
    /// The scenario asked for something this SUT does not have (a room without publisher…).
    #[error("{0}")]
    Unsupported(String),
}

/// What [`Sut`]'s operations return: owned, so scenarios can spawn them.
pub type SutFuture<T> = Pin<Box<dyn Future<Output = Result<T, SutError>> + Send + 'static>>;

/// The server's own counters, when it has them ([`Sut::counters`]).
pub type CountersFuture = Pin<Box<dyn Future<Output = Option<ServerCounters>> + Send + 'static>>;

/// Something that forwards WebRTC media from publishers to viewers.
pub trait Sut: Send + Sync {
    /// Short name for reports.
    fn name(&self) -> &str;
    /// Connects a publisher into `room` (huddle: WHIP).
    fn publish(&self, room: &str, opts: ClientOptions) -> SutFuture<Publisher>;
    /// Connects a viewer of `room`'s publisher (huddle: WHEP). The viewer's
    /// [`Viewer::signaled_at`] is when signalling completed.
    fn view(&self, room: &str, opts: ClientOptions) -> SutFuture<Viewer>;
    /// Releases what the SUT still holds for `room` once its peers are closed.
    fn end_room(&self, _room: &str) -> SutFuture<()> {
        Box::pin(async { Ok(()) })
    }
    /// huddle's room WebSocket of `room` (`ws://…/rooms/{room}/ws`), if the SUT has one.
    fn room_ws_url(&self, _room: &str) -> Option<String> {
        None
    }
    /// The server's own counters (huddle: `/debug/stats`), `reset` restarting its
    /// residence histograms first; `None` for a SUT without them.
    fn counters(&self, _reset: bool) -> CountersFuture {
        Box::pin(async { None })
    }
    /// The process whose CPU and memory are measured, if known.
    fn pid(&self) -> Option<u32>;
    /// Stops the system if this harness started it (a no-op otherwise).
    fn stop(&mut self);
}

/// huddle's endpoints under `base` (`http://host:port`): WHIP, WHEP and the room WebSocket.
#[derive(Clone, Debug)]
struct HuddleUrls {
    base: String,
}

impl HuddleUrls {
    fn new(base: &str) -> Self {
        HuddleUrls {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn publish(&self, room: &str, opts: ClientOptions) -> SutFuture<Publisher> {
        let url = format!("{}/whip/{room}", self.base);
        Box::pin(async move { Ok(Publisher::connect(&url, opts).await?) })
    }

    fn view(&self, room: &str, opts: ClientOptions) -> SutFuture<Viewer> {
        let url = format!("{}/whep/{room}", self.base);
        Box::pin(async move { Ok(Viewer::connect(&url, opts).await?) })
    }

    fn room_ws_url(&self, room: &str) -> String {
        // http → ws, https → wss.
        format!("{}/rooms/{room}/ws", self.base.replacen("http", "ws", 1))
    }

    fn counters(&self, reset: bool) -> CountersFuture {
        let base = self.base.clone();
        Box::pin(async move { crate::server_window::fetch(&base, reset).await })
    }
}

/// A huddle server that is already running (`--url`), not started or stopped by us.
#[derive(Debug)]
pub struct ExternalHuddle {
    urls: HuddleUrls,
    pid: Option<u32>,
}

impl ExternalHuddle {
    /// `base` is `http://host:port`; `pid` (`--server-pid`) enables CPU/RSS measurement.
    pub fn new(base: &str, pid: Option<u32>) -> Self {
        ExternalHuddle {
            urls: HuddleUrls::new(base),
            pid,
        }
    }
}

impl Sut for ExternalHuddle {
    fn name(&self) -> &str {
        "huddle (external)"
    }
    fn publish(&self, room: &str, opts: ClientOptions) -> SutFuture<Publisher> {
        self.urls.publish(room, opts)
    }
    fn view(&self, room: &str, opts: ClientOptions) -> SutFuture<Viewer> {
        self.urls.view(room, opts)
    }
    fn room_ws_url(&self, room: &str) -> Option<String> {
        Some(self.urls.room_ws_url(room))
    }
    fn counters(&self, reset: bool) -> CountersFuture {
        self.urls.counters(reset)
    }
    fn pid(&self) -> Option<u32> {
        self.pid
    }
    fn stop(&mut self) {}
}

/// A `huddle` binary started as a child process on loopback, killed on [`Sut::stop`] or drop.
#[derive(Debug)]
pub struct HuddleProcess {
    child: Option<Child>,
    urls: HuddleUrls,
    pid: u32,
    name: &'static str,
}

/// The `huddle` binary next to this executable: `target/release/huddle`, else `target/debug/huddle`.
pub fn default_huddle_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let target = dir.parent()?.to_path_buf();
    [
        dir.join("huddle"),
        target.join("release").join("huddle"),
        target.join("debug").join("huddle"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

pub(crate) fn free_tcp_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A UDP port whose TCP counterpart is free as well: huddle listens for ICE over TCP on its
/// UDP port.
fn free_udp_port() -> std::io::Result<u16> {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
}

impl HuddleProcess {
    /// Starts `bin` on free loopback ports without access tokens or per-address limits
    /// (pinned to `pin` with `taskset -c` if given, `extra` appended to its arguments) and
    /// waits up to 20 s for `GET /healthz`.
    pub async fn start(bin: &Path, pin: Option<usize>, extra: &[String]) -> Result<Self, String> {
        let http = SocketAddr::from(([127, 0, 0, 1], free_tcp_port().map_err(|e| e.to_string())?));
        let udp = SocketAddr::from(([127, 0, 0, 1], free_udp_port().map_err(|e| e.to_string())?));
        let mut cmd = match pin {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--http")
            .arg(http.to_string())
            .arg("--udp")
            .arg(udp.to_string())
            .arg("--no-auth")
            // Every peer comes from 127.0.0.1: the per-address limits would refuse the load.
            .args(["--max-sessions-per-ip", "1000000"])
            .args(["--posts-per-second-per-ip", "1000000"])
            .args(extra)
            .env_remove("HUDDLE_TOKEN")
            .env_remove("HUDDLE_PUBLIC_IP")
            .env(
                "RUST_LOG",
                std::env::var("HUDDLE_LOADTEST_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        // `taskset -c CPU prog` execs prog, so the pid stays the server's.
        let pid = child.id();
        let mut me = HuddleProcess {
            child: Some(child),
            urls: HuddleUrls::new(&format!("http://{http}")),
            pid,
            name: "huddle",
        };
        if let Err(e) = wait_healthy(&me.urls.base, Duration::from_secs(20)).await {
            me.stop();
            return Err(e);
        }
        Ok(me)
    }

    pub fn base_url(&self) -> &str {
        &self.urls.base
    }
}

/// Polls `GET {base}/healthz` until it answers 200, at most `timeout`.
pub async fn wait_healthy(base: &str, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "{base}/healthz not healthy within {timeout:?}: {last}"
    ))
}

impl HuddleProcess {
    /// The same server under another name in reports (started with other arguments).
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
}

impl Sut for HuddleProcess {
    fn name(&self) -> &str {
        self.name
    }
    fn publish(&self, room: &str, opts: ClientOptions) -> SutFuture<Publisher> {
        self.urls.publish(room, opts)
    }
    fn view(&self, room: &str, opts: ClientOptions) -> SutFuture<Viewer> {
        self.urls.view(room, opts)
    }
    fn room_ws_url(&self, room: &str) -> Option<String> {
        Some(self.urls.room_ws_url(room))
    }
    fn counters(&self, reset: bool) -> CountersFuture {
        self.urls.counters(reset)
    }
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|_| self.pid)
    }
    /// SIGINT (huddle shuts down gracefully on Ctrl-C), then SIGKILL after 3 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        interrupt_then_kill(&mut child, self.pid, Duration::from_secs(3));
    }
}

/// SIGINT to a started server, then SIGKILL if it has not exited within `grace`.
pub(crate) fn interrupt_then_kill(child: &mut Child, pid: u32, grace: Duration) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for HuddleProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
