//! `impair-relay`: one [`Relay`] between a peer outside Rust (a browser, aiortc) and huddle,
//! driven over stdin and stdout, one line each way.
//!
//! ```text
//! impair-relay --server 127.0.0.1:40000 [--up SPEC] [--down SPEC] [--seed N]
//! ```
//!
//! It prints `{"client_side":"127.0.0.1:X","server_side":"127.0.0.1:Y"}` once it listens: the
//! peer is given `client_side` as the server's candidate (its traffic then reaches huddle only
//! through the relay, which huddle sees at `server_side`). Then it reads commands:
//!
//! - `set up SPEC` / `set down SPEC`: change a direction from now on (SPEC as in
//!   `huddle_tests::impair` — `none`, `loss=0.05`, `cap=500000`, `bursty=0.05:4`, …);
//!   answers `{"ok":true}` or `{"error":"…"}`;
//! - `stats`: answers `{"up":{…},"down":{…}}`, each direction's counts.
//!
//! It exits when stdin closes (the test that started it ended) or after `--max-seconds`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use huddle_tests::impair::{Direction, Impairment, LinkStats, Relay};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Parser)]
#[command(about = "A seeded UDP impairment relay between one peer and huddle")]
struct Args {
    /// The server's UDP address (its candidate in the answer).
    #[arg(long)]
    server: SocketAddr,
    /// Peer → server impairment.
    #[arg(long, default_value = "none")]
    up: Impairment,
    /// Server → peer impairment.
    #[arg(long, default_value = "none")]
    down: Impairment,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stops by itself after this long, whatever its caller does.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
}

fn stats(s: LinkStats) -> Value {
    json!({
        "received": s.received, "lost": s.lost, "duplicated": s.duplicated,
        "queue_dropped": s.queue_dropped, "reordered": s.reordered,
        "sent": s.sent, "sent_bytes": s.sent_bytes,
    })
}

fn command(relay: &Relay, line: &str) -> Value {
    let mut words = line.trim().splitn(3, ' ');
    match (words.next(), words.next(), words.next().unwrap_or("none")) {
        (Some("stats"), None, _) => json!({
            "up": stats(relay.stats(Direction::Up)),
            "down": stats(relay.stats(Direction::Down)),
        }),
        (Some("set"), Some(d @ ("up" | "down")), spec) => match spec.parse::<Impairment>() {
            Ok(i) => {
                let d = if d == "up" {
                    Direction::Up
                } else {
                    Direction::Down
                };
                relay.set(d, i);
                json!({ "ok": true })
            }
            Err(e) => json!({ "error": e.to_string() }),
        },
        _ => {
            json!({ "error": format!("unknown command {:?} (set up|down SPEC, stats)", line.trim()) })
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let relay = Relay::start(args.server, args.up, args.down, args.seed).await?;
    let mut out = tokio::io::stdout();
    let hello = json!({
        "client_side": relay.client_side().to_string(),
        "server_side": relay.server_side().to_string(),
    });
    out.write_all(format!("{hello}\n").as_bytes()).await?;
    out.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let stop = tokio::time::sleep(Duration::from_secs(args.max_seconds));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => {
                    let answer = command(&relay, &line);
                    out.write_all(format!("{answer}\n").as_bytes()).await?;
                    out.flush().await?;
                }
                None => return Ok(()),
            },
            _ = &mut stop => return Ok(()),
        }
    }
}
