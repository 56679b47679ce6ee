//! fpr-chaos: the order path under crashes and upstream faults, counted.
//!
//! It runs the sandbox, the vault and the orchestrator as three processes (this binary
//! re-executed as each service, built from the same libraries as `fpr`), over real sockets,
//! with on-disk stores, and then:
//! - **kill phase** ([`kill_phase`]): orders users while the orchestrator and the vault are
//!   killed with SIGKILL at random moments and restarted, with every upstream answering
//!   slower so that kills land while work is in flight; then lets processing run to the end;
//! - **fault storm** ([`storm_phase`]): a share of every sandbox route answers 5xx, 429, a
//!   hang past fpr's timeout, a connection dropped after the request was read, or a malformed
//!   2xx; on the mutating routes half of those come *after* the upstream did the work.
//!
//! Then it counts from the sandbox's own records (YubiEnterprise orders per user, IdP
//! registrations per user, PIN mails per shipment) and from fpr (accepted orders missing,
//! shipments still ongoing, shipments in error) into a [`Report`].
//!
//! NO SECURITY: a test tool. Everything binds to 127.0.0.1 port 0 or a Unix socket in a
//! temporary directory, and everything it starts is killed when it is dropped.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fpr_proto::v1 as pb;
use serde_json::{Value, json};

/// Every route of the sandbox that fpr calls, by the names its faults use.
pub const ROUTES: &[&str] = &[
    "ye.create",
    "ye.get",
    "ye.exact",
    "ye.list",
    "ye.products",
    "graph.users",
    "graph.manager",
    "graph.creation_options",
    "graph.fido2_list",
    "graph.fido2_post",
    "entra.token",
    "okta.users",
    "okta.enroll",
    "okta.activate",
    "okta.send_pin",
    "okta.list",
    "okta.delete",
    "okta.mark_error",
];

/// The failures of the storm (see the sandbox's `Fault::mix`).
pub const STORM_MIX: &[&str] = &["500", "503", "429", "timeout", "drop", "malformed"];

/// What a phase found. Every count but `kills` and `shipments` should be 0.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Processes killed with SIGKILL.
    pub kills: usize,
    /// Orchestrator stops with SIGTERM (in-flight calls finish, processing stops between
    /// steps), and how many of them did not exit 0.
    pub terms: (usize, usize),
    /// Shipments ordered.
    pub shipments: usize,
    /// Accepted orders fpr does not have, and complete shipments whose PIN never arrived.
    pub lost: usize,
    /// YubiEnterprise orders beyond one per shipment.
    pub duplicate_orders: usize,
    /// IdP registrations beyond one per user.
    pub duplicate_registrations: usize,
    /// PIN messages beyond one per shipment.
    pub duplicate_pins: usize,
    /// Shipments still ongoing when processing was given up.
    pub stuck: usize,
    /// Shipments in error (every user here is valid, so each needs a person for no reason),
    /// but for `pin_unknown`.
    pub parked: usize,
    /// Shipments in `pin_delivery_unknown`: a PIN delivery whose answer was lost (a kill or a
    /// fault between the send and its record), reported for a person instead of sent twice.
    /// Neither Okta's send-pin nor SMTP keeps a record fpr could read to settle it; counted
    /// apart from `parked` so that this limit of the upstreams stays visible on its own.
    pub pin_unknown: usize,
    /// Error kinds of the parked shipments, and other findings, for the reader.
    pub notes: Vec<String>,
}

impl Report {
    /// The counts that must be 0, in the order of the last line: lost, duplicate_orders,
    /// duplicate_registrations, duplicate_pins, stuck, parked.
    pub fn gated(&self) -> [usize; 6] {
        [
            self.lost,
            self.duplicate_orders,
            self.duplicate_registrations,
            self.duplicate_pins,
            self.stuck,
            self.parked,
        ]
    }
}

