//! The fpr sandbox: YubiEnterprise with Yubico's fulfilment, Microsoft login and Graph, Okta's
//! preregistration and Users APIs, and a PIN mailbox, on one HTTP port (and an SMTP port), as
//! docs/design/upstream-apis.md and protocol.md describe them. fpr runs and is tested with it;
//! YubiEnterprise has no sandbox of its own. Each upstream has its module: API, state, behaviour.
//! NO SECURITY: it keeps PINs in its mailbox and its keys in its data directory, and issues any
//! token it is asked for. Never point production at it; the services never link it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(
    clippy::result_large_err,
    reason = "handlers return early with the HTTP response itself"
)]

mod admin;
pub mod cli;
mod directory;
mod entra;
mod http;
mod keys;
mod okta;
mod seed;
pub mod smtp;
pub mod state;
pub mod tokens;
pub mod yubico;

pub use self::entra::public_key_options;
mod yubienterprise;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use keys::Keys;
pub use state::State;

/// How shipments move through their states.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum Clock {
    /// A new shipment is shipped (state 103, responses ready) on its first read.
    Instant,
    /// Shipments stay editable (state 2) until the admin API advances them.
    Manual,
    /// Realistic delays, divided by `speedup`: locked after 15 min, shipped after 1 day,
    /// delivered after 3 days.
    Realistic {
        /// 1.0 = real time; 3600.0 = one hour per second.
        speedup: f64,
    },
}

impl Clock {
    /// `instant`, `manual` or `realistic` (with `speedup`).
    pub fn from_name(name: &str, speedup: f64) -> Result<Self, String> {
        match name {
            "instant" => Ok(Clock::Instant),
            "manual" => Ok(Clock::Manual),
            "realistic" => Ok(Clock::Realistic { speedup }),
            other => Err(format!(
                "--clock must be instant, manual or realistic, not {other:?}"
            )),
        }
    }
}

/// Sandbox settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Keys (Yubico, attestation CA, tenant) and the snapshot live here; None: in memory only.
    pub data_dir: Option<PathBuf>,
    /// The shipment clock.
    pub clock: Clock,
    /// Extra generated users on top of the fixed seed (split between the IdPs).
    pub seed_users: usize,
    /// The YubiEnterprise API token callers must send as `Bearer`.
    pub ye_token: String,
    /// Customization ids YubiEnterprise accepts.
    pub customization_ids: Vec<String>,
    /// Credits per inventory bucket at start.
    pub inventory_credits: i64,
    /// The Entra tenant id.
    pub tenant: String,
    /// fpr's Graph app registration: client id and secret.
    pub graph_client_id: String,
    /// Secret of `graph_client_id`.
    pub graph_client_secret: String,
    /// The app registration of fpr's own API (audience of caller tokens).
    pub api_audience: String,
    /// A caller app allowed to get tokens for `api_audience`: client id.
    pub caller_client_id: String,
    /// Secret of `caller_client_id`.
    pub caller_client_secret: String,
    /// Require attestation chained to the sandbox root (Entra's "enforce attestation").
    pub enforce_attestation: bool,
    /// When set, only these AAGUIDs may register (Entra key restrictions).
    pub allowed_aaguids: Option<Vec<String>>,
    /// Graph requests per second before 429 (None: unlimited).
    pub graph_rate_per_s: Option<u32>,
    /// Challenges live this many seconds, whatever the request asked (None: as asked). For
    /// tests of what happens when a key is programmed after its challenge expired.
    pub challenge_lifetime_s: Option<i64>,
    /// Caps every paged list (a group's members) at this many items a page; `None`: the real
    /// APIs' maxima (Graph 999, Okta 1000). Tests set it low to page.
    pub page_size: Option<usize>,
    /// The Okta SSWS token.
    pub okta_token: String,
    /// Okta requests per second before 429 (also reported in X-Rate-Limit-Limit).
    pub okta_rate_per_s: u32,
    /// SMTP mailbox listener address; None: no SMTP listener.
    pub smtp_listen: Option<SocketAddr>,
    /// The URL callers reach the sandbox at, when not its listen address (in a container
    /// network, `http://sandbox:8380`): token issuers, JWKS and config links use it.
    pub public_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: None,
            clock: Clock::Instant,
            seed_users: 0,
            ye_token: "sandbox-ye-token".into(),
            customization_ids: vec!["RXJN83".into(), "SANDBX".into()],
            inventory_credits: 10_000,
            tenant: "11111111-2222-3333-4444-555555555555".into(),
            graph_client_id: "fpr-graph-app".into(),
            graph_client_secret: "sandbox-graph-secret".into(),
            api_audience: "api://fido-connector-api".into(),
            caller_client_id: "fpr-caller-app".into(),
            caller_client_secret: "sandbox-caller-secret".into(),
            enforce_attestation: true,
            allowed_aaguids: None,
            graph_rate_per_s: None,
            challenge_lifetime_s: None,
            page_size: None,
            okta_token: "sandbox-okta-token".into(),
            okta_rate_per_s: 600,
            smtp_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            public_url: None,
        }
    }
}

