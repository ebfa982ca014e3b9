//! Janus 1.1 (Debian's `janus`) as a system under test, for comparison with huddle.
//!
//! [`JanusProcess::start`] writes a loopback-only configuration into a temporary directory
//! ([`config`]), builds the `getifaddrs` shim ([`shim`]) so Janus gathers ICE candidates on
//! 127.0.0.1, and starts `janus` with it preloaded. Peers are huddle-client's: publishing
//! and viewing go through the VideoRoom plugin's HTTP API ([`api`], [`videoroom`]) instead
//! of WHIP/WHEP. One Janus session per room holds the publisher's and every viewer's handle.

pub mod api;
pub mod config;
pub mod shim;
pub mod videoroom;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use huddle_client::{ClientError, ClientOptions, Publisher, Viewer};

use crate::sut::{Sut, SutError, SutFuture, free_tcp_port, interrupt_then_kill};
use api::{JanusHttp, Session};

/// How to install what this module needs.
pub const INSTALL_HINT: &str = "install it with `apt-get install -y janus` (Debian's Janus 1.1)";
/// Longest Janus may take to answer `GET /janus/info` after starting.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest Janus may take to exit after SIGINT before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What can go wrong with Janus.
#[derive(Debug, thiserror::Error)]
pub enum JanusError {
    /// Janus could not be set up or started (not installed, no compiler, bad config…).
    #[error("{0}")]
    Setup(String),
    #[error("HTTP request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("HTTP {0}: {1}")]
    Status(u16, String),
    /// `{"janus":"error"}`.
    #[error("refused ({code}): {reason}")]
    Refused { code: i64, reason: String },
    /// The VideoRoom plugin's `error` / `error_code`.
    #[error("videoroom error {code}: {reason}")]
    Plugin { code: i64, reason: String },
    /// A reply without the fields the API promises.
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("timed out: {0}")]
    Timeout(String),
    /// The session's long poll ended while a request waited for its event.
    #[error("session closed")]
    Closed,
    /// The harness's WebRTC peer failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A room as Janus knows it: its session, number, the publisher's handle and feed.
#[derive(Debug)]
struct JanusRoom {
    session: Session,
    id: u64,
    publisher_handle: u64,
    feed: u64,
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, JanusError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "huddle-loadtest-janus-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| JanusError::Setup(format!("{}: {e}", dir.display())))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `janus` started by the harness on loopback, stopped on [`Sut::stop`] or drop.
#[derive(Debug)]
pub struct JanusProcess {
    child: Option<Child>,
    pid: u32,
    http: Arc<JanusHttp>,
    rooms: Arc<Mutex<HashMap<String, Arc<JanusRoom>>>>,
    next_room: AtomicU64,
    dir: TempDir,
}

/// `name` on `$PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

/// The `janus` binary: `bin` if given, else `janus` on `$PATH`; a clear error if missing.
pub fn find_janus(bin: Option<&Path>) -> Result<PathBuf, JanusError> {
    match bin {
        Some(b) if b.is_file() => Ok(b.to_path_buf()),
        Some(b) => Err(JanusError::Setup(format!(
            "{} does not exist; {INSTALL_HINT}",
            b.display()
        ))),
        None => on_path("janus")
            .ok_or_else(|| JanusError::Setup(format!("janus is not installed: {INSTALL_HINT}"))),
    }
}

impl JanusProcess {
    /// Starts Janus (pinned to `pin` with `taskset -c` if given) with a generated config on a
    /// free loopback port and waits up to 20 s for its HTTP API.
    pub async fn start(bin: Option<&Path>, pin: Option<usize>) -> Result<Self, JanusError> {
        let janus = find_janus(bin)?;
        let lib = config::find_lib_dir().ok_or_else(|| {
            JanusError::Setup(format!(
                "Janus's VideoRoom plugin and HTTP transport not found; {INSTALL_HINT}"
            ))
        })?;
        let dir = TempDir::new()?;
        let shim = shim::build(&dir.0)?;
        let port = free_tcp_port().map_err(|e| JanusError::Setup(format!("free port: {e}")))?;
        let debug_level = std::env::var("HUDDLE_LOADTEST_JANUS_DEBUG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let cfg = config::JanusConfig {
            http_port: port,
            debug_level,
        };
        let main = config::write(&dir.0, &lib, &cfg)
            .map_err(|e| JanusError::Setup(format!("writing Janus config: {e}")))?;
        let log = dir.0.join("janus.log");
        let mut cmd = match pin {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(&janus);
                c
            }
            None => Command::new(&janus),
        };
        cmd.arg("-C")
            .arg(&main)
            .arg("-F")
            .arg(&dir.0)
            .arg("--disable-stdout")
            .arg("-L")
            .arg(&log)
            .arg("--disable-colors")
            .env("LD_PRELOAD", &shim)
            .current_dir(&dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| JanusError::Setup(format!("cannot start {}: {e}", janus.display())))?;
        // `taskset -c CPU prog` execs prog, so the pid stays Janus's.
        let pid = child.id();
        let http = Arc::new(JanusHttp::new(format!("http://127.0.0.1:{port}/janus"))?);
        let mut me = JanusProcess {
            child: Some(child),
            pid,
            http,
            rooms: Arc::default(),
            next_room: AtomicU64::new(1000),
            dir,
        };
        if let Err(e) = me.wait_ready().await {
            let tail = me.log_tail(20);
            me.stop();
            return Err(JanusError::Setup(format!("{e}; Janus log:\n{tail}")));
        }
        Ok(me)
    }