impl std::fmt::Display for Report {
    /// The counts as `name=value` pairs (for the phase lines).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost={} duplicate_orders={} duplicate_registrations={} duplicate_pins={} stuck={} parked={} pin_unknown={}",
            self.lost,
            self.duplicate_orders,
            self.duplicate_registrations,
            self.duplicate_pins,
            self.stuck,
            self.parked,
            self.pin_unknown
        )
    }
}

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Users ordered in the kill phase.
    pub users: usize,
    /// Orchestrator kills.
    pub kills: usize,
    /// Vault kills.
    pub vault_kills: usize,
    /// Added latency of every upstream call in the kill phase, in milliseconds.
    pub latency_ms: u64,
    /// Shipments ordered in the storm.
    pub storm: usize,
    /// Share of calls that fail in the storm.
    pub storm_rate: f64,
    /// How long processing may take to finish after the ordering, per phase.
    pub settle: Duration,
    /// Print progress to stderr.
    pub verbose: bool,
    /// Run the orchestrator with `okta.resend_pin_when_unknown` (a lost send-pin answer is
    /// asked again: `pin_unknown` becomes possible `duplicate_pins`).
    pub okta_resend_pin_when_unknown: bool,
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The three services as processes.
pub struct Stack {
    exe: PathBuf,
    dir: tempfile::TempDir,
    /// The sandbox's base URL.
    pub sandbox_url: String,
    /// The orchestrator's gRPC address (`http://127.0.0.1:P`, kept across restarts).
    pub orchestrator_url: String,
    vault_toml: PathBuf,
    orchestrator_toml: PathBuf,
    sandbox: Mutex<Option<Proc>>,
    vault: Mutex<Option<Proc>>,
    orchestrator: Mutex<Option<Proc>>,
    http: reqwest::Client,
    token: String,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

fn put(doc: &mut toml::Table, key: &str, value: toml::Value) {
    fpr_config::set_value(doc, key, value);
}

fn s(v: impl Into<String>) -> toml::Value {
    toml::Value::String(v.into())
}

/// Spawns `exe args…` (with `env`), returns it with the first stdout line containing
/// `marker`; stderr goes to `log`.
fn spawn(
    exe: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    log: &Path,
    marker: &str,
) -> anyhow::Result<(Proc, String)> {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env("FPR_LOG", "warn")
        .env_remove(fpr_config_crash_var())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {args:?}"))?;
    let out = child.stdout.take().context("no stdout")?;
    let proc = Proc(child);
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_owned();
    std::thread::spawn(move || {
        let mut out = BufReader::new(out);
        let mut line = String::new();
        let mut sent = false;
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if !sent && line.contains(&marker) {
                let _ = tx.send(line.clone());
                sent = true;
            }
            line.clear();
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .with_context(|| format!("{args:?} did not start (see {})", log.display()))?;
    Ok((proc, line))
}

fn fpr_config_crash_var() -> &'static str {
    "FPR_DANGER_CRASH_AT"
}

/// How the sandbox's clock runs.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// Shipped on the first read.
    Instant,
    /// Waits for the admin API.
    Manual,
}

// === impl Stack ===

impl Stack {
    /// Starts the sandbox (with `seed_users` extra users), the vault and the orchestrator.
    pub async fn start(exe: &Path, clock: Clock, seed_users: usize) -> anyhow::Result<Self> {
        Self::start_in(exe, clock, seed_users, None, &[]).await
    }

