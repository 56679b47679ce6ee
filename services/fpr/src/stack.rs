//! The three services as three processes on loopback, for the tools that measure or break
//! the deployed shape: `fpr bench` and the chaos harness.
//!
//! The given executable (the `fpr` binary, or a tool built from the same libraries that
//! answers to `sandbox serve`, `vault serve` and `orchestrator serve`) is started once per
//! service, each with its own config file and on-disk store in a temporary directory.
//! NO SECURITY: the sandbox's secrets, plain http and SMTP on 127.0.0.1.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fpr_proto::v1 as pb;
use serde_json::Value;

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
    orchestrator_store: PathBuf,
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
    /// Starts the sandbox (with `seed_users` extra users), the vault and the orchestrator
    /// (processing every second), with the orchestrator's store in `store` (default: in the
    /// temporary directory, e.g. a small tmpfs) and its configuration changed by `tweak`.
    pub async fn start(
        exe: &Path,
        clock: Clock,
        seed_users: usize,
        store: Option<&Path>,
        tweak: &dyn Fn(&mut fpr_orchestrator::config::Config),
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
        let smtp_port: u16 = line
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
        let smtp = std::net::SocketAddr::from(([127, 0, 0, 1], smtp_port));
        let v = crate::sandboxed::vault_config(
            &url,
            &socket,
            &d.join("vault/store"),
            &key,
            smtp,
            "keys@fpr.chaos",
        )?;
        v.validate()?;
        let vault_toml = d.join("vault.toml");
        std::fs::write(&vault_toml, toml::to_string(&v)?)?;

        // The sandbox wrote its attestation root at start: the orchestrator trusts it, pinned.
        let root = std::fs::read_to_string(sandbox_data.join("attestation-root.pem"))
            .context("the sandbox's attestation root")?;
        let mut o =
            crate::sandboxed::orchestrator_config(&fpr_sandbox::Config::default(), &url, &root)?;
        o.listen = "127.0.0.1:0".into();
        let store = store.map_or_else(|| d.join("orchestrator"), Path::to_owned);
        o.store_path = store.clone();
        o.vault_socket = socket.clone();
        o.jobs.process_schedule = "* * * * * *".into();
        tweak(&mut o);
        o.validate()?;
        let orchestrator_toml = d.join("orchestrator.toml");
        std::fs::write(&orchestrator_toml, toml::to_string(&o)?)?;

        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let token = crate::sandbox_caller_token(&url).await?;
        let mut stack = Self {
            exe: exe.to_owned(),
            sandbox_url: url,
            orchestrator_url: String::new(),
            vault_toml,
            orchestrator_toml,
            orchestrator_store: store,
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
        o.listen.clone_from(&addr);
        std::fs::write(&stack.orchestrator_toml, toml::to_string(&o)?)?;
        stack.orchestrator_url = format!("http://{addr}");
        Ok(stack)
    }

    /// The orchestrator's store directory.
    pub fn orchestrator_store(&self) -> &Path {
        &self.orchestrator_store
    }

    /// The vault's store directory.
    pub fn vault_store(&self) -> PathBuf {
        self.dir.path().join("vault/store")
    }

    /// The process ids of the running sandbox, vault and orchestrator (None: not running).
    pub fn pids(&self) -> [Option<u32>; 3] {
        [&self.sandbox, &self.vault, &self.orchestrator]
            .map(|slot| lock(slot).as_ref().map(|p| p.0.id()))
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
    pub fn client(&self) -> anyhow::Result<crate::client::Client> {
        crate::client::with_token(
            &crate::client::Target {
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
