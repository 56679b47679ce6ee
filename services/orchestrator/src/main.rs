//! `fpr-orchestrator`: parse config, build, serve until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fpr_orchestrator::{Error, config, scheduler, server};

/// The fpr orchestrator: ShipmentService and its jobs.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML config file; the seed's variables (YE_API_BASE_URL, AZURE_TENANT_ID, …) override it.
    #[arg(long, short, env = "FPR_ORCHESTRATOR_CONFIG")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FPR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ Error::Config { .. }) => {
            eprintln!("fpr-orchestrator: {e}");
            ExitCode::from(64)
        }
        Err(e) => {
            eprintln!("fpr-orchestrator: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let cfg = config::Config::load(&cli.config, &config::Env)?;
    let built = server::build(&cfg, server::vault_channel(&cfg.vault_socket)?).await?;
    let jobs = scheduler::start(
        built.service.clone(),
        &cfg.jobs.process_schedule,
        &cfg.jobs.cleanup_schedule,
        cfg.jobs.cleanup_completed_days,
    );
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
    println!("fpr-orchestrator listening on {}", listener.local_addr()?);
    server::serve(built, listener, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {}
        }
    })
    .await?;
    jobs.iter().for_each(|j| j.abort());
    Ok(())
}