    /// As [`Stack::start`], with the orchestrator's store in `store` (e.g. a small tmpfs)
    /// and these orchestrator settings changed (dotted key, value).
    pub async fn start_in(
        exe: &Path,
        clock: Clock,
        seed_users: usize,
        store: Option<&Path>,
        settings: &[(&str, toml::Value)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        let log = d.join("services.log");
        let seed = seed_users.to_string();
        let clock = match clock {
            Clock::Instant => "instant",
            Clock::Manual => "manual",
        };
        let sandbox_data = d.join("sandbox");
        let (sandbox, line) = spawn(
            exe,
            &[
                "sandbox",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--smtp",
                "127.0.0.1:0",
                "--data-dir",
                path_str(&sandbox_data)?,
                "--clock",
                clock,
                "--seed-users",
                &seed,
            ],
            &[],
            &log,
            "listening on",
        )?;
        // "fpr-sandbox listening on http://127.0.0.1:P (PIN mailbox smtp://127.0.0.1:Q)"
        let url = line
            .split_whitespace()
            .nth(3)
            .context("sandbox start line")?
            .to_owned();
        let smtp_port: i64 = line
            .trim_end()
            .trim_end_matches(')')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .context("sandbox SMTP port")?;

        std::fs::create_dir_all(d.join("vault"))?;
        let key = d.join("vault/master.key");
        let status = Command::new(exe)
            .args(["vault", "generate-master-key", path_str(&key)?])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("generate-master-key failed");
        }
        let socket = d.join("vault/run/vault.sock");
        let mut v = toml::Table::new();
        put(
            &mut v,
            "server.listen",
            s(format!("unix:{}", socket.display())),
        );
        put(&mut v, "store.path", s(path_str(&d.join("vault/store"))?));
        put(&mut v, "store.master_key_file", s(path_str(&key)?));
        put(
            &mut v,
            "yubico.transport_jwks_url",
            s(format!("{url}/.well-known/yubico-transport-keys.jwks")),
        );
        put(
            &mut v,
            "yubico.sign_jwks_url",
            s(format!("{url}/.well-known/yubico-sign.jwks")),
        );
        put(&mut v, "delivery.channel", s("smtp"));
        put(
            &mut v,
            "delivery.allowed_recipient_domains",
            toml::Value::Array(vec![s("contoso.test")]),
        );
        put(&mut v, "delivery.resend_min_interval", s("0s"));
        put(&mut v, "delivery.smtp.host", s("127.0.0.1"));
        put(
            &mut v,
            "delivery.smtp.port",
            toml::Value::Integer(smtp_port),
        );
        put(&mut v, "delivery.smtp.tls", s("none"));
        put(&mut v, "delivery.smtp.from", s("keys@fpr.chaos"));
        put(
            &mut v,
            "danger.allow_plaintext_http",
            toml::Value::Boolean(true),
        );
        put(
            &mut v,
            "danger.allow_plaintext_smtp",
            toml::Value::Boolean(true),
        );
        let vault_toml = d.join("vault.toml");
        std::fs::write(&vault_toml, toml::to_string(&v)?)?;

        // The sandbox wrote its attestation root at start: the orchestrator trusts it, pinned.
        let root = std::fs::read_to_string(sandbox_data.join("attestation-root.pem"))
            .context("the sandbox's attestation root")?;
        let mut o: toml::Table = toml::from_str(&format!(
            "{}{}",
            fpr_sandbox::Config::default().orchestrator_toml(&url, None),
            fpr_sandbox::attestation_toml(&root)
        ))?;
        put(&mut o, "listen", s("127.0.0.1:0"));
        let store = store.map_or_else(|| d.join("orchestrator"), Path::to_owned);
        put(&mut o, "store_path", s(path_str(&store)?));
        put(&mut o, "vault_socket", s(path_str(&socket)?));
        put(&mut o, "upstream_timeout", s("2s"));
        put(&mut o, "reconcile_after", s("2s"));
        put(&mut o, "vault_timeout", s("3s"));
        put(&mut o, "retry.base", s("1s"));
        put(&mut o, "retry.max", s("4s"));
        put(&mut o, "jobs.process_schedule", s("* * * * * *"));
        put(&mut o, "jobs.process_concurrency", toml::Value::Integer(32));
        for (k, v) in settings {
            put(&mut o, k, v.clone());
        }
        let orchestrator_toml = d.join("orchestrator.toml");
        std::fs::write(&orchestrator_toml, toml::to_string(&o)?)?;

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let token = fpr::sandbox_caller_token(&url).await?;
        let mut stack = Self {
            exe: exe.to_owned(),
            sandbox_url: url,
            orchestrator_url: String::new(),
            vault_toml,
            orchestrator_toml,
            sandbox: Mutex::new(Some(sandbox)),
            vault: Mutex::new(None),
            orchestrator: Mutex::new(None),
            http,
            token,
            dir,
        };
        stack.start_vault(None)?;
        let addr = stack.start_orchestrator(None)?;
        // Restarts listen where clients already point.
        put(&mut o, "listen", s(addr.clone()));
        std::fs::write(&stack.orchestrator_toml, toml::to_string(&o)?)?;
        stack.orchestrator_url = format!("http://{addr}");
        Ok(stack)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("services.log")
    }

    /// The services' stderr, for a failing test's message.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Starts the vault (with a crash point armed, if given) and waits until it serves.
    pub fn start_vault(&self, crash_at: Option<&str>) -> anyhow::Result<()> {
        let env: Vec<(&str, &str)> = crash_at
            .map(|c| (fpr_config_crash_var(), c))
            .into_iter()
            .collect();
        let (p, _) = spawn(
            &self.exe,
            &["vault", "serve", "--config", path_str(&self.vault_toml)?],
            &env,
            &self.log(),
            "listening on unix:",
        )?;
        *lock(&self.vault) = Some(p);
        Ok(())
    }

