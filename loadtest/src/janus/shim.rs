//! The `getifaddrs` shim Janus is started with (`LD_PRELOAD`): its source is
//! `loadtest/janus/lo_only.c`, compiled with `cc -shared -fPIC` when needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::JanusError;

/// The C source, embedded so the harness binary can build it anywhere.
const SOURCE: &str = include_str!("../../janus/lo_only.c");
/// Longest the compiler may take.
const COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

/// Compiles the shim into `dir/lo_only.so` with `cc` (or `$CC`) and returns its path.
pub fn build(dir: &Path) -> Result<PathBuf, JanusError> {
    let src = dir.join("lo_only.c");
    let out = dir.join("lo_only.so");
    std::fs::write(&src, SOURCE).map_err(|e| setup(format!("{}: {e}", src.display())))?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut child = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| setup(format!("cannot run {cc} to build the getifaddrs shim: {e}")))?;
    let deadline = Instant::now() + COMPILE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(out),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(setup(format!("{cc} failed ({status}) on lo_only.c: {err}")));
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(setup(format!("{cc} took over {COMPILE_TIMEOUT:?}")));
            }
            Err(e) => return Err(setup(format!("waiting for {cc}: {e}"))),
        }
    }
}

fn setup(msg: String) -> JanusError {
    JanusError::Setup(msg)
}
