//! The `fpr` command's library. `fpr up` runs the sandbox, the vault and the orchestrator in one
//! process for a first run; the other modules are the admin client (`client`, `ops`, `batch`,
//! `demo`) over gRPC. The orchestrator still reaches the vault through its gRPC client, over
//! the vault's Unix socket in the data directory, so the boundary is the production code path.
//!
//! NO SECURITY for production: `up` points everything at the sandbox, with the sandbox's
//! secrets inline and plain http on loopback.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

pub mod batch;
pub mod bench;
pub mod client;
pub mod demo;
pub mod group;
pub mod ops;
pub mod output;
pub mod request;
pub mod sandboxed;
pub mod stack;

/// Where `fpr up` listens.
#[derive(Debug, Clone)]
pub struct UpSettings {
    /// Data directory (`./fpr-data`).
    pub data_dir: PathBuf,
    /// Sandbox HTTP address.
    pub sandbox: SocketAddr,
    /// Sandbox SMTP mailbox address.
    pub smtp: SocketAddr,
    /// Orchestrator gRPC address.
    pub orchestrator: SocketAddr,
    /// Orchestrator REST API address (the connector's `/v1/...`).
    pub rest: SocketAddr,
    /// Prometheus metrics address (`/metrics`: the vault's and the orchestrator's).
    pub metrics: SocketAddr,
    /// The sandbox's shipment clock.
    pub clock: fpr_sandbox::Clock,
    /// Generated sandbox users.
    pub seed_users: usize,
}

/// The running system.
pub struct Running {
    /// The sandbox's URL.
    pub sandbox_url: String,
    /// The orchestrator's address.
    pub orchestrator: SocketAddr,
    /// The orchestrator's REST API address.
    pub rest: SocketAddr,
    /// The URL of the Okta event hook (registered with the sandbox's Okta).
    pub okta_event_hook: String,
    /// Where `/metrics` is served.
    pub metrics: SocketAddr,
    /// The vault's socket.
    pub vault_socket: PathBuf,
    /// A caller token for the orchestrator from the sandbox tenant.
    pub token: String,
    /// Where the token is kept fresh (mode 0600) for `fpr` admin commands.
    pub token_file: PathBuf,
    sandbox: fpr_sandbox::Running,
    stop_vault: tokio::sync::oneshot::Sender<()>,
    stop_orchestrator: tokio::sync::oneshot::Sender<()>,
    jobs: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("sandbox_url", &self.sandbox_url)
            .field("orchestrator", &self.orchestrator)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Stops all three (the sandbox writes its snapshot).
    pub async fn stop(self) {
        self.jobs.iter().for_each(|j| j.abort());
        let _ = self.stop_orchestrator.send(());
        let _ = self.stop_vault.send(());
        self.sandbox.stop().await;
    }
}

fn master_key(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    write_private(path, &fpr_vault::keystore::new_master_key_hex()?)
}

