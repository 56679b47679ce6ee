//! The orchestrator's command line (`fpr-orchestrator …`, also `fpr orchestrator …`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{Error, config, scheduler, server};

/// The fpr orchestrator: ShipmentService and its jobs.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// TOML config file; the seed's variables (YE_API_BASE_URL, AZURE_TENANT_ID, …) override it.
    #[arg(long, short, env = "FPR_ORCHESTRATOR_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do.
#[derive(Subcommand, Debug, Clone, Copy)]
pub enum Command {
    /// Serve ShipmentService and run the jobs (the default).
    Serve,
    /// Check the config (every setting, before anything binds) and exit.
    Check,
    /// Print the OpenAPI 3.1 document of the REST API (also served at `/openapi.json`).
    Openapi,
}

/// Runs the command; the exit code is 64 for a bad setting.
pub async fn main(cli: Cli) -> ExitCode {
    match run(cli).await {
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
    if let Some(Command::Openapi) = cli.command {
        println!("{}", crate::rest::openapi_pretty());
        return Ok(());
    }
    let Some(path) = cli.config else {
        return Err(Error::Config {
            key: "--config".into(),
            reason: "required (or FPR_ORCHESTRATOR_CONFIG)".into(),
        });
    };
    let cfg = config::Config::load(&path, &config::Env)?;
    if let Some(f) = fpr_telemetry::trace::LogFormat::parse(&cfg.log_format) {
        fpr_telemetry::trace::set_log_format(f);
    }
    fpr_config::danger::warn_if_armed();
    if let Some(Command::Check) = cli.command {
        println!("config ok: {}", path.display());
        return Ok(());
    }
    let built = server::build(&cfg, server::vault_channel(&cfg.vault_socket)?).await?;
    let jobs = scheduler::start(
        built.service.clone(),
        &cfg.jobs.process_schedule,
        &cfg.jobs.cleanup_schedule,
        cfg.jobs.cleanup_completed_days,
    );
    let workflow = built.service.workflow().clone();
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
    println!("fpr-orchestrator listening on {}", listener.local_addr()?);
    if let Some(m) = built.metrics_addr() {
        println!("fpr-orchestrator metrics on http://{m}/metrics");
    }
    if let Some(rest) = built.rest_addr() {
        println!("fpr-orchestrator REST API on {rest}");
    }
    // In-flight calls finish; the processing job stops between steps, then the jobs end.
    server::serve(built, listener, fpr_config::shutdown_signal()).await?;
    workflow.drain(std::time::Duration::from_secs(20)).await;
    jobs.iter().for_each(|j| j.abort());
    Ok(())
}
