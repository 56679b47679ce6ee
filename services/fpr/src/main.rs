//! `fpr`: the fpr command. `fpr up` runs the whole system on the embedded default; the admin
//! subcommands call a running orchestrator over gRPC; `fpr vault|orchestrator|sandbox serve`
//! run one service each for split deployments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use fpr::client::{self, Target};
use fpr::ops::{self, Action, Out};
use fpr::request::Fields;
use fpr_proto::v1 as pb;

/// fpr: pre-registered FIDO2 security keys, shipped.
///
/// Admin subcommands call the orchestrator at --addr with a caller token from --token-file,
/// FPR_TOKEN or TOKEN (after `fpr up`, ./fpr-data/caller-token is used when none is given).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The orchestrator (http:// or https://).
    #[arg(
        long,
        global = true,
        env = "FPR_ADDR",
        default_value = "http://127.0.0.1:7400"
    )]
    addr: String,
    /// PEM CA of the orchestrator's certificate, for https.
    #[arg(long, global = true, env = "FPR_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// File holding the caller token (a bearer JWT from your IdP).
    #[arg(long, global = true, env = "FPR_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// With no token given, get one from this sandbox's tenant (sandbox deployments only).
    #[arg(long, global = true, env = "FPR_TOKEN_FROM_SANDBOX")]
    token_from_sandbox: Option<String>,
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
        /// Orchestrator REST API address (the FIDO Connector's /v1 API).
        #[arg(long, default_value = "127.0.0.1:7480")]
        rest: SocketAddr,
        /// Prometheus metrics address (/metrics).
        #[arg(long, default_value = "127.0.0.1:7490")]
        metrics: SocketAddr,
        /// The sandbox's shipment clock: realistic (Yubico locks, ships and delivers as in
        /// life, sped up), instant (shipped on first read) or manual (until the admin API says).
        #[arg(long, default_value = "realistic")]
        clock: String,
        /// Speed-up of the realistic clock: 36000 ships a key about 3 s after the order.
        #[arg(long, default_value_t = 36000.0)]
        speedup: f64,
        /// Generated sandbox users beyond the named ones (half Entra ID, half Okta).
        #[arg(long, default_value_t = 20)]
        seed_users: usize,
    },
    /// Order keys for sandbox users of both IdPs and follow them to the end (needs `fpr up`, or --self-contained).
    Demo {
        /// The sandbox's URL.
        #[arg(long, default_value = "http://127.0.0.1:8380")]
        sandbox: String,
        /// Entra ID users to order for.
        #[arg(long, default_value_t = 3)]
        entra: usize,
        /// Okta users to order for.
        #[arg(long, default_value_t = 2)]
        okta: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Start sandbox, vault and orchestrator in this process (in a temporary directory) first.
        #[arg(long)]
        self_contained: bool,
    },
    /// Version, settings and the health of every dependency (exit 1 when one is failing).
    Status,
    /// Order a key for one user.
    Ship {
        /// entra or okta.
        #[arg(long)]
        idp: String,
        /// Entra object id or UPN; Okta id or login.
        #[arg(long)]
        user: String,
        /// Makes a retried command return the first result (default: a new random key).
        #[arg(long)]
        idempotency_key: Option<String>,
        /// Check every field on the orchestrator; order nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        columns: Columns,
    },
    /// Order keys for every row of a CSV (header names as the `ship` flags, with underscores).
    ///
    /// Every row is checked first (here, then on the orchestrator); while any row is bad every
    /// bad row is listed with its line and column and nothing is ordered (exit 65). Rerunning
    /// the same file orders nothing twice: each row's idempotency key is its idempotency_key
    /// column, or derived from --batch-id, the IdP and the user.
    Batch {
        /// The CSV file.
        file: PathBuf,
        /// Orders in flight at once (1 to 64).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Result CSV [default: <file stem>.result.csv beside the input].
        #[arg(long)]
        result: Option<PathBuf>,
        /// Prefix of derived idempotency keys [default: the file's stem]; change it to order
        /// again for the same users.
        #[arg(long)]
        batch_id: Option<String>,
        /// Check every row; order nothing.
        #[arg(long)]
        dry_run: bool,
        /// IdP of rows without an idp column.
        #[arg(long)]
        idp: Option<String>,
        #[command(flatten)]
        columns: Columns,
    },
    /// One shipment.
    Get {
        /// fpr's shipment id.
        id: String,
    },
    /// Shipments, newest first.
    List {
        /// ongoing, complete, error or canceled.
        #[arg(long)]
        state: Option<String>,
        /// Only this user (as given at creation).
        #[arg(long)]
        user: Option<String>,
        /// entra or okta.
        #[arg(long)]
        idp: Option<String>,
        /// Created at or after (RFC 3339 or a date).
        #[arg(long)]
        since: Option<String>,
        /// Created before (RFC 3339 or a date).
        #[arg(long)]
        until: Option<String>,
        /// At most this many (0: all).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Follow one shipment until it ends.
    Watch {
        /// fpr's shipment id.
        id: String,
    },
    /// Change recipient, address or delivery type while YubiEnterprise allows edits.
    ///
    /// The recipient and the address are each replaced whole: give all of a part's fields.
    Update {
        /// fpr's shipment id.
        id: String,
        #[command(flatten)]
        columns: Columns,
    },
    /// Cancel a shipment (at YubiEnterprise while it is editable).
    Cancel {
        /// fpr's shipment id.
        id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Resume a shipment in error from its last good step.
    Retry {
        /// fpr's shipment id.
        id: String,
    },
    /// Mark a shipment complete by hand.
    Complete {
        /// fpr's shipment id.
        id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Send the PIN again.
    ResendPin {
        /// fpr's shipment id.
        id: String,
    },
    /// Run the shipment processing job now.
    ProcessNow,
    /// The Yubico transport and signing keys the vault has pinned (over the vault's socket).
    Keys {
        /// The vault's Unix socket.
        #[arg(
            long,
            env = "FPR_VAULT_SOCKET",
            default_value = "./fpr-data/vault/run/vault.sock"
        )]
        vault_socket: PathBuf,
    },
    /// gRPC health of the orchestrator at --addr, or of the vault at --vault-socket.
    ///
    /// Exit 0 when SERVING: for container health checks and exec probes.
    Health {
        /// Check the vault on this Unix socket instead of the orchestrator.
        #[arg(long)]
        vault_socket: Option<PathBuf>,
        /// The service name to check ("" = the server as a whole).
        #[arg(long, default_value = "")]
        service: String,
    },
    /// Time the whole order path as deployed: sandbox, vault and orchestrator as three
    /// processes, N users ordered with the batch path and processed to the end.
    ///
    /// Prints as its last line: users= accept_per_s= e2e_s= create_p50_ms= create_p99_ms=
    /// orchestrator_rss_mb= vault_rss_mb= store_bytes_per_shipment= floor_s= (exit 1 when a
    /// shipment did not complete).
    Bench {
        /// Users to order for (half Entra ID, half Okta).
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// CreateShipment calls in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// The orchestrator's jobs.process_concurrency [default: the orchestrator's default].
        #[arg(long)]
        process_concurrency: Option<usize>,
        /// Give up waiting for processing after this many seconds.
        #[arg(long, default_value_t = 900)]
        timeout: u64,
    },
    /// The vault service (`fpr vault serve --config vault.toml`, and its key commands).
    Vault(fpr_vault::cli::Cli),
    /// The orchestrator service (`fpr orchestrator serve --config orchestrator.toml`).
    Orchestrator(fpr_orchestrator::cli::Cli),
    /// The sandbox of every upstream (`fpr sandbox serve`).
    Sandbox(fpr_sandbox::cli::Cli),
}

