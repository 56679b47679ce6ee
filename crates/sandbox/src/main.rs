//! `fpr-sandbox`: serve the sandbox of every upstream on one port.

use clap::Parser as _;

/// mimalloc, as in `fpr` (decision 0015).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FPR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    fpr_sandbox::cli::main(fpr_sandbox::cli::Cli::parse()).await
}
