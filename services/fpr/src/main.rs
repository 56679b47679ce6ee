//! `fpr`: the fpr command. `fpr up` runs the whole system on the embedded default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// fpr: pre-registered FIDO2 security keys, shipped.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sandbox + vault + orchestrator in one process, data under ./fpr-data (NO SECURITY: for a first run).
    Up {
        /// Data directory.
        #[arg(long, default_value = "./fpr-data")]
        data_dir: PathBuf,
        /// Sandbox HTTP address.
        #[arg(long, default_value = "127.0.0.1:8380")]
        sandbox: SocketAddr,
        /// Sandbox SMTP mailbox address.
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp: SocketAddr,
        /// Orchestrator gRPC address.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FPR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Cli::parse().command {
        Command::Up {
            data_dir,
            sandbox,
            smtp,
            listen,
        } => {
            let running = fpr::up(&fpr::Up {
                data_dir,
                sandbox,
                smtp,
                orchestrator: listen,
            })
            .await?;
            let o = running.orchestrator;
            println!("fpr is up (NO SECURITY: sandbox upstreams, for trying fpr out)");
            println!(
                "  orchestrator  grpc://{o}   (fpr.v1.ShipmentService; health and reflection open)"
            );
            println!("  vault         unix:{}", running.vault_socket.display());
            println!(
                "  sandbox       {}   (YubiEnterprise, Entra ID, Okta; admin API under /_sandbox/)",
                running.sandbox_url
            );
            println!("  PIN mailbox   {}/_sandbox/mailbox", running.sandbox_url);
            println!();
            println!("Caller token (sandbox tenant, 1 hour):");
            println!("export TOKEN={}", running.token);
            println!();
            println!("Try:");
            println!("  grpcurl -plaintext {o} list fpr.v1.ShipmentService");
            println!(
                "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {o} fpr.v1.ShipmentService/GetStatus"
            );
            println!("  curl -s {}/_sandbox/users?idp=entra", running.sandbox_url);
            println!("Stop with Ctrl-C.");
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            running.stop().await;
            println!("fpr stopped");
        }
    }
    Ok(())
}
