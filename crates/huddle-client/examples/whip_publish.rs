//! Publishes the embedded real VP8 clip (320x240, 30 fps, looped) plus Opus silence
//! to a WHIP endpoint, e.g. so a browser watching through the SFU has something it can
//! decode.
//!
//! ```text
//! cargo run -p huddle-client --example whip_publish -- <WHIP_URL> [--token T] [--seconds N]
//! ```
//!
//! Runs until Ctrl-C (or N seconds), then DELETEs the session. Exits 1 if connecting
//! fails (printing the HTTP status, if the server answered with one), 2 on bad usage.
//! `RUST_LOG=debug` shows the peer's traces.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use huddle_client::{ClientError, ClientOptions, Publisher, VideoCodec, VideoSource};

const USAGE: &str = "usage: whip_publish <WHIP_URL> [--token T] [--seconds N]";

struct Args {
    url: String,
    token: Option<String>,
    seconds: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut token = None;
    let mut seconds = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--token" => token = Some(it.next().ok_or("--token needs a value")?),
            "--seconds" => {
                let v = it.next().ok_or("--seconds needs a value")?;
                seconds = Some(v.parse().map_err(|_| format!("bad --seconds {v:?}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if url.is_none() => url = Some(a),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(Args {
        url: url.ok_or("missing WHIP_URL")?,
        token,
        seconds,
    })
}

/// The local address the OS would use to reach the WHIP server (so the host candidate
/// is reachable from it); loopback if that cannot be worked out.
async fn local_ip_towards(url: &str) -> IpAddr {
    let fallback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let Ok(url) = reqwest::Url::parse(url) else {
        return fallback;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return fallback;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(mut addrs) = tokio::net::lookup_host((host, port)).await else {
        return fallback;
    };
    let Some(server) = addrs.find(|a| a.is_ipv4()) else {
        return fallback;
    };
    std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.connect(server).and_then(|()| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(fallback)
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };

    let opts = ClientOptions {
        token: args.token,
        video: Some(VideoCodec::Vp8),
        audio: true,
        video_source: VideoSource::Clip,
        // Reach a server on another host too, not only on loopback.
        bind_ip: local_ip_towards(&args.url).await,
        ..ClientOptions::default()
    };
    println!("publishing to {}", args.url);
    let publisher = match Publisher::connect(&args.url, opts).await {
        Ok(p) => p,
        Err(ClientError::Http { status, body }) => {
            eprintln!("error: WHIP POST failed with HTTP {status}: {body}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("session {}", publisher.session_url().unwrap_or("-"));
    if let Err(e) = publisher.wait_connected(Duration::from_secs(15)).await {
        eprintln!("error: {e}");
        let _ = publisher.close().await;
        return ExitCode::FAILURE;
    }
    println!("connected");

    let started = Instant::now();
    // Without --seconds: effectively forever.
    let run_for = Duration::from_secs(args.seconds.unwrap_or(100 * 365 * 86_400));
    let stop = tokio::time::sleep(run_for);
    tokio::pin!(stop);
    let mut report = tokio::time::interval(Duration::from_secs(5));
    report.tick().await;
    let mut lost = false;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                println!("interrupted");
                break;
            }
            _ = &mut stop => break,
            _ = report.tick() => {
                let s = publisher.stats();
                println!(
                    "{:>4}s connected={} video {} pkts / {} bytes, {} keyframes, \
                     {} keyframe requests, audio {} pkts",
                    started.elapsed().as_secs(),
                    s.connected,
                    s.video_packets_sent,
                    s.video_bytes_sent,
                    s.keyframes_sent,
                    s.keyframe_requests,
                    s.audio_packets_sent,
                );
                if !s.connected {
                    eprintln!("error: connection lost");
                    lost = true;
                    break;
                }
            }
        }
    }
    match publisher.close().await {
        Ok(status) => println!("DELETE session: HTTP {status}"),
        Err(e) => eprintln!("DELETE session failed: {e}"),
    }
    if lost {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
