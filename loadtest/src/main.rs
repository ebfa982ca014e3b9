use clap::Parser;
use huddle_loadtest::cli::{Cli, execute};
use huddle_loadtest::procstat::pin_current_thread;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Pinned before the runtime exists, so every thread it spawns inherits the affinity.
    if let Some(cpu) = cli.common.pin_harness
        && let Err(e) = pin_current_thread(cpu)
    {
        eprintln!("huddle-loadtest: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.common.harness_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("huddle-loadtest: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(execute(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huddle-loadtest: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
