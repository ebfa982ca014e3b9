#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use huddle_server::auth::{Claims, Grant, Signer};
use huddle_server::config::file::FileError;
use huddle_server::config::{LogFormat, parse_duration};
use huddle_server::{Config, Server};
use tracing_subscriber::EnvFilter;

/// huddle: a selective forwarding unit for WebRTC — browser calls, WHIP publishers, WHEP
/// viewers.
#[derive(Debug, Parser)]
#[command(name = "huddle", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print an access token signed with --jwt-secret (HUDDLE_JWT_SECRET).
    Token(TokenArgs),
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The room it is for (`*`: any room).
    #[arg(long)]
    room: String,
    /// Who the bearer is: the name others see.
    #[arg(long)]
    identity: String,
    /// What it allows (repeat for several).
    #[arg(long = "grant", value_enum, required = true)]
    grants: Vec<Grant>,
    /// How long it is valid: 90s, 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Flags over environment over the file (`--config`, HUDDLE_CONFIG) over defaults.
    let cli: Cli = match huddle_server::config::file::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(FileError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("huddle: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(cli.config.log_format);
    if let Some(Command::Token(t)) = cli.command {
        return print_token(&cli.config, &t);
    }
    let server = match Server::start(cli.config.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("huddle: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    announce(&server, &cli.config);
    match server.run_until(stop_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huddle: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Log lines as text or JSON, at the levels `RUST_LOG` sets (default: info for huddle).
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("huddle=info,huddle_server=info,huddle_core=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn print_token(config: &Config, t: &TokenArgs) -> std::process::ExitCode {
    let Some(secret) = config.jwt_secret() else {
        eprintln!("huddle token: set --jwt-secret or HUDDLE_JWT_SECRET to the server's secret");
        return std::process::ExitCode::FAILURE;
    };
    let claims = Claims::new(&t.identity, &t.room, t.grants.clone(), t.ttl);
    match Signer::new(secret).issue(&claims) {
        Ok(token) => {
            println!("{token}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("huddle token: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What a newcomer needs: the URLs to open or paste, and how they are authorized.
fn announce(server: &Server, config: &Config) {
    let day = Duration::from_secs(86_400);
    let member = server.issue_token("guest", "demo", vec![Grant::Publish, Grant::Subscribe], day);
    println!("huddle is running");
    let page = match (&member, server.has_dev_secret()) {
        (Some(token), true) => format!("{}/room/demo?token={token}", server.base_url()),
        _ => format!("{}/room/demo", server.base_url()),
    };
    println!("  call page (open in a browser):            {page}");
    println!(
        "  WHIP (publish, e.g. OBS → Service: WHIP): {}",
        server.whip_url("demo")
    );
    println!(
        "  WHEP (watch):                              {}",
        server.whep_url("demo")
    );
    println!("  media (self-check):");
    for line in &server.self_check {
        println!("          {line}");
    }
    if server.has_dev_secret() {
        let publisher = server.issue_token("obs", "demo", vec![Grant::Publish], day);
        let viewer = server.issue_token("viewer", "demo", vec![Grant::Subscribe], day);
        let admin = server.issue_token("admin", "*", vec![Grant::Admin], day);
        println!(
            "  auth:   development credentials for room \"demo\" (valid 24 h; a new secret each start;"
        );
        println!("          loopback only — set --jwt-secret or --token to serve a network):");
        for (what, token) in [
            ("WHIP bearer token", publisher),
            ("WHEP bearer token", viewer),
            ("admin (/metrics, /debug)", admin),
        ] {
            if let Some(token) = token {
                println!("          {what}: {token}");
            }
        }
    } else if config.no_auth {
        println!("  auth:   none (--no-auth: loopback only)");
    } else if let Some(t) = config.token() {
        println!("  auth:   Authorization: Bearer {t} (the static token grants everything)");
    } else {
        println!(
            "  auth:   access tokens signed with --jwt-secret (make them with `huddle token`)"
        );
    }
    let ice: Vec<&str> = config
        .stun
        .iter()
        .chain(&config.turn)
        .map(String::as_str)
        .collect();
    if !ice.is_empty() {
        println!(
            "  ICE servers for clients: {} (TURN credentials valid {} s)",
            ice.join(", "),
            config.turn_ttl.as_secs()
        );
    }
    println!("  health: {}/healthz", server.base_url());
}

/// Ctrl-C, or SIGTERM (what `docker stop` and systemd send).
async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("huddle: cannot wait for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                eprintln!("huddle: cannot wait for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    println!("huddle: shutting down");
}