    /// Starts the orchestrator (with a crash point armed, if given) and waits until it
    /// serves; returns its address.
    pub fn start_orchestrator(&self, crash_at: Option<&str>) -> anyhow::Result<String> {
        let env: Vec<(&str, &str)> = crash_at
            .map(|c| (fpr_config_crash_var(), c))
            .into_iter()
            .collect();
        let (p, line) = spawn(
            &self.exe,
            &[
                "orchestrator",
                "serve",
                "--config",
                path_str(&self.orchestrator_toml)?,
            ],
            &env,
            &self.log(),
            "listening on",
        )?;
        *lock(&self.orchestrator) = Some(p);
        Ok(line
            .split_whitespace()
            .last()
            .context("orchestrator start line")?
            .to_owned())
    }

    /// Starts the orchestrator expecting it to refuse to start; returns its exit status
    /// and the last line of the services' log (its own word on why).
    pub fn start_orchestrator_failing(&self) -> anyhow::Result<(std::process::ExitStatus, String)> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())?;
        let status = Command::new(&self.exe)
            .args([
                "orchestrator",
                "serve",
                "--config",
                path_str(&self.orchestrator_toml)?,
            ])
            .env("FPR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .status()?;
        let logs = self.logs();
        Ok((status, logs.lines().last().unwrap_or_default().to_owned()))
    }

    /// SIGKILLs the orchestrator; false when it was not running.
    pub fn kill_orchestrator(&self) -> bool {
        kill(&self.orchestrator)
    }

    /// SIGKILLs the vault; false when it was not running.
    pub fn kill_vault(&self) -> bool {
        kill(&self.vault)
    }

    /// Waits until the orchestrator process ends by itself (a crash point), at most `wait`.
    pub fn orchestrator_exited(&self, wait: Duration) -> bool {
        exited(&self.orchestrator, wait)
    }

    /// Waits until the vault process ends by itself (a crash point), at most `wait`.
    pub fn vault_exited(&self, wait: Duration) -> bool {
        exited(&self.vault, wait)
    }

    /// Sends SIGTERM to the orchestrator and waits for it to exit; its exit status.
    pub fn stop_orchestrator(&self) -> anyhow::Result<std::process::ExitStatus> {
        let mut slot = lock(&self.orchestrator);
        let Some(mut p) = slot.take() else {
            bail!("the orchestrator is not running");
        };
        let pid = p.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let status = p.0.wait()?;
        Ok(status)
    }

    /// A ShipmentService client with a caller token of the sandbox tenant.
    pub fn client(&self) -> anyhow::Result<fpr::client::Client> {
        fpr::client::with_token(
            &fpr::client::Target {
                addr: self.orchestrator_url.clone(),
                ca_file: None,
                token_file: None,
            },
            &self.token,
        )
    }

