//! The configuration the harness's Janus runs with: written into its own temporary
//! directory, loopback only, the HTTP transport and the VideoRoom plugin and nothing else.

use std::io;
use std::path::{Path, PathBuf};

/// Where Debian (and a source install) put Janus's plugins and transports.
const LIB_DIRS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/janus",
    "/usr/lib/aarch64-linux-gnu/janus",
    "/usr/lib/janus",
    "/opt/janus/lib/janus",
];

pub const VIDEOROOM_PLUGIN: &str = "libjanus_videoroom.so";
pub const HTTP_TRANSPORT: &str = "libjanus_http.so";

/// The directory holding `plugins/libjanus_videoroom.so` and `transports/libjanus_http.so`.
pub fn find_lib_dir() -> Option<PathBuf> {
    LIB_DIRS.iter().map(PathBuf::from).find(|d| {
        d.join("plugins").join(VIDEOROOM_PLUGIN).is_file()
            && d.join("transports").join(HTTP_TRANSPORT).is_file()
    })
}

/// Settings that vary per run.
#[derive(Clone, Debug)]
pub struct JanusConfig {
    /// The HTTP API's port on 127.0.0.1.
    pub http_port: u16,
    /// Janus's log level (0 none … 4 info … 7 huge).
    pub debug_level: u8,
}

/// Writes `janus.jcfg` and the two plugin configs into `dir`, and links the VideoRoom
/// plugin and the HTTP transport from `lib` into `dir/plugins` and `dir/transports`, so
/// Janus loads those two and nothing else. Returns the main config file.
pub fn write(dir: &Path, lib: &Path, c: &JanusConfig) -> io::Result<PathBuf> {
    let plugins = dir.join("plugins");
    let transports = dir.join("transports");
    let empty = dir.join("empty");
    for d in [&plugins, &transports, &empty] {
        std::fs::create_dir_all(d)?;
    }
    std::os::unix::fs::symlink(
        lib.join("plugins").join(VIDEOROOM_PLUGIN),
        plugins.join(VIDEOROOM_PLUGIN),
    )?;
    std::os::unix::fs::symlink(
        lib.join("transports").join(HTTP_TRANSPORT),
        transports.join(HTTP_TRANSPORT),
    )?;
    let d = dir.display();
    let main = format!(
        r#"general: {{
	configs_folder = "{d}"
	plugins_folder = "{d}/plugins"
	transports_folder = "{d}/transports"
	events_folder = "{d}/empty"
	loggers_folder = "{d}/empty"
	debug_level = {level}
	session_timeout = 60
	server_name = "huddle-loadtest"
	interface = "127.0.0.1"
}}
certificates: {{
}}
media: {{
}}
nat: {{
	nice_debug = false
	ice_ignore_list = ""
}}
plugins: {{
}}
transports: {{
}}
loggers: {{
}}
events: {{
}}
"#,
        level = c.debug_level
    );
    let http = format!(
        r#"general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
"#,
        port = c.http_port
    );
    // Rooms are created over the API, one per scenario run.
    let videoroom = "general: {\n}\n";
    let main_path = dir.join("janus.jcfg");
    std::fs::write(&main_path, main)?;
    std::fs::write(dir.join("janus.transport.http.jcfg"), http)?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), videoroom)?;
    Ok(main_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_loopback_config() {
        let dir = std::env::temp_dir().join(format!("janus-config-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lib/plugins")).unwrap();
        std::fs::create_dir_all(dir.join("lib/transports")).unwrap();
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        let c = JanusConfig {
            http_port: 18088,
            debug_level: 2,
        };
        let main = write(&run, &dir.join("lib"), &c).unwrap();
        let text = std::fs::read_to_string(main).unwrap();
        assert!(text.contains("interface = \"127.0.0.1\""));
        let http = std::fs::read_to_string(run.join("janus.transport.http.jcfg")).unwrap();
        assert!(http.contains("port = 18088") && http.contains("ip = \"127.0.0.1\""));
        assert!(run.join("plugins").join(VIDEOROOM_PLUGIN).is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
