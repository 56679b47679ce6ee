//! Yubico's transport and signing JWKS: fetched from their URLs (or pinned from files), cached,
//! refreshed on a schedule and, rate-limited, when a response names an unknown kid.
//!
//! One task owns each set's sender; readers hold `watch::Receiver<Arc<KeySet>>`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fpr_jose::Jwks;
use time::OffsetDateTime;
use tokio::sync::{Mutex, watch};
use tracing::{Instrument as _, info, info_span, warn};
use url::Url;

use crate::config::YubicoConfig;

/// Which of the two sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Transport (encryption) keys.
    Transport,
    /// Signing keys.
    Signing,
}

impl Kind {
    /// Lowercase name for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Transport => "transport",
            Kind::Signing => "signing",
        }
    }
}

/// Where a set comes from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Fetched over HTTP(S).
    Url(Url),
    /// Pinned from a file (air-gapped sites); read at start and on refresh.
    File(PathBuf),
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::Url(u) => u.to_string(),
            Origin::File(p) => format!("file:{}", p.display()),
        }
    }
}

/// A set in force and how fresh it is.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// The keys.
    pub jwks: Jwks,
    /// When they were fetched or read; None before the first success.
    pub fetched_at: Option<OffsetDateTime>,
    /// Where they came from.
    pub source: String,
    /// The last refresh error, if the last refresh failed.
    pub last_error: Option<String>,
}

struct Slot {
    kind: Kind,
    origin: Origin,
    tx: watch::Sender<Arc<KeySet>>,
    last_attempt: Mutex<Option<Instant>>,
}

/// The two cached sets.
#[derive(Clone)]
pub struct YubicoKeys {
    transport: Arc<Slot>,
    signing: Arc<Slot>,
    http: reqwest::Client,
    min_interval: Duration,
}

impl std::fmt::Debug for YubicoKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YubicoKeys").finish_non_exhaustive()
    }
}

// === impl YubicoKeys ===

impl YubicoKeys {
    /// Builds the cache and loads both sets once. A pinned file that does not load is an error;
    /// a URL that does not answer leaves the set empty with `last_error` set, and the refresh
    /// task retries.
    pub async fn start(cfg: &YubicoConfig) -> Result<Self, crate::Error> {
        let http = reqwest::Client::builder()
            .timeout(cfg.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("fpr-vault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| crate::Error::Config {
                key: "yubico".into(),
                reason: format!("HTTP client: {e}"),
            })?;
        let slot = |kind, url: &Url, file: &Option<PathBuf>| {
            let origin = match file {
                Some(p) => Origin::File(p.clone()),
                None => Origin::Url(url.clone()),
            };
            let empty = KeySet {
                jwks: Jwks::default(),
                fetched_at: None,
                source: origin.describe(),
                last_error: None,
            };
            Arc::new(Slot {
                kind,
                origin,
                tx: watch::Sender::new(Arc::new(empty)),
                last_attempt: Mutex::new(None),
            })
        };
        let keys = Self {
            transport: slot(
                Kind::Transport,
                &cfg.transport_jwks_url,
                &cfg.transport_jwks_file,
            ),
            signing: slot(Kind::Signing, &cfg.sign_jwks_url, &cfg.sign_jwks_file),
            http,
            min_interval: cfg.unknown_kid_min_interval,
        };
        for slot in [&keys.transport, &keys.signing] {
            let result = keys.refresh(slot).await;
            if let (Origin::File(p), Err(e)) = (&slot.origin, result) {
                return Err(crate::Error::Config {
                    key: format!("yubico.{}_jwks_file", slot.kind.name()),
                    reason: format!("{}: {e}", p.display()),
                });
            }
        }
        Ok(keys)
    }

    /// Spawns the scheduled refresh of both sets. Failed sets are retried sooner (one minute
    /// or the interval, whichever is shorter).
    pub fn spawn_refresh(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(
            async move {
                let retry = every.min(Duration::from_secs(60));
                loop {
                    let failing = this.transport.tx.borrow().last_error.is_some()
                        || this.signing.tx.borrow().last_error.is_some();
                    tokio::time::sleep(if failing { retry } else { every }).await;
                    for slot in [&this.transport, &this.signing] {
                        let _ = this.refresh(slot).await;
                    }
                }
            }
            .instrument(info_span!("jwks_refresh", job = "jwks_refresh")),
        )
    }

    /// The set of `kind` in force now.
    pub fn current(&self, kind: Kind) -> Arc<KeySet> {
        self.slot(kind).tx.borrow().clone()
    }

    /// A receiver that sees every new set of `kind`.
    pub fn subscribe(&self, kind: Kind) -> watch::Receiver<Arc<KeySet>> {
        self.slot(kind).tx.subscribe()
    }

    /// Refreshes `kind` because a token named a kid it lacks, unless a refresh was attempted
    /// within the configured minimum interval. Returns whether a refresh ran and succeeded.
    pub async fn refresh_for_unknown_kid(&self, kind: Kind) -> bool {
        let slot = self.slot(kind);
        {
            let last = slot.last_attempt.lock().await;
            if last.is_some_and(|t| t.elapsed() < self.min_interval) {
                return false;
            }
        }
        self.refresh(slot).await.is_ok()
    }

    fn slot(&self, kind: Kind) -> &Arc<Slot> {
        match kind {
            Kind::Transport => &self.transport,
            Kind::Signing => &self.signing,
        }
    }

    async fn refresh(&self, slot: &Slot) -> Result<(), String> {
        *slot.last_attempt.lock().await = Some(Instant::now());
        let result = self.load(&slot.origin).await;
        match result {
            Ok(jwks) => {
                info!(upstream = "yubico", set = slot.kind.name(), kids = ?jwks.kids(), "Yubico JWKS loaded");
                slot.tx.send_replace(Arc::new(KeySet {
                    jwks,
                    fetched_at: Some(OffsetDateTime::now_utc()),
                    source: slot.origin.describe(),
                    last_error: None,
                }));
                Ok(())
            }
            Err(e) => {
                warn!(upstream = "yubico", set = slot.kind.name(), error = %e, "Yubico JWKS refresh failed; keeping the set in force");
                slot.tx.send_modify(|s| {
                    let mut next = (**s).clone();
                    next.last_error = Some(e.clone());
                    *s = Arc::new(next);
                });
                Err(e)
            }
        }
    }

    async fn load(&self, origin: &Origin) -> Result<Jwks, String> {
        let bytes = match origin {
            Origin::File(p) => tokio::fs::read(p).await.map_err(|e| e.to_string())?,
            Origin::Url(u) => {
                let mut resp = self
                    .http
                    .get(u.clone())
                    .send()
                    .await
                    .map_err(|e| format!("fetch failed: {}", e.without_url()))?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(format!("HTTP {status}"));
                }
                if resp
                    .content_length()
                    .is_some_and(|n| n > fpr_jose::MAX_TOKEN_LEN as u64)
                {
                    return Err("document over 64 KiB".into());
                }
                // Capped as it arrives too: a chunked answer has no length to check first.
                let mut body = Vec::new();
                while let Some(chunk) = resp
                    .chunk()
                    .await
                    .map_err(|e| format!("read failed: {}", e.without_url()))?
                {
                    if body.len() + chunk.len() > fpr_jose::MAX_TOKEN_LEN {
                        return Err("document over 64 KiB".into());
                    }
                    body.extend_from_slice(&chunk);
                }
                body
            }
        };
        let jwks = Jwks::from_json(&bytes).map_err(|e| e.to_string())?;
        if jwks.keys().is_empty() {
            return Err("no EC keys in the set".into());
        }
        Ok(jwks)
    }
}