/// Order columns as flags (`fpr ship`, defaults for `fpr batch`, `fpr update`).
#[derive(Args, Debug, Clone, Default)]
struct Columns {
    /// Recipient's first name (at most 15).
    #[arg(long, alias = "firstname")]
    recipient_firstname: Option<String>,
    /// Recipient's last name (at most 20).
    #[arg(long, alias = "lastname")]
    recipient_lastname: Option<String>,
    /// Recipient's e-mail for tracking.
    #[arg(long, alias = "email")]
    recipient_email: Option<String>,
    /// Recipient's telephone.
    #[arg(long, alias = "telephone")]
    recipient_telephone: Option<String>,
    /// Recipient's company (at most 20).
    #[arg(long, alias = "company")]
    recipient_company: Option<String>,
    /// Street, first line.
    #[arg(long)]
    street_line1: Option<String>,
    /// Street, second line.
    #[arg(long)]
    street_line2: Option<String>,
    /// City.
    #[arg(long)]
    city: Option<String>,
    /// Region (2 letters for US and CA).
    #[arg(long)]
    region: Option<String>,
    /// Postal code.
    #[arg(long)]
    postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    #[arg(long, alias = "country")]
    country_code_2: Option<String>,
    /// YubiKey model (1, 29, 54, 55).
    #[arg(long)]
    product_id: Option<String>,
    /// Inventory bucket.
    #[arg(long)]
    inventory_product_id: Option<String>,
    /// Customization id from Yubico onboarding.
    #[arg(long)]
    customization_id: Option<String>,
    /// 1 normal, 2 expedited.
    #[arg(long)]
    delivery_type: Option<String>,
    /// PIN digits (4 to 63; default 8).
    #[arg(long)]
    pin_length: Option<String>,
    /// Ask for forcePINChange (true/false).
    #[arg(long)]
    force_pin_change: Option<String>,
    /// PIN recipients instead of the manager, separated by ';'.
    #[arg(long, alias = "pin-to")]
    emails_to: Option<String>,
}

impl Columns {
    fn fields(&self) -> Fields {
        let mut f = Fields::default();
        for (name, v) in [
            ("recipient_firstname", &self.recipient_firstname),
            ("recipient_lastname", &self.recipient_lastname),
            ("recipient_email", &self.recipient_email),
            ("recipient_telephone", &self.recipient_telephone),
            ("recipient_company", &self.recipient_company),
            ("street_line1", &self.street_line1),
            ("street_line2", &self.street_line2),
            ("city", &self.city),
            ("region", &self.region),
            ("postal_code", &self.postal_code),
            ("country_code_2", &self.country_code_2),
            ("product_id", &self.product_id),
            ("inventory_product_id", &self.inventory_product_id),
            ("customization_id", &self.customization_id),
            ("delivery_type", &self.delivery_type),
            ("pin_length", &self.pin_length),
            ("force_pin_change", &self.force_pin_change),
            ("emails_to", &self.emails_to),
        ] {
            f.set(name, v.clone());
        }
        f
    }

