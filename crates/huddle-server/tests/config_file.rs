//! The binary's configuration: the annotated `huddle.example.toml` loads, precedence is flags >
//! environment > file > defaults, mistakes stop it with the file and key named, the start-up
//! self-check prints the advertised candidates, and `--log-format json` writes JSON lines.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use huddle_server::config::file::parse_text;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../huddle.example.toml")
}

#[test]
fn the_example_file_loads_and_validates() {
    let path = example();
    let text = std::fs::read_to_string(&path).expect("huddle.example.toml at the repository root");
    let c = parse_text(&path, &text, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.udp.port(), 50000);
    assert!(c.ice_tcp);
    assert_eq!(
        c.public_ip,
        vec!["203.0.113.10".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(c.turn.len(), 3);
    assert_eq!(c.turn_ttl, Duration::from_secs(12 * 3600));
    assert_eq!(c.limits.max_room_participants, 100);
    c.validate()
        .unwrap_or_else(|e| panic!("the example must be a valid configuration: {e}"));
}

/// Lines the binary prints, from both pipes, with the child.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_huddle"));
    cmd.args(args)
        .env_remove("HUDDLE_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("huddle starts");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    for pipe in [
        Box::new(out) as Box<dyn std::io::Read + Send>,
        Box::new(err),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (child, rx)
}

/// Lines until one contains `until` (or 20 s pass).
fn lines_until(rx: &mpsc::Receiver<String>, until: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(until);
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    lines
}

#[test]
fn flags_beat_environment_beat_file_and_the_self_check_prints_candidates() {
    // The file binds 0.0.0.0 with public-ip 203.0.113.10; the environment moves UDP to
    // loopback and names a busy-looking HTTP port that the flag overrides.
    let path = example();
    let (mut child, rx) = spawn(
        &["--config", path.to_str().unwrap(), "--http", "127.0.0.1:0"],
        &[
            ("HUDDLE_HTTP", "127.0.0.1:9"),
            ("HUDDLE_UDP", "127.0.0.1:0"),
            ("HUDDLE_WORKERS", "1"),
            ("HUDDLE_LOG_FORMAT", "text"),
        ],
    );
    let lines = lines_until(&rx, "health:");
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    println!("{text}");
    assert!(
        text.contains("health: http://127.0.0.1:"),
        "the flag's HTTP address: {text}"
    );
    assert!(
        !text.contains("127.0.0.1:9/"),
        "not the environment's: {text}"
    );
    let candidate = lines
        .iter()
        .find(|l| l.contains("candidate: udp"))
        .unwrap_or_else(|| panic!("a candidate line: {text}"));
    assert!(
        candidate.contains("candidate: udp 203.0.113.10:")
            && candidate.contains("socket 127.0.0.1:"),
        "the file's public-ip on the environment's UDP bind: {candidate}"
    );
    assert!(
        text.contains("turn:turn.example.org:3478?transport=udp"),
        "{text}"
    );
}

#[test]
fn a_loopback_bind_advertises_loopback_and_an_unspecified_one_an_interface() {
    let (mut child, rx) = spawn(
        &[
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--no-auth",
            "--workers",
            "1",
        ],
        &[],
    );
    let lines = lines_until(&rx, "health:");
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    println!("--- loopback bind:\n{text}");
    assert!(text.contains("candidate: udp 127.0.0.1:"), "{text}");
    assert!(
        !text.contains("warning:"),
        "no warning for loopback on loopback: {text}"
    );

    let (mut child, rx) = spawn(
        &[
            "--http",
            "127.0.0.1:0",
            "--udp",
            "0.0.0.0:0",
            "--no-auth",
            "--workers",
            "1",
        ],
        &[],
    );
    let lines = lines_until(&rx, "health:");
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    println!("--- 0.0.0.0 bind:\n{text}");
    let usable: Vec<_> = huddle_server::selfcheck::interfaces()
        .into_iter()
        .filter(|i| i.ip.is_ipv4() && !i.ip.is_loopback())
        .collect();
    for i in &usable {
        assert!(
            text.contains(&format!("candidate: udp {}:", i.ip)),
            "every IPv4 interface address is advertised, {} ({}) too: {text}",
            i.ip,
            i.name
        );
    }
    if !usable.is_empty() {
        let candidate = lines
            .iter()
            .find(|l| l.contains("candidate: udp"))
            .unwrap_or_else(|| panic!("a candidate line: {text}"));
        assert!(
            candidate.contains("address from interface") && !candidate.contains("udp 127."),
            "an interface address, not loopback: {candidate}"
        );
    } else {
        assert!(text.contains("no non-loopback IPv4 address"), "{text}");
    }
}

#[test]
fn mistakes_in_the_file_stop_the_server_with_the_key_named() {
    let dir = std::env::temp_dir().join(format!("huddle-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "max-rooms = \"many\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(["--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml: `max-rooms`") && err.contains("many"),
        "{err}"
    );
    std::fs::write(&file, "turn = [\"turn:127.0.0.1:3478\"]\nno-auth = true\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--turn needs --turn-secret"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (mut child, rx) = spawn(
        &[
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--no-auth",
            "--log-format",
            "json",
        ],
        &[("RUST_LOG", "huddle_server=debug")],
    );
    let start = lines_until(&rx, "health:");
    let addr = start
        .iter()
        .find_map(|l| l.trim().strip_prefix("health: http://"))
        .map(|u| u.trim_end_matches("/healthz").to_owned())
        .unwrap_or_else(|| panic!("the health URL: {start:?}"));
    // A refused request (415) is logged at debug.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut s,
        b"POST /whip/room HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut response = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut response);
    assert!(response.starts_with("HTTP/1.1 415"), "{response}");
    let lines: Vec<String> =
        std::iter::from_fn(|| rx.recv_timeout(Duration::from_millis(500)).ok())
            .take(50)
            .collect();
    let _ = child.kill();
    let _ = child.wait();
    let json: Vec<&String> = lines.iter().filter(|l| l.starts_with('{')).collect();
    assert!(
        !json.is_empty(),
        "a JSON log line for the refused request: {lines:?}"
    );
    for line in &json {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
    }
    println!("a JSON log line: {}", json[0]);
}
