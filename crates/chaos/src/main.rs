//! `fpr-chaos`: kill the services and storm the upstreams, then count what went wrong.
//! `cargo run --release -p fpr-chaos` runs both phases with counts that meet the goal;
//! see `fpr-chaos --help`. The last line reads
//! `kills=… storm_shipments=… lost=… duplicate_orders=… duplicate_registrations=… duplicate_pins=… stuck=… parked=…`
//! (then `pin_unknown=…`, PIN deliveries whose answer was lost and that were reported rather
//! than repeated; see `Report::pin_unknown`), and the exit code is 1 when any count from
//! `lost` to `parked` is not 0.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Crash and fault harness for fpr (NO SECURITY: starts sandbox services on loopback).
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    serve: Option<Serve>,
    /// Users ordered in the kill phase.
    #[arg(long, default_value_t = 160)]
    users: usize,
    /// Orchestrator processes killed (SIGKILL) in the kill phase.
    #[arg(long, default_value_t = 105)]
    kills: usize,
    /// Vault processes killed (SIGKILL) in the kill phase.
    #[arg(long, default_value_t = 35)]
    vault_kills: usize,
    /// Latency added to every upstream call in the kill phase, in milliseconds.
    #[arg(long, default_value_t = 80)]
    latency_ms: u64,
    /// Shipments ordered in the fault storm (0: no storm).
    #[arg(long, default_value_t = 500)]
    storm: usize,
    /// Share of upstream calls that fail in the storm.
    #[arg(long, default_value_t = 0.3)]
    storm_rate: f64,
    /// Seconds processing may take to finish after each phase's ordering.
    #[arg(long, default_value_t = 600)]
    settle_s: u64,
    /// Skip the kill phase.
    #[arg(long)]
    no_kills: bool,
    /// Skip the disk phase (the orchestrator's store on a tmpfs that fills up, goes
    /// read-only, then gets room; it needs root to mount and says so otherwise).
    #[arg(long)]
    no_disk: bool,
    /// Print progress.
    #[arg(long, short)]
    verbose: bool,
    /// Run the orchestrator with `okta.resend_pin_when_unknown = true`: a send-pin whose
    /// answer was lost is asked again, so `pin_unknown` turns into possible `duplicate_pins`.
    #[arg(long)]
    okta_resend_pin_when_unknown: bool,
}

/// The services, run by this same binary as separate processes.
#[derive(Subcommand, Debug)]
enum Serve {
    /// The sandbox (as `fpr sandbox`).
    #[command(hide = true)]
    Sandbox(fpr_sandbox::cli::Cli),
    /// The vault (as `fpr vault`).
    #[command(hide = true)]
    Vault(fpr_vault::cli::Cli),
    /// The orchestrator (as `fpr orchestrator`).
    #[command(hide = true)]
    Orchestrator(fpr_orchestrator::cli::Cli),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FPR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fpr-chaos: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        match cli.serve {
            Some(Serve::Vault(c)) => fpr_vault::cli::main(c).await,
            Some(Serve::Orchestrator(c)) => fpr_orchestrator::cli::main(c).await,
            Some(Serve::Sandbox(c)) => match fpr_sandbox::cli::main(c).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fpr-chaos sandbox: {e:#}");
                    ExitCode::FAILURE
                }
            },
            None => match run(&cli).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("fpr-chaos: {e:#}");
                    ExitCode::from(2)
                }
            },
        }
    })
}

async fn run(cli: &Cli) -> anyhow::Result<bool> {
    let exe = std::env::current_exe()?;
    let o = fpr_chaos::Options {
        users: cli.users,
        kills: cli.kills,
        vault_kills: cli.vault_kills,
        latency_ms: cli.latency_ms,
        storm: cli.storm,
        storm_rate: cli.storm_rate,
        settle: Duration::from_secs(cli.settle_s),
        verbose: cli.verbose,
        okta_resend_pin_when_unknown: cli.okta_resend_pin_when_unknown,
    };
    let started = std::time::Instant::now();
    let kill = if cli.no_kills {
        fpr_chaos::Report::default()
    } else {
        let r = fpr_chaos::kill_phase(&exe, &o).await?;
        println!(
            "kill phase: {} kills, {} SIGTERMs ({} unclean), {} users: {r} ({:.0} s)",
            r.kills,
            r.terms.0,
            r.terms.1,
            r.shipments,
            started.elapsed().as_secs_f64()
        );
        for n in &r.notes {
            println!("  {n}");
        }
        r
    };
    let storm = if cli.storm == 0 {
        fpr_chaos::Report::default()
    } else {
        let t = std::time::Instant::now();
        let r = fpr_chaos::storm_phase(&exe, &o).await?;
        println!(
            "storm: {} shipments at {:.0} % faults: {r} ({:.0} s)",
            r.shipments,
            cli.storm_rate * 100.0,
            t.elapsed().as_secs_f64()
        );
        for n in &r.notes {
            println!("  {n}");
        }
        r
    };
    let mut disk_ok = true;
    if !cli.no_disk {
        let d = fpr_chaos::disk_phase(&exe).await?;
        match &d.skipped {
            Some(why) => println!("disk: skipped: {why}"),
            None => {
                println!(
                    "disk: {} orders acknowledged before the 1 MiB store was full, {} refused as full, {} other answers; read-only store: {}; after room was made: {} acknowledged missing, {} of 5 new orders accepted",
                    d.acknowledged,
                    d.refused_full,
                    d.unclear,
                    d.read_only_refused.as_deref().map_or(
                        "started anyway".to_owned(),
                        |m| format!("refused to start ({})", m.trim())
                    ),
                    d.missing,
                    d.after
                );
                disk_ok = d.missing == 0 && d.after == 5 && d.refused_full > 0;
            }
        }
        for n in &d.notes {
            println!("  {n}");
        }
    }
    let (k, s) = (kill.gated(), storm.gated());
    let counts: Vec<usize> = k.iter().zip(s).map(|(a, b)| a + b).collect();
    println!(
        "kills={} storm_shipments={} lost={} duplicate_orders={} duplicate_registrations={} duplicate_pins={} stuck={} parked={} pin_unknown={}",
        kill.kills,
        storm.shipments,
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5],
        kill.pin_unknown + storm.pin_unknown
    );
    Ok(disk_ok && kill.terms.1 == 0 && counts.iter().all(|n| *n == 0))
}