    async fn wait_ready(&mut self) -> Result<(), JanusError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(JanusError::Setup(format!("janus exited: {status}")));
            }
            match self.http.info().await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(JanusError::Setup(format!(
            "Janus's HTTP API not up within {START_TIMEOUT:?}: {last}"
        )))
    }

    /// The last `n` lines of Janus's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.0.join("janus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let skip = lines.len().saturating_sub(n);
        lines.get(skip..).unwrap_or_default().join("\n")
    }

    fn room(&self, room: &str) -> Result<Arc<JanusRoom>, SutError> {
        lock(&self.rooms)
            .get(room)
            .cloned()
            .ok_or_else(|| SutError::Unsupported(format!("no publisher in Janus room {room} yet")))
    }
}

impl Sut for JanusProcess {
    fn name(&self) -> &str {
        "janus"
    }

    /// A new session and room, then `join` + `configure` on the publisher's handle.
    fn publish(&self, room: &str, opts: ClientOptions) -> SutFuture<Publisher> {
        let (http, rooms, name) = (self.http.clone(), self.rooms.clone(), room.to_owned());
        let id = self.next_room.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let session = Session::create(http).await?;
            let handle = session.attach(videoroom::PLUGIN).await?;
            videoroom::create_room(&session, handle, id, opts.video).await?;
            let (publisher, feed) = videoroom::publish(&session, handle, id, opts).await?;
            let r = JanusRoom {
                session,
                id,
                publisher_handle: handle,
                feed,
            };
            lock(&rooms).insert(name, Arc::new(r));
            Ok(publisher)
        })
    }

    /// A subscriber handle on the room's session: `join` with `feed`, answer, `start`.
    fn view(&self, room: &str, opts: ClientOptions) -> SutFuture<Viewer> {
        let r = self.room(room);
        Box::pin(async move {
            let r = r?;
            Ok(videoroom::subscribe(&r.session, r.id, r.feed, opts).await?)
        })
    }

    /// Destroys the room, then the session (and with it every handle).
    fn end_room(&self, room: &str) -> SutFuture<()> {
        let r = lock(&self.rooms).remove(room);
        Box::pin(async move {
            let Some(r) = r else {
                return Ok(());
            };
            let destroyed = videoroom::destroy_room(&r.session, r.publisher_handle, r.id).await;
            match Arc::try_unwrap(r) {
                Ok(r) => r.session.destroy().await?,
                Err(_) => {
                    tracing::debug!("janus room still referenced; its session ends with Janus")
                }
            }
            Ok(destroyed?)
        })
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|_| self.pid)
    }

    /// SIGINT (Janus exits cleanly on it), then SIGKILL after 5 s.
    fn stop(&mut self) {
        lock(&self.rooms).clear();
        let Some(mut child) = self.child.take() else {
            return;
        };
        interrupt_then_kill(&mut child, self.pid, STOP_GRACE);
    }
}

impl Drop for JanusProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
