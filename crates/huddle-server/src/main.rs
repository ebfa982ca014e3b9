use clap::Parser;
use huddle_server::{Config, Server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                EnvFilter::new("huddle=info,huddle_server=info,huddle_core=info")
            }),
        )
        .init();
    let config = Config::parse();
    let server = match Server::start(config.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("huddle: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("huddle is running");
    println!(
        "  call page (open in a browser):            {}/  (or {}/room/demo)",
        server.base_url(),
        server.base_url()
    );
    println!(
        "  WHIP (publish, e.g. OBS → Service: WHIP): {}",
        server.whip_url("{room}")
    );
    println!(
        "  WHEP (watch):                              {}",
        server.whep_url("{room}")
    );
    println!(
        "  example room:  {}  /  {}",
        server.whip_url("demo"),
        server.whep_url("demo")
    );
    println!(
        "  media:  udp {} (advertised to clients as {})",
        server.udp_addr, server.advertised
    );
    match config.token() {
        Some(t) => println!("  auth:   Authorization: Bearer {t}"),
        None => println!(
            "  auth:   none (open to anyone who can reach it; pass --token to require a Bearer token)"
        ),
    }
    println!("  health: {}/healthz", server.base_url());
    match server.run_until(stop_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huddle: {e}");
            std::process::ExitCode::FAILURE
        }
    }
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