    fn update(&self, id: String) -> anyhow::Result<pb::UpdateShipmentRequest> {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let recipient = [
            &self.recipient_firstname,
            &self.recipient_lastname,
            &self.recipient_email,
            &self.recipient_telephone,
            &self.recipient_company,
        ]
        .iter()
        .any(|v| v.is_some())
        .then(|| pb::Recipient {
            recipient_company: s(&self.recipient_company),
            recipient_email: s(&self.recipient_email),
            recipient_firstname: s(&self.recipient_firstname),
            recipient_lastname: s(&self.recipient_lastname),
            recipient_telephone: s(&self.recipient_telephone),
        });
        let mailing_address = [
            &self.street_line1,
            &self.street_line2,
            &self.city,
            &self.region,
            &self.postal_code,
            &self.country_code_2,
        ]
        .iter()
        .any(|v| v.is_some())
        .then(|| pb::MailingAddress {
            street_line1: s(&self.street_line1),
            street_line2: s(&self.street_line2),
            city: s(&self.city),
            region: s(&self.region),
            postal_code: s(&self.postal_code),
            country_code_2: s(&self.country_code_2).to_ascii_uppercase(),
        });
        let delivery_type = match &self.delivery_type {
            None => 0,
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("--delivery-type: 1 or 2, got {v:?}"))?,
        };
        Ok(pb::UpdateShipmentRequest {
            shipment_id: id,
            recipient,
            mailing_address,
            delivery_type,
        })
    }
}

fn parse_idp_flag(v: Option<&str>) -> anyhow::Result<pb::Idp> {
    match v {
        None => Ok(pb::Idp::Unspecified),
        Some(v) => fpr::request::parse_idp(v)
            .ok_or_else(|| anyhow::anyhow!("--idp: entra or okta, got {v:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A service logs its steps; `up` and the client commands only what goes wrong.
    let service = matches!(
        cli.command,
        Command::Vault(_) | Command::Orchestrator(_) | Command::Sandbox(_)
    );
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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
        match run(cli).await {
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

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let target = Target {
        addr: cli.addr.clone(),
        ca_file: cli.ca_file.clone(),
        token_file: cli.token_file.clone(),
    };
    let out = Out { json: cli.json };
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
            up(fpr::Up {
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
                let running = fpr::up(&fpr::Up {
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
                None => format!("ship-{}", fpr_jose::util::random_id()?),
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
            ops::ship(&connect()?, req, out).await?;
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

async fn up(cfg: fpr::Up) -> anyhow::Result<()> {
    // A closed terminal (SIGHUP) stops it too: the in-process vault would otherwise take the
    // signal as "re-read the master key" and leave it running with nobody to stop it. Listened
    // for before the banner, so that a SIGHUP sent as soon as the banner shows is not missed.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let running = fpr::up(&cfg).await?;
    let o = running.orchestrator;
    println!("fpr is up (NO SECURITY: sandbox upstreams, for trying fpr out)");
    println!("  orchestrator  grpc://{o}   (fpr.v1.ShipmentService; health and reflection open)");
    println!(
        "  rest          http://{}   (the FIDO Connector's /v1 API; /openapi.json)",
        running.rest
    );
    println!(
        "  metrics       http://{}/metrics   (Prometheus: vault and orchestrator)",
        running.metrics
    );
    println!(
        "  vault         unix:{}   (grpcurl: -unix -authority localhost)",
        running.vault_socket.display()
    );
    println!(
        "  sandbox       {}   (YubiEnterprise, Entra ID, Okta; admin API under /_sandbox/)",
        running.sandbox_url
    );
    println!("  PIN mailbox   {}/_sandbox/mailbox", running.sandbox_url);
    println!();
    println!(
        "Caller token (sandbox tenant, 1 hour; kept fresh in {}):",
        running.token_file.display()
    );
    println!("export TOKEN={}", running.token);
    println!();
    println!("Try:");
    println!("  cargo run --release -p fpr -- demo");
    println!("  cargo run --release -p fpr -- status");
    println!("  grpcurl -plaintext {o} list fpr.v1.ShipmentService");
    println!(
        "  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {o} fpr.v1.ShipmentService/GetStatus"
    );
    println!(
        "  curl -s -H \"authorization: Bearer $TOKEN\" http://{}/v1/status",
        running.rest
    );
    println!("  curl -s {}/_sandbox/users?idp=entra", running.sandbox_url);
    println!("Stop with Ctrl-C.");
    tokio::select! {
        () = fpr_config::shutdown_signal() => {}
        _ = hup.recv() => {}
    }
    running.stop().await;
    println!("fpr stopped");
    Ok(())
}
