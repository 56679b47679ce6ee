//! The vault's command line (`fpr-vault …`, also `fpr vault …`).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Config, Error, config::Env, keystore::KeyStore, server};
use clap::{Parser, Subcommand};

/// The fpr vault: holds every private key, does all JOSE work, delivers PINs.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// TOML config file; environment variables override it (see the operator guide).
    #[arg(long, short, env = "FPR_VAULT_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the vault (the default).
    Serve,
    /// First run on this machine: a local vault under ./fpr-data/dev with its own dev Yubico
    /// keys and no network (NO SECURITY: for trying the API, not for production).
    Dev {
        /// Directory for keys, store and socket.
        #[arg(long, default_value = "./fpr-data/dev")]
        dir: PathBuf,
        /// Local SMTP port PINs are sent to (plaintext).
        #[arg(long, default_value_t = 2525)]
        smtp_port: u16,
    },
    /// Check the config and the master key, print the key check value, and exit.
    Check,
    /// Write a new random master key to a file (mode 0600); refuses to overwrite.
    GenerateMasterKey {
        /// Where to write it.
        path: PathBuf,
    },
    /// Re-seal every stored key under a new master key (run with the vault stopped), then point
    /// `store.master_key_file` at the new file.
    RotateMasterKey {
        /// File holding the new master key.
        #[arg(long)]
        new_key_file: PathBuf,
    },
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// Audit log commands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the hash chain of an audit log; exits 1 and names the first broken line.
    Verify {
        /// The JSON-lines file (`audit.path`).
        file: PathBuf,
    },
}

const EX_USAGE: u8 = 64;

/// Runs the command; the exit code is 64 for a bad setting.
pub async fn main(cli: Cli) -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ Error::Config { .. }) => {
            eprintln!("fpr-vault: {e}");
            ExitCode::from(EX_USAGE)
        }
        Err(e) => {
            eprintln!("fpr-vault: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    if let Some(Command::GenerateMasterKey { path }) = &cli.command {
        return generate_master_key(path);
    }
    if let Some(Command::Audit(AuditCommand::Verify { file })) = &cli.command {
        return match crate::audit::verify(file)? {
            crate::audit::Verdict::Intact { lines } => {
                println!("{}: intact, {lines} entries", file.display());
                Ok(())
            }
            crate::audit::Verdict::Broken { line, reason } => Err(Error::Audit(format!(
                "{}: chain broken at line {line}: {reason}",
                file.display()
            ))),
        };
    }
    let config = match &cli.command {
        Some(Command::Dev { dir, smtp_port }) => crate::dev::prepare(dir, *smtp_port)?,
        _ => Config::load(cli.config.as_deref(), &Env)?,
    };
    match cli.command {
        None | Some(Command::Serve) | Some(Command::Dev { .. }) => {
            if let Some(f) = fpr_telemetry::trace::LogFormat::parse(&config.server.log_format) {
                fpr_telemetry::trace::set_log_format(f);
            }
            fpr_config::danger::warn_if_armed();
            let service = server::build(&config).await?;
            let listener = server::bind(&config).await?;
            let uids = server::allowed_uids(&config, &listener);
            if let server::Listener::Unix(_, path) = &listener {
                println!(
                    "fpr-vault {} listening on unix:{}",
                    env!("CARGO_PKG_VERSION"),
                    path.display()
                );
                println!(
                    "try: grpcurl -plaintext -unix -authority localhost {} fpr.vault.v1.VaultService/GetStatus",
                    path.display()
                );
            }
            let grace = config.server.shutdown_grace;
            let (metrics_stop, stopped) = tokio::sync::oneshot::channel::<()>();
            if let Some(addr) = server::serve_metrics(&config, async move {
                let _ = stopped.await;
            })
            .await?
            {
                println!("fpr-vault metrics on http://{addr}/metrics");
            }
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let serving = tokio::spawn(server::serve(service, listener, uids, async move {
                let _ = rx.await;
            }));
            fpr_config::shutdown_signal().await;
            let _ = tx.send(());
            let _ = metrics_stop.send(());
            match tokio::time::timeout(grace, serving).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Ok(()),
                Err(_) => {
                    tracing::warn!("Grace period over; exiting with calls in flight");
                    Ok(())
                }
            }
        }
        Some(Command::Check) => {
            let store = KeyStore::open(&config.store.path, server::load_master_key(&config)?)?;
            println!("config ok; master key check value {}", store.check_value());
            Ok(())
        }
        Some(Command::RotateMasterKey { new_key_file }) => {
            let store = KeyStore::open(&config.store.path, server::load_master_key(&config)?)?;
            let text = std::fs::read(&new_key_file).map_err(|source| Error::Io {
                what: format!("read {}", new_key_file.display()),
                source,
            })?;
            let new =
                fpr_jose::seal::MasterKey::from_encoded(&text).map_err(|e| Error::Config {
                    key: "new-key-file".into(),
                    reason: e.to_string(),
                })?;
            let n = store.rotate(new).await?;
            println!(
                "re-sealed {n} keys; new master key check value {}",
                store.check_value()
            );
            Ok(())
        }
        Some(Command::GenerateMasterKey { .. } | Command::Audit(_)) => Ok(()),
    }
}

fn generate_master_key(path: &std::path::Path) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = fpr_jose::seal::MasterKey::generate_hex().map_err(Error::Crypto)?;
    let io = |source| Error::Io {
        what: format!("write {}", path.display()),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(key.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    println!("wrote a new master key to {}", path.display());
    Ok(())
}