    /// GET on the sandbox's admin API (`/_sandbox{path}`).
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/_sandbox{path}", self.sandbox_url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// A request to the sandbox's admin API; returns the status.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<u16> {
        let mut r = self
            .http
            .request(method, format!("{}/_sandbox{path}", self.sandbox_url));
        if let Some(b) = body {
            r = r.json(&b);
        }
        Ok(r.send().await?.status().as_u16())
    }

    /// Sets the same fault on every route of [`ROUTES`].
    pub async fn fault_everywhere(&self, fault: &Value) -> anyhow::Result<()> {
        for r in ROUTES {
            self.admin(
                reqwest::Method::PUT,
                &format!("/faults/{r}"),
                Some(fault.clone()),
            )
            .await?;
        }
        Ok(())
    }

    /// Clears every fault.
    pub async fn clear_faults(&self) -> anyhow::Result<()> {
        self.admin(reqwest::Method::DELETE, "/faults", None).await?;
        Ok(())
    }

    /// `n` sandbox users, alternating Entra ID and Okta, as (idp, login, mail, idp user id).
    pub async fn users(&self, n: usize) -> anyhow::Result<Vec<User>> {
        let mut by_idp = Vec::new();
        for idp in ["entra", "okta"] {
            let list = self.admin_get(&format!("/users?idp={idp}")).await?;
            let users: Vec<User> = list
                .as_array()
                .context("users")?
                .iter()
                .filter(|u| {
                    u["login"]
                        .as_str()
                        .is_some_and(|l| l.contains(char::is_numeric))
                })
                .map(|u| User {
                    okta: idp == "okta",
                    login: u["login"].as_str().unwrap_or_default().to_owned(),
                    mail: u["mail"].as_str().unwrap_or_default().to_owned(),
                    id: u["id"].as_str().unwrap_or_default().to_owned(),
                })
                .collect();
            by_idp.push(users);
        }
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < n && (i < by_idp[0].len() || i < by_idp[1].len()) {
            for list in &by_idp {
                if out.len() < n
                    && let Some(u) = list.get(i)
                {
                    out.push(u.clone());
                }
            }
            i += 1;
        }
        if out.len() < n {
            bail!("the sandbox has {} generated users, {n} wanted", out.len());
        }
        Ok(out)
    }

    /// Every shipment fpr has.
    pub async fn shipments(&self) -> anyhow::Result<Vec<pb::Shipment>> {
        let mut c = self.client()?;
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = c
                .list_shipments(pb::ListShipmentsRequest {
                    page_size: 500,
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            out.extend(page.shipments);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }

    /// Calls ProcessShipments until no shipment is ongoing or `settle` has passed.
    pub async fn settle(&self, settle: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + settle;
        let mut c = self.client()?;
        loop {
            let _ = c.process_shipments(pb::ProcessShipmentsRequest {}).await;
            let ongoing = self
                .shipments()
                .await?
                .iter()
                .filter(|s| s.shipment_state == pb::ShipmentState::Ongoing as i32)
                .count();
            if ongoing == 0 || Instant::now() >= until {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Counts what happened to `accepted` (user index → shipment id) of `users`.
    pub async fn tally(
        &self,
        users: &[User],
        accepted: &BTreeMap<usize, String>,
    ) -> anyhow::Result<Report> {
        let mut r = Report {
            shipments: users.len(),
            ..Report::default()
        };
        let fpr = self.shipments().await?;
        let by_id: HashMap<&str, &pb::Shipment> =
            fpr.iter().map(|s| (s.shipment_id.as_str(), s)).collect();
        for (i, id) in accepted {
            if !by_id.contains_key(id.as_str()) {
                r.lost += 1;
                r.notes
                    .push(format!("accepted order of {} missing", users[*i].login));
            }
        }
        let not_accepted = users.len() - accepted.len();
        if not_accepted > 0 {
            r.notes
                .push(format!("{not_accepted} orders were never accepted by fpr"));
            r.lost += not_accepted;
        }
        let mine: HashSet<String> = users.iter().map(|u| u.mail.to_lowercase()).collect();
        let mut orders: HashMap<String, usize> = HashMap::new();
        for s in self
            .admin_get("/shipments")
            .await?
            .as_array()
            .context("shipments")?
        {
            let email = s
                .pointer("/recipient/recipient_email")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase();
            if mine.contains(&email) {
                *orders.entry(email).or_default() += 1;
            }
        }
        r.duplicate_orders = orders.values().map(|n| n.saturating_sub(1)).sum();
        let mut regs: HashMap<String, usize> = HashMap::new();
        for c in self
            .admin_get("/credentials")
            .await?
            .as_array()
            .context("credentials")?
        {
            *regs
                .entry(c["user_id"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        for e in self
            .admin_get("/okta/enrollments")
            .await?
            .as_array()
            .context("enrollments")?
        {
            if e["status"] == "ACTIVE" {
                *regs
                    .entry(e["user_id"].as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
        r.duplicate_registrations = users
            .iter()
            .map(|u| regs.get(&u.id).copied().unwrap_or(0).saturating_sub(1))
            .sum();
        let mail = self.admin_get("/mailbox").await?;
        let bodies: Vec<&str> = mail["messages"]
            .as_array()
            .context("mailbox")?
            .iter()
            .filter_map(|m| m["body"].as_str())
            .collect();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for s in &fpr {
            match pb::ShipmentState::try_from(s.shipment_state) {
                Ok(pb::ShipmentState::Ongoing) => r.stuck += 1,
                Ok(pb::ShipmentState::Error) if s.error_kind == "pin_delivery_unknown" => {
                    r.pin_unknown += 1;
                    r.notes
                        .push(format!("{}: {}", s.shipment_id, s.error_message));
                }
                Ok(pb::ShipmentState::Error) => {
                    r.parked += 1;
                    let idp = if s.idp == pb::Idp::Okta as i32 {
                        "okta"
                    } else {
                        "entra"
                    };
                    let n = kinds
                        .entry(format!("{} ({idp})", s.error_kind))
                        .or_default();
                    *n += 1;
                    if *n == 1 {
                        r.notes
                            .push(format!("{}: {}", s.shipment_id, s.error_message));
                    }
                }
                _ => {}
            }
            if s.serial_number.is_empty() {
                continue;
            }
            let pins = bodies
                .iter()
                .filter(|b| mentions(b, &s.serial_number))
                .count();
            r.duplicate_pins += pins.saturating_sub(1);
            if pins == 0 && s.shipment_state == pb::ShipmentState::Complete as i32 {
                r.lost += 1;
                r.notes
                    .push(format!("{} complete but no PIN arrived", s.shipment_id));
            }
        }
        for (k, n) in kinds {
            r.notes.push(format!("parked: {n} × {k}"));
        }
        Ok(r)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for slot in [&self.orchestrator, &self.vault, &self.sandbox] {
            lock(slot).take();
        }
    }
}

/// A sandbox user.
#[derive(Debug, Clone)]
pub struct User {
    /// Okta (else Entra ID).
    pub okta: bool,
    /// Sign-in name.
    pub login: String,
    /// Mail address.
    pub mail: String,
    /// The IdP's id of the user.
    pub id: String,
}

/// A valid CreateShipment for `u`: every shipping field given, and for Entra ID the user
/// themself as PIN recipient (so no manager lookup decides the outcome).
pub fn order_request(key: &str, u: &User) -> pb::CreateShipmentRequest {
    pb::CreateShipmentRequest {
        idempotency_key: key.into(),
        idp: if u.okta {
            pb::Idp::Okta
        } else {
            pb::Idp::Entra
        } as i32,
        user_id: u.login.clone(),
        pin_request: Some(pb::PinRequest {
            r#type: "generate".into(),
            length: 8,
            force_change: false,
        }),
        enrollment_contacts: (!u.okta).then(|| pb::EnrollmentContacts {
            emails_to: vec![u.mail.clone()],
        }),
        yubico_shipment_request: Some(pb::YubicoShipmentRequest {
            delivery_type: 1,
            recipient: Some(pb::Recipient {
                recipient_company: "Contoso".into(),
                recipient_email: u.mail.clone(),
                recipient_firstname: "Chaos".into(),
                recipient_lastname: "Tester".into(),
                recipient_telephone: "+1 555 0100".into(),
            }),
            mailing_address: Some(pb::MailingAddress {
                street_line1: "7788 Foxrun Street".into(),
                street_line2: String::new(),
                city: "Dedham".into(),
                region: "MA".into(),
                postal_code: "02026".into(),
                country_code_2: "US".into(),
            }),
            shipment_items: vec![pb::ShipmentItem {
                product_id: 29,
                inventory_product_id: 106,
                product_quantity: 1,
                customization_id: "RXJN83".into(),
            }],
        }),
        validate_only: false,
    }
}

/// Whether `body` mentions `serial` as a whole number.
fn mentions(body: &str, serial: &str) -> bool {
    body.match_indices(serial).any(|(i, _)| {
        let before = body[..i].chars().next_back();
        let after = body[i + serial.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn kill(slot: &Mutex<Option<Proc>>) -> bool {
    let mut slot = lock(slot);
    match slot.take() {
        Some(mut p) => {
            let alive = matches!(p.0.try_wait(), Ok(None));
            let _ = p.0.kill();
            let _ = p.0.wait();
            alive
        }
        None => false,
    }
}

fn exited(slot: &Mutex<Option<Proc>>, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    loop {
        {
            let mut slot = lock(slot);
            match slot.as_mut().map(|p| p.0.try_wait()) {
                Some(Ok(Some(_))) | None => {
                    slot.take();
                    return true;
                }
                _ => {}
            }
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a temporary path that is not UTF-8")
}

/// A small xorshift generator (kill timing needs no cryptographic randomness).
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock.
    pub fn from_clock() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self(t | 1)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo).max(1)
    }
}

/// Orders `users` (keys `{prefix}-{i}`), `parallel` at a time, `pace` apart, each retried
/// with its key until fpr accepts it or refuses it as invalid. Returns index → shipment id.
pub async fn order_all(
    stack: &Stack,
    users: &[User],
    prefix: &str,
    parallel: usize,
    pace: Duration,
    deadline: Duration,
) -> anyhow::Result<BTreeMap<usize, String>> {
    use futures_util::StreamExt as _;
    let until = Instant::now() + deadline;
    let results: Vec<(usize, Option<String>)> =
        futures_util::stream::iter(users.iter().enumerate())
            .map(|(i, u)| async move {
                tokio::time::sleep(pace * i as u32 / parallel.max(1) as u32).await;
                let req = order_request(&format!("{prefix}-{i}"), u);
                loop {
                    let Ok(mut c) = stack.client() else {
                        return (i, None);
                    };
                    match c.create_shipment(req.clone()).await {
                        Ok(r) => return (i, Some(r.into_inner().shipment_id)),
                        Err(e) if e.code() == tonic::Code::InvalidArgument => {
                            eprintln!("fpr-chaos: {} refused: {}", u.login, e.message());
                            return (i, None);
                        }
                        Err(_) if Instant::now() < until => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(_) => return (i, None),
                    }
                }
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
    Ok(results
        .into_iter()
        .filter_map(|(i, id)| id.map(|id| (i, id)))
        .collect())
}

fn settings(o: &Options) -> Vec<(&'static str, toml::Value)> {
    vec![(
        "okta.resend_pin_when_unknown",
        toml::Value::Boolean(o.okta_resend_pin_when_unknown),
    )]
}

/// The kill phase (see the crate docs).
pub async fn kill_phase(exe: &Path, o: &Options) -> anyhow::Result<Report> {
    let stack = Stack::start_in(exe, Clock::Instant, o.users + 20, None, &settings(o)).await?;
    let users = stack.users(o.users).await?;
    stack
        .fault_everywhere(&json!({"latency_ms": o.latency_ms}))
        .await?;
    let total = o.kills + o.vault_kills;
    let every = total
        .checked_div(o.vault_kills)
        .map_or(usize::MAX, |e| e.max(1));
    // Orders are spread over the time the kills take, so kills land in the middle of work.
    let window = Duration::from_millis(450 * total as u64);
    let pace = window / o.users.max(1) as u32;
    let killer = async {
        let mut rng = Rng::from_clock();
        let mut kills = 0;
        let mut terms = (0, 0);
        let mut vault_left = o.vault_kills;
        for k in 0..total {
            tokio::time::sleep(Duration::from_millis(rng.range(100, 500))).await;
            let vault = vault_left > 0 && (k % every == every - 1 || total - k <= vault_left);
            if vault {
                vault_left -= 1;
                kills += usize::from(stack.kill_vault());
                stack.start_vault(None)?;
            } else {
                kills += usize::from(stack.kill_orchestrator());
                stack.start_orchestrator(None)?;
            }
            // Now and then a graceful stop instead, in the middle of the same work.
            if k % 10 == 5 {
                tokio::time::sleep(Duration::from_millis(rng.range(100, 300))).await;
                terms.0 += 1;
                if !stack.stop_orchestrator()?.success() {
                    terms.1 += 1;
                }
                stack.start_orchestrator(None)?;
            }
            if o.verbose && (k + 1) % 10 == 0 {
                eprintln!("fpr-chaos: {} kills", k + 1);
            }
        }
        anyhow::Ok((kills, terms))
    };
    let orders = order_all(&stack, &users, "kill", 8, pace, window + o.settle);
    let (killed, accepted) = tokio::join!(killer, orders);
    let ((kills, terms), accepted) = (killed?, accepted?);
    stack.clear_faults().await?;
    stack.settle(o.settle).await?;
    let mut r = stack.tally(&users, &accepted).await?;
    r.kills = kills;
    r.terms = terms;
    if terms.1 > 0 {
        r.notes.push(format!(
            "{} of {} SIGTERMs did not exit 0",
            terms.1, terms.0
        ));
    }
    Ok(r)
}

/// The fault storm (see the crate docs).
pub async fn storm_phase(exe: &Path, o: &Options) -> anyhow::Result<Report> {
    let stack = Stack::start_in(exe, Clock::Instant, o.storm + 20, None, &settings(o)).await?;
    let users = stack.users(o.storm).await?;
    stack
        .fault_everywhere(&json!({
            "error_rate": o.storm_rate,
            "mix": STORM_MIX,
            "after_work": 0.5,
            "hang_ms": 2500,
        }))
        .await?;
    let accepted = order_all(&stack, &users, "storm", 16, Duration::ZERO, o.settle).await?;
    if o.verbose {
        eprintln!("fpr-chaos: storm: {} orders accepted", accepted.len());
    }
    stack.settle(o.settle).await?;
    stack.clear_faults().await?;
    stack.tally(&users, &accepted).await
}

/// What the disk phase found.
#[derive(Debug, Default, Clone)]
pub struct DiskReport {
    /// Why it did not run (no tmpfs can be mounted here), if it did not.
    pub skipped: Option<String>,
    /// Orders fpr acknowledged before the disk filled up.
    pub acknowledged: usize,
    /// Orders refused with UNAVAILABLE naming the full disk.
    pub refused_full: usize,
    /// Other answers while the disk was full (each listed in `notes`).
    pub unclear: usize,
    /// Whether the orchestrator refused to start on a read-only store, and what it said.
    pub read_only_refused: Option<String>,
    /// Acknowledged orders missing after the disk had room again and the store was reopened.
    pub missing: usize,
    /// Orders acknowledged after the store was reopened with room (should be all asked).
    pub after: usize,
    /// Details.
    pub notes: Vec<String>,
}

/// Unmounts a tmpfs when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], at: &Path) -> bool {
    Command::new("mount")
        .args(args)
        .arg(at)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The disk phase: the orchestrator's store on a small tmpfs that fills up, then goes
/// read-only, then gets room again. Needs root (to mount); otherwise it says so and skips.
pub async fn disk_phase(exe: &Path) -> anyhow::Result<DiskReport> {
    let mut r = DiskReport::default();
    let mnt = tempfile::tempdir()?;
    if !mount(&["-t", "tmpfs", "-o", "size=4m", "tmpfs"], mnt.path()) {
        r.skipped = Some("cannot mount a tmpfs here (needs root)".into());
        return Ok(r);
    }
    let _mounted = Mounted(mnt.path().to_owned());
    let store = mnt.path().join("store");
    let stack = Stack::start_in(exe, Clock::Manual, 600, Some(&store), &[]).await?;
    let users = stack.users(600).await?;
    let mut acked = Vec::new();
    let mut refusals_in_a_row = 0;
    for (i, u) in users.iter().enumerate() {
        let mut c = stack.client()?;
        match c
            .create_shipment(order_request(&format!("disk-{i}"), u))
            .await
        {
            Ok(resp) => {
                acked.push(resp.into_inner().shipment_id);
                refusals_in_a_row = 0;
            }
            Err(e) if e.code() == tonic::Code::Unavailable && e.message().contains("full") => {
                r.refused_full += 1;
                refusals_in_a_row += 1;
            }
            Err(e) => {
                r.unclear += 1;
                r.notes.push(format!("{:?}: {}", e.code(), e.message()));
                refusals_in_a_row += 1;
                if e.code() == tonic::Code::Unknown || e.code() == tonic::Code::Unavailable {
                    // The process may have died: bring it back as a supervisor would.
                    stack.kill_orchestrator();
                    if let Err(err) = stack.start_orchestrator(None) {
                        r.notes.push(format!("restart on the full disk: {err:#}"));
                    }
                }
            }
        }
        if refusals_in_a_row >= 5 {
            break;
        }
    }
    r.acknowledged = acked.len();
    stack.kill_orchestrator();
    if mount(&["-o", "remount,ro"], mnt.path()) {
        let (status, said) = stack.start_orchestrator_failing()?;
        if !status.success() {
            r.read_only_refused = Some(said);
        }
    }
    if !mount(&["-o", "remount,rw,size=256m"], mnt.path()) {
        bail!("could not give the tmpfs room again");
    }
    stack.start_orchestrator(None)?;
    let mut c = stack.client()?;
    for id in &acked {
        let found = c
            .get_shipment(pb::GetShipmentRequest {
                shipment_id: id.clone(),
            })
            .await;
        if found.is_err() {
            r.missing += 1;
            r.notes.push(format!("acknowledged {id} missing"));
        }
    }
    for (i, u) in users.iter().enumerate().skip(acked.len() + 50).take(5) {
        if c.create_shipment(order_request(&format!("disk-after-{i}"), u))
            .await
            .is_ok()
        {
            r.after += 1;
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn serials_are_matched_as_whole_numbers() {
        assert!(super::mentions("serial 1234, PIN 5678", "1234"));
        assert!(!super::mentions("serial 12345", "1234"));
        assert!(!super::mentions("serial 91234", "1234"));
    }
}
