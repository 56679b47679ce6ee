//! `fpr-orchestrator`: parse config, build, serve until SIGTERM/SIGINT.

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FPR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    fpr_orchestrator::cli::main(fpr_orchestrator::cli::Cli::parse()).await
}
