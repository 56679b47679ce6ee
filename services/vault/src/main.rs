//! `fpr-vault`: parse config, build the vault, serve until SIGTERM/SIGINT.

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc, as in `fpr` (decision 0015).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let _telemetry = fpr_telemetry::trace::init("fpr-vault", "info", false, None);
    fpr_vault::cli::main(fpr_vault::cli::Cli::parse()).await
}