/// Starts sandbox, vault and orchestrator.
pub async fn start_all(cfg: &UpSettings) -> anyhow::Result<Running> {
    let dir = &cfg.data_dir;
    std::fs::create_dir_all(dir.join("vault")).context("creating the data directory")?;
    // One recorder for the vault and the orchestrator of this process, installed before
    // either is built so both register their gauges.
    fpr_telemetry::install();
    let sandbox_cfg = fpr_sandbox::Config {
        data_dir: Some(dir.join("sandbox")),
        smtp_listen: Some(cfg.smtp),
        seed_users: cfg.seed_users,
        clock: cfg.clock,
        ..Default::default()
    };
    let sandbox = fpr_sandbox::Sandbox::new(sandbox_cfg.clone())?
        .serve(
            tokio::net::TcpListener::bind(cfg.sandbox)
                .await
                .with_context(|| format!("binding the sandbox to {}", cfg.sandbox))?,
        )
        .await?;
    let base = sandbox.url();
    let smtp = sandbox
        .smtp_addr
        .context("the sandbox mailbox is not listening")?;

    master_key(&dir.join("vault/master.key"))?;
    let socket = dir.join("vault/run/vault.sock");
    let vault_cfg = sandboxed::vault_config(
        &base,
        &socket,
        &dir.join("vault/store"),
        &dir.join("vault/master.key"),
        smtp,
        "security-keys@fpr.local",
    )?;
    vault_cfg.validate()?;
    let vault = fpr_vault::server::build(&vault_cfg).await?;
    let listener = fpr_vault::server::bind(&vault_cfg).await?;
    let uids = fpr_vault::server::allowed_uids(&vault_cfg, &listener);
    let (stop_vault, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(fpr_vault::server::serve(
        vault,
        listener,
        uids,
        async move {
            let _ = rx.await;
        },
    ));

    let mut orch_cfg =
        sandboxed::orchestrator_config(&sandbox_cfg, &base, &sandbox.attestation_root_pem())?;
    orch_cfg.listen = cfg.orchestrator.to_string();
    orch_cfg.metrics_listen = Some(cfg.metrics.to_string());
    orch_cfg.store_path = dir.join("orchestrator/store");
    orch_cfg.vault_socket = socket.clone();
    orch_cfg.jobs.process_schedule = "*/10 * * * * *".into();
    orch_cfg.rest = Some(fpr_orchestrator::config::RestConfig::new(
        &cfg.rest.to_string(),
    ));
    // The Okta event hook, with a secret of its own kept beside the data.
    let hook_secret = dir.join("okta-event-hook-secret");
    if !hook_secret.exists() {
        write_private(&hook_secret, &format!("fpr-hook-{}", request::random_id()?))?;
    }
    orch_cfg.okta_event_hook = Some(fpr_orchestrator::config::OktaEventHookConfig {
        secret: fpr_orchestrator::config::SecretRef {
            file: Some(hook_secret.clone()),
            ..Default::default()
        },
        groups: Vec::new(),
        default_product_id: 29,
        default_inventory_product_id: 106,
        default_customization_id: "RXJN83".into(),
    });
    orch_cfg.validate()?;
    let built = fpr_orchestrator::server::build(
        &orch_cfg,
        fpr_orchestrator::server::vault_channel(&socket)?,
    )
    .await?;
    let rest = built
        .rest_addr()
        .context("the orchestrator's REST API is not listening")?;
    let metrics = built
        .metrics_addr()
        .context("the metrics listener is not listening")?;
    let jobs = fpr_orchestrator::scheduler::start(
        built.service.clone(),
        &orch_cfg.jobs.process_schedule,
        &orch_cfg.jobs.cleanup_schedule,
        0,
    );
    let listener = tokio::net::TcpListener::bind(cfg.orchestrator)
        .await
        .with_context(|| format!("binding the orchestrator to {}", cfg.orchestrator))?;
    let orchestrator = listener.local_addr()?;
    let (stop_orchestrator, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(fpr_orchestrator::server::serve(
        built,
        listener,
        async move {
            let _ = rx.await;
        },
    ));

    // The sandbox's Okta sends its admin-console events there (after verifying the hook).
    let okta_event_hook = format!("http://{rest}{}", fpr_orchestrator::rest::okta_hook::PATH);
    let secret = std::fs::read_to_string(&hook_secret)?;
    let registered = reqwest::Client::new()
        .put(format!("{base}/_sandbox/okta/event-hooks"))
        .json(&serde_json::json!({"url": okta_event_hook, "authorization": secret.trim()}))
        .send()
        .await?;
    if !registered.status().is_success() {
        anyhow::bail!(
            "the sandbox's Okta refused the event hook: {}",
            registered.text().await.unwrap_or_default()
        );
    }
    let token = caller_token(&base, &sandbox_cfg).await?;
    let token_file = dir.join("caller-token");
    write_private(&token_file, &token)?;
    let mut jobs = jobs;
    jobs.push(tokio::spawn(refresh_token(
        base.clone(),
        sandbox_cfg.clone(),
        token_file.clone(),
    )));
    Ok(Running {
        sandbox_url: base,
        orchestrator,
        rest,
        okta_event_hook,
        metrics,
        vault_socket: socket,
        token,
        token_file,
        sandbox,
        stop_vault,
        stop_orchestrator,
        jobs,
    })
}

/// Writes `text` to `path` with mode 0600 (replacing it atomically).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Renews the caller token file every 30 minutes (tokens last an hour).
async fn refresh_token(base: String, c: fpr_sandbox::Config, path: PathBuf) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1800)).await;
        match caller_token(&base, &c).await {
            Ok(t) => {
                if let Err(e) = write_private(&path, &t) {
                    tracing::warn!(error = %e, "could not renew the caller token file");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the caller token"),
        }
    }
}

/// A caller token from a running sandbox, with the caller app's credentials it publishes at
/// `/_sandbox/config`.
pub async fn sandbox_caller_token(sandbox_url: &str) -> anyhow::Result<String> {
    let base = sandbox_url.trim_end_matches('/');
    let cfg: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/_sandbox/config"))
        .send()
        .await
        .with_context(|| format!("reaching the sandbox at {base} (is `fpr up` running?)"))?
        .json()
        .await?;
    let e = &cfg["entra"];
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let c = fpr_sandbox::Config {
        tenant: s(&e["tenant"]),
        api_audience: s(&e["api_audience"]),
        caller_client_id: s(&e["caller_client_id"]),
        caller_client_secret: s(&e["caller_client_secret"]),
        ..Default::default()
    };
    caller_token(base, &c).await
}

/// A caller token for fpr's API from the sandbox tenant.
pub async fn caller_token(base: &str, c: &fpr_sandbox::Config) -> anyhow::Result<String> {
    let scope = format!("{}/.default", c.api_audience);
    let form = [
        ("client_id", c.caller_client_id.as_str()),
        ("client_secret", c.caller_client_secret.as_str()),
        ("scope", scope.as_str()),
        ("grant_type", "client_credentials"),
    ];
    let v: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/{}/oauth2/v2.0/token", c.tenant))
        .form(&form)
        .send()
        .await?
        .json()
        .await?;
    v.get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .context("the sandbox issued no token")
}
