//! The sandbox's command line (`fpr-sandbox …`, also `fpr sandbox serve …`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{Clock, Config, Sandbox};

/// The fpr sandbox: YubiEnterprise, Yubico fulfilment, Entra ID / Graph, Okta and a PIN mailbox.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// HTTP listen address.
    #[arg(
        global = true,
        long,
        default_value = "127.0.0.1:8380",
        env = "FPR_SANDBOX_LISTEN"
    )]
    listen: SocketAddr,
    /// SMTP mailbox listen address.
    #[arg(
        global = true,
        long,
        default_value = "127.0.0.1:2525",
        env = "FPR_SANDBOX_SMTP"
    )]
    smtp: SocketAddr,
    /// Keys and snapshot directory.
    #[arg(
        global = true,
        long,
        default_value = "./fpr-data/sandbox",
        env = "FPR_SANDBOX_DATA"
    )]
    data_dir: PathBuf,
    /// Shipment clock: instant, manual, or realistic.
    #[arg(global = true, long, default_value = "instant")]
    clock: String,
    /// Speed-up of the realistic clock (3600 = one hour per second).
    #[arg(global = true, long, default_value_t = 3600.0)]
    speedup: f64,
    /// Extra generated users.
    #[arg(global = true, long, default_value_t = 0)]
    seed_users: usize,
    /// The URL callers use when it is not the listen address (e.g. http://sandbox:8380 in a
    /// container network): token issuers and JWKS links use it.
    #[arg(global = true, long, env = "FPR_SANDBOX_PUBLIC_URL")]
    public_url: Option<String>,
    /// Graph requests per second before 429.
    #[arg(global = true, long)]
    graph_rate: Option<u32>,
}

/// What to do.
#[derive(Subcommand, Debug, Clone, Copy)]
pub enum Command {
    /// Serve the sandbox (the default).
    Serve,
}

/// Serves until SIGTERM/SIGINT, then saves the snapshot.
pub async fn main(cli: Cli) -> anyhow::Result<()> {
    let clock = Clock::from_name(&cli.clock, cli.speedup).map_err(anyhow::Error::msg)?;
    let config = Config {
        data_dir: Some(cli.data_dir),
        clock,
        seed_users: cli.seed_users,
        graph_rate_per_s: cli.graph_rate,
        smtp_listen: Some(cli.smtp),
        public_url: cli.public_url,
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
    fpr_config::shutdown_signal().await;
    running.stop().await;
    println!("fpr-sandbox stopped; state saved");
    Ok(())
}
