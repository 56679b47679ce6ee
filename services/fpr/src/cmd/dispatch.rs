//! Each subcommand, run: the admin calls, the batch, the demo, the bench and the services.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use fpr::client::{self, Target};
use fpr::ops::{self, Action, OutputMode};
use fpr::request::Fields;
use fpr_proto::v1 as pb;

use super::args::{Cli, Command, parse_idp_flag};
use super::banner::run_up;

pub(crate) async fn run(cli: Cli) -> anyhow::Result<u8> {
    let target = Target {
        addr: cli.addr.clone(),
        ca_file: cli.ca_file.clone(),
        token_file: cli.token_file.clone(),
    };
    let out = OutputMode { json: cli.json };
    let sandbox_token = match &cli.token_from_sandbox {
        Some(url)
            if !matches!(
                cli.command,
                Command::Up { .. }
                    | Command::Bench { .. }
                    | Command::Demo { .. }
                    | Command::Vault(_)
                    | Command::Orchestrator(_)
                    | Command::Sandbox(_)
            ) && client::token(target.token_file.as_deref())?.is_none() =>
        {
            Some(fpr::sandbox_caller_token(url).await?)
        }
        _ => None,
    };
    let connect = || match &sandbox_token {
        Some(t) => client::with_token(&target, t),
        None => client::connect(&target),
    };
    match cli.command {
        Command::Up {
            data_dir,
            sandbox,
            smtp,
            listen,
            rest,
            metrics,
            clock,
            speedup,
            seed_users,
        } => {
            run_up(fpr::UpSettings {
                data_dir,
                sandbox,
                smtp,
                orchestrator: listen,
                rest,
                metrics,
                clock: fpr_sandbox::Clock::from_name(&clock, speedup)
                    .map_err(anyhow::Error::msg)?,
                seed_users,
            })
            .await?
        }
        Command::Demo {
            sandbox,
            entra,
            okta,
            timeout,
            self_contained,
        } => {
            let mut opts = fpr::demo::Options {
                sandbox,
                entra,
                okta,
                timeout: Duration::from_secs(timeout),
            };
            let ok = if self_contained {
                let dir = tempfile::tempdir()?;
                let any: SocketAddr = ([127, 0, 0, 1], 0).into();
                let running = fpr::start_all(&fpr::UpSettings {
                    data_dir: dir.path().to_owned(),
                    sandbox: any,
                    smtp: any,
                    orchestrator: any,
                    rest: any,
                    metrics: any,
                    clock: fpr_sandbox::Clock::Realistic { speedup: 36000.0 },
                    seed_users: 20,
                })
                .await?;
                opts.sandbox = running.sandbox_url.clone();
                let c = client::with_token(
                    &Target {
                        addr: format!("http://{}", running.orchestrator),
                        ..target.clone()
                    },
                    &running.token,
                )?;
                let ok = fpr::demo::run(&c, &opts).await;
                running.stop().await;
                ok?
            } else {
                let c = match client::token(target.token_file.as_deref())? {
                    Some(_) => connect()?,
                    None => {
                        let token = fpr::sandbox_caller_token(&opts.sandbox).await?;
                        client::with_token(&target, &token)?
                    }
                };
                fpr::demo::run(&c, &opts).await?
            };
            return Ok(if ok { 0 } else { 1 });
        }
        Command::Status => return ops::status(connect()?, out).await,
        Command::Catalog => ops::catalog(connect()?, out).await?,
        Command::Ship {
            idp,
            user,
            idempotency_key,
            dry_run,
            columns,
        } => {
            let mut f = columns.fields();
            f.set("idp", Some(idp));
            f.set("user_id", Some(user));
            let key = match idempotency_key {
                Some(k) => k,
                None => format!("ship-{}", fpr::request::random_id()?),
            };
            f.set("idempotency_key", Some(key));
            let mut req = match fpr::request::build(&f, &Fields::default(), "ship") {
                Ok(r) => r,
                Err(problems) => {
                    for p in problems {
                        eprintln!("--{}: {}", p.column.replace('_', "-"), p.rule);
                    }
                    eprintln!("nothing was ordered");
                    return Ok(fpr::batch::EX_DATAERR);
                }
            };
            req.validate_only = dry_run;
            let c = connect()?;
            ops::warn_credits(&c, &[(ops::bucket_of(&req), 1)].into()).await;
            ops::ship(&c, req, out).await?;
        }
        Command::Batch {
            file,
            concurrency,
            result,
            batch_id,
            dry_run,
            idp,
            columns,
        } => {
            let mut defaults = columns.fields();
            defaults.set("idp", idp);
            let opts = fpr::batch::Options {
                file,
                concurrency,
                result,
                batch_id,
                dry_run,
                defaults,
                timings: None,
            };
            return fpr::batch::run(&connect()?, &opts, out.json).await;
        }
        Command::GroupOrder {
            idp,
            group,
            yes,
            concurrency,
            result,
            batch_id,
            columns,
        } => {
            let opts = fpr::group::Options {
                idp,
                group,
                columns: columns.fields(),
                batch_id,
                concurrency,
                result,
                yes,
            };
            return fpr::group::run(&connect()?, &opts, out.json).await;
        }
        Command::Get { id } => ops::get(connect()?, id, out).await?,
        Command::List {
            state,
            user,
            idp,
            since,
            until,
            limit,
        } => {
            let state = match state.as_deref() {
                None => pb::ShipmentState::Unspecified,
                Some("ongoing") => pb::ShipmentState::Ongoing,
                Some("complete") => pb::ShipmentState::Complete,
                Some("error") => pb::ShipmentState::Error,
                Some("canceled") => pb::ShipmentState::Canceled,
                Some(v) => {
                    anyhow::bail!("--state: ongoing, complete, error or canceled, got {v:?}")
                }
            };
            let req = pb::ListShipmentsRequest {
                state: state as i32,
                user_id: user.unwrap_or_default(),
                idp: parse_idp_flag(idp.as_deref())? as i32,
                created_after: since.as_deref().map(fpr::output::parse_time).transpose()?,
                created_before: until.as_deref().map(fpr::output::parse_time).transpose()?,
                page_size: 0,
                page_token: String::new(),
            };
            ops::list(connect()?, req, limit, out).await?
        }
        Command::Watch { id } => ops::watch(connect()?, id, out).await?,
        Command::Update { id, columns } => {
            ops::act(
                connect()?,
                Action::Update(Box::new(columns.update(id)?)),
                out,
            )
            .await?
        }
        Command::Cancel { id, reason } => {
            let r = pb::CancelShipmentRequest {
                shipment_id: id,
                reason,
            };
            ops::act(connect()?, Action::Cancel(r), out).await?
        }
        Command::Retry { id } => {
            let r = pb::RetryShipmentRequest { shipment_id: id };
            ops::act(connect()?, Action::Retry(r), out).await?
        }
        Command::Complete { id, reason } => {
            let r = pb::CompleteShipmentRequest {
                shipment_id: id,
                reason,
            };
            ops::act(connect()?, Action::Complete(r), out).await?
        }
        Command::ResendPin { id } => {
            let r = pb::ResendPinRequest { shipment_id: id };
            ops::act(connect()?, Action::ResendPin(r), out).await?
        }
        Command::ProcessNow => ops::process_now(connect()?, out).await?,
        Command::Keys { vault_socket } => ops::keys(&vault_socket, out).await?,
        Command::Health {
            vault_socket,
            service,
        } => {
            let channel = match &vault_socket {
                Some(p) => fpr_orchestrator::server::vault_channel(p)?,
                None => client::channel(&target)?,
            };
            return ops::health(channel, service, out).await;
        }
        Command::Bench {
            users,
            concurrency,
            process_concurrency,
            timeout,
        } => {
            let f = fpr::bench::run(&fpr::bench::Options {
                exe: std::env::current_exe()?,
                users,
                concurrency,
                process_concurrency,
                timeout: Duration::from_secs(timeout),
            })
            .await?;
            for (goal, met) in f.goals() {
                println!("goal {} {goal}", if met { "met    " } else { "MISSED " });
            }
            println!("{f}");
            return Ok(u8::from(f.errors > 0));
        }
        Command::Vault(c) => return Ok(exit_code(fpr_vault::cli::main(c).await)),
        Command::Orchestrator(c) => {
            return Ok(exit_code(fpr_orchestrator::cli::main(c).await));
        }
        Command::Sandbox(c) => fpr_sandbox::cli::main(c).await?,
    }
    Ok(0)
}

fn exit_code(code: ExitCode) -> u8 {
    if code == ExitCode::SUCCESS {
        0
    } else if code == ExitCode::from(64) {
        64
    } else {
        1
    }
}
