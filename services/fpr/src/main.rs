//! `fpr`: the fpr command. `fpr up` runs the whole system on the embedded default; the admin
//! subcommands call a running orchestrator over gRPC; `fpr vault|orchestrator|sandbox serve`
//! run one service each for split deployments.

mod cmd;

use std::process::ExitCode;

use clap::Parser as _;

use cmd::args::{Cli, Command};

/// glibc's malloc and free were a sixth of the CPU of ordering a batch (decision 0015).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A service logs its steps; `up` and the client commands only what goes wrong.
    let service = matches!(
        cli.command,
        Command::Vault(_) | Command::Orchestrator(_) | Command::Sandbox(_)
    );
    // The services (and `up` and `demo`, which run them) want every core; a client command
    // waits on the network, and one thread does that with less waking and handing over than
    // a pool (a batch's calls go out and come back sooner).
    let in_process = service || matches!(cli.command, Command::Up { .. } | Command::Demo { .. });
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut builder = if in_process {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fpr: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The trace exporter's connection lives on the runtime: made inside it, flushed before it
    // ends.
    let telemetry = {
        let _inside = rt.enter();
        fpr_telemetry::trace::init("fpr", if service { "info" } else { "warn" }, true, None)
    };
    let code = rt.block_on(async move {
        match cmd::dispatch::run(cli).await {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("fpr: {e:#}");
                ExitCode::FAILURE
            }
        }
    });
    drop(telemetry);
    code
}
