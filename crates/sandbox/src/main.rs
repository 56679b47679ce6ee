//! `fpr-sandbox`: serve the sandbox of every upstream on one port.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use fpr_sandbox::{Clock, Config, Sandbox};

/// The fpr sandbox: YubiEnterprise, Yubico fulfilment, Entra ID / Graph, Okta and a PIN mailbox.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8380", env = "FPR_SANDBOX_LISTEN")]
    listen: SocketAddr,
    /// SMTP mailbox listen address.
    #[arg(long, default_value = "127.0.0.1:2525", env = "FPR_SANDBOX_SMTP")]
    smtp: SocketAddr,
    /// Keys and snapshot directory.
    #[arg(long, default_value = "./fpr-data/sandbox", env = "FPR_SANDBOX_DATA")]
    data_dir: PathBuf,
    /// Shipment clock: instant, manual, or realistic.
    #[arg(long, default_value = "instant")]
    clock: String,
    /// Speed-up of the realistic clock (3600 = one hour per second).
    #[arg(long, default_value_t = 3600.0)]
    speedup: f64,
    /// Extra generated users.
    #[arg(long, default_value_t = 0)]
    seed_users: usize,
    /// Graph requests per second before 429.
    #[arg(long)]
    graph_rate: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FPR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let clock = match cli.clock.as_str() {
        "instant" => Clock::Instant,
        "manual" => Clock::Manual,
        "realistic" => Clock::Realistic {
            speedup: cli.speedup,
        },
        other => anyhow::bail!("--clock must be instant, manual or realistic, not {other:?}"),
    };
    let config = Config {
        data_dir: Some(cli.data_dir),
        clock,
        seed_users: cli.seed_users,
        graph_rate_per_s: cli.graph_rate,
        smtp_listen: Some(cli.smtp),
        ..Config::default()
    };
    let sandbox = Sandbox::new(config)?;
    let running = sandbox
        .serve(tokio::net::TcpListener::bind(cli.listen).await?)
        .await?;
    let smtp = running
        .smtp_addr
        .map(|a| format!("smtp://{a}"))
        .unwrap_or_else(|| "off".into());
    println!(
        "fpr-sandbox listening on {} (PIN mailbox {smtp})",
        running.url()
    );
    println!("settings: curl {}/_sandbox/config", running.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    running.stop().await;
    println!("fpr-sandbox stopped; state saved");
    Ok(())
}