/// Shared application state.
pub(crate) struct App {
    pub(crate) config: Config,
    pub(crate) keys: Keys,
    pub(crate) state: Mutex<State>,
    pub(crate) rate: Mutex<http::RateWindows>,
    pub(crate) base_url: Mutex<String>,
    /// Calls answered so far, by route key (`okta.users`, `ye.create`, …), for tests.
    pub(crate) calls: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl App {
    /// Locks the state; a poisoned lock (a panic elsewhere) is recovered, not propagated.
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn base(&self) -> String {
        self.base_url.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Writes the snapshot file, if the sandbox has a data dir.
    pub(crate) fn snapshot(&self) -> anyhow::Result<()> {
        if let Some(dir) = &self.config.data_dir {
            let text = serde_json::to_vec_pretty(&*self.state())?;
            let tmp = dir.join("snapshot.json.tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(tmp, dir.join("snapshot.json"))?;
        }
        Ok(())
    }
}

/// A sandbox ready to serve.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> anyhow::Result<()> {
/// let sandbox = fpr_sandbox::Sandbox::new(fpr_sandbox::Config::default())?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let running = sandbox.serve(listener).await?;
/// println!("sandbox on {}", running.addr);
/// # Ok(()) }
/// ```
pub struct Sandbox {
    app: Arc<App>,
}

/// A running sandbox.
pub struct Running {
    /// The HTTP address.
    pub addr: SocketAddr,
    /// The SMTP mailbox address, if listening.
    pub smtp_addr: Option<SocketAddr>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    smtp: Option<JoinHandle<()>>,
    app: Arc<App>,
}

impl Running {
    /// The PEM root certificate of the sandbox's attestation CA (what the orchestrator trusts
    /// for sandbox runs).
    pub fn attestation_root_pem(&self) -> String {
        self.app.keys.ca.root_pem()
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving, writes the snapshot and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(s) = self.smtp.take() {
            s.abort();
        }
        let _ = self.app.snapshot();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.smtp.take() {
            s.abort();
        }
    }
}

impl Sandbox {
    /// Loads or makes the keys, loads the snapshot (if any) or seeds the users.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        if let Some(dir) = &config.data_dir {
            std::fs::create_dir_all(dir)?;
        }
        let keys = Keys::load_or_create(config.data_dir.as_deref())?;
        let snapshot = config
            .data_dir
            .as_ref()
            .map(|d| d.join("snapshot.json"))
            .filter(|p| p.exists());
        let mut state: State = match snapshot {
            Some(p) => serde_json::from_slice(&std::fs::read(p)?)?,
            None => seed::initial_state(&config),
        };
        state.reindex();
        Ok(Self {
            app: Arc::new(App {
                config,
                keys,
                state: Mutex::new(state),
                rate: Mutex::new(Default::default()),
                base_url: Mutex::new(String::new()),
                calls: Mutex::default(),
            }),
        })
    }

    /// The router (for tests that want to mount it elsewhere).
    fn router(&self) -> Router {
        Router::new()
            .merge(yubienterprise::routes())
            .merge(entra::routes())
            .merge(okta::routes())
            .merge(admin::routes())
            .merge(directory::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.app.clone(),
                http::after_work,
            ))
            .with_state(self.app.clone())
    }

    /// Serves on `listener` (and the SMTP mailbox on its configured address) until stopped.
    pub async fn serve(self, listener: TcpListener) -> anyhow::Result<Running> {
        let addr = listener.local_addr()?;
        if let Ok(mut b) = self.app.base_url.lock() {
            *b = match &self.app.config.public_url {
                Some(u) => u.trim_end_matches('/').to_owned(),
                None => format!("http://{addr}"),
            };
        }
        let (smtp_addr, smtp) = match self.app.config.smtp_listen {
            Some(a) => {
                let (bound, task) = smtp::serve(a, self.app.clone()).await?;
                (Some(bound), Some(task))
            }
            None => (None, None),
        };
        let router = self.router();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            use axum::serve::ListenerExt as _;
            // Nagle off, as the real services answer: no 40 ms wait for a delayed ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        tracing::info!(%addr, smtp = ?smtp_addr, "Sandbox serving");
        Ok(Running {
            addr,
            smtp_addr,
            shutdown: Some(tx),
            task: Some(task),
            smtp,
            app: self.app,
        })
    }
}

/// How long tokens issued by the sandbox's Entra live.
pub(crate) const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
