//! The orchestrator's configuration: TOML plus the seed's environment variable names, validated
//! before anything binds.

use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::Error;

pub use fpr_config::{Env, Source};

mod callers;
mod group_orders;
mod upstreams;
use self::callers::*;
pub use self::callers::{AuthConfig, OktaEventHookConfig, RestConfig, RestIdp};
pub use self::group_orders::{GroupOrdersConfig, GroupRule};
pub use self::upstreams::{EntraConfig, OktaConfig, OktaOauth, YubiEnterpriseConfig};

/// A secret's location: a file (preferred) or an environment variable; read at each use.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    /// File holding the secret.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Environment variable holding it.
    #[serde(default)]
    pub env: Option<String>,
    /// The value itself: only for `fpr up` and tests (logged as a warning).
    #[serde(default)]
    pub danger_inline: Option<String>,
}

impl SecretRef {
    /// A secret given in the configuration itself: only for `fpr up` and tests (logged as a
    /// warning at start).
    pub fn danger_inline(value: impl Into<String>) -> Self {
        Self {
            danger_inline: Some(value.into()),
            ..Self::default()
        }
    }

    /// Where the secret is read from, at each use.
    pub fn source(&self, key: &str) -> Result<fpr_upstream::SecretSource, Error> {
        use fpr_upstream::SecretSource as S;
        match (&self.file, &self.env, &self.danger_inline) {
            (Some(f), _, _) => Ok(S::File(f.clone())),
            (None, Some(e), _) => Ok(S::Env(e.clone())),
            (None, None, Some(v)) => Ok(S::Inline(std::sync::Arc::new(
                secrecy::SecretString::from(v.clone()),
            ))),
            _ => Err(Error::Config {
                key: key.into(),
                reason: "set file or env".into(),
            }),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// gRPC listen address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A second, plaintext listener serving only `grpc.health.v1.Health` (no API, so no token
    /// crosses it): for probes and load balancers that check health without TLS while `listen`
    /// speaks TLS. None: health is served on `listen` only.
    #[serde(default)]
    pub health_listen: Option<String>,
    /// The admin listener (ip:port, plain HTTP) serving Prometheus metrics at `/metrics`, off
    /// the API's port. None: off.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// Log lines as `text` (default) or `json` (one object a line, with span fields such as
    /// `shipment.id` and `trace_id`). `FPR_LOG_FORMAT` applies before the file is read.
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// The store's directory (the shipments are in `shipments.redb` in it).
    #[serde(default = "default_store")]
    pub store_path: PathBuf,
    /// Memory the store may use to cache its pages, in MiB.
    #[serde(default = "default_store_cache_mb")]
    pub store_cache_mb: usize,
    /// The vault's Unix socket.
    #[serde(default = "default_vault")]
    pub vault_socket: PathBuf,
    /// YubiEnterprise.
    pub yubienterprise: YubiEnterpriseConfig,
    /// Microsoft Entra ID.
    pub entra: EntraConfig,
    /// Okta (optional: without it, Okta shipments are refused).
    #[serde(default)]
    pub okta: Option<OktaConfig>,
    /// Inbound bearer-token checks.
    pub auth: AuthConfig,
    /// Scheduled jobs.
    #[serde(default)]
    pub jobs: JobsConfig,
    /// Attestation checks before a credential is registered.
    #[serde(default)]
    pub attestation: crate::attestation::AttestationConfig,
    /// TLS on the gRPC listener (none: plaintext, for loopback or behind a TLS-terminating
    /// proxy or load balancer).
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
    /// Retry of transient upstream failures.
    #[serde(default)]
    pub retry: RetryConfig,
    /// `displayName` of registered keys (≤ 30 characters): `{model}` is the ordered product's name
    /// and `{serial}` the key's serial number.
    #[serde(default = "default_display")]
    pub key_display_name: String,
    /// Per-request upstream timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub upstream_timeout: Duration,
    /// Deadline of each call to the vault: a hung vault never stalls the processing job.
    #[serde(default = "default_vault_timeout", with = "humantime_serde")]
    pub vault_timeout: Duration,
    /// YubiEnterprise orders whose outcome was lost are reconciled this long after the order
    /// at the earliest (so a request still in flight at YubiEnterprise is not missed); at least
    /// `upstream_timeout`.
    #[serde(default = "default_reconcile_after", with = "humantime_serde")]
    pub reconcile_after: Duration,
    /// Allow plain http upstream URLs (the sandbox on loopback).
    #[serde(default)]
    pub danger_allow_plaintext_http: bool,
    /// The largest upstream answer body read (YubiEnterprise, Graph, Okta, the issuer's keys);
    /// a larger one is refused as malformed. 4 KiB to 64 MiB.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// The connector's REST API (off when absent).
    #[serde(default)]
    pub rest: Option<RestConfig>,
    /// Okta Event Hooks as a trigger, on the REST listener (off when absent).
    #[serde(default)]
    pub okta_event_hook: Option<OktaEventHookConfig>,
    /// Standing group orders, run by the processing job (off by default).
    #[serde(default)]
    pub group_orders: GroupOrdersConfig,
}

fn default_log_format() -> String {
    "text".into()
}

/// Job schedules (cron with seconds, as the seed).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// `CRON_PROCESS_SHIPMENT_SCHEDULE`.
    #[serde(default = "default_process")]
    pub process_schedule: String,
    /// `CRON_DATA_CLEANUP_SCHEDULE`.
    #[serde(default = "default_cleanup")]
    pub cleanup_schedule: String,
    /// `CRON_DATA_CLEANUP_COMPLETED_DAYS` (0: off).
    #[serde(default)]
    pub cleanup_completed_days: u32,
    /// Shipments the processing job drives at once (1 to 1024).
    #[serde(default = "default_concurrency")]
    pub process_concurrency: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            process_schedule: default_process(),
            cleanup_schedule: default_cleanup(),
            cleanup_completed_days: 0,
            process_concurrency: default_concurrency(),
        }
    }
}

/// Backoff of transient failures.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// First wait.
    #[serde(default = "default_retry_base", with = "humantime_serde")]
    pub base: Duration,
    /// Longest wait.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            base: default_retry_base(),
            max: default_retry_max(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:7400".into()
}
fn default_store() -> PathBuf {
    PathBuf::from("./fpr-data/orchestrator/store")
}
fn default_store_cache_mb() -> usize {
    16
}
fn default_vault() -> PathBuf {
    PathBuf::from("./fpr-data/vault/run/vault.sock")
}
fn default_display() -> String {
    "{model} {serial}".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_concurrency() -> usize {
    128
}
fn default_vault_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_reconcile_after() -> Duration {
    Duration::from_secs(60)
}
fn default_process() -> String {
    "0 0 * * * *".into()
}
fn default_cleanup() -> String {
    "0 30 * * * *".into()
}
fn default_retry_base() -> Duration {
    Duration::from_secs(30)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(3600)
}

/// Seed variable names that override the file.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("YE_API_BASE_URL", "yubienterprise.base_url"),
    ("AZURE_TENANT_ID", "entra.tenant"),
    ("ENTRA_FIDO_API_CLIENT_ID", "entra.client_id"),
    ("ENTRA_FIDO_API_VERSION", "entra.api_version"),
    (
        "ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES",
        "entra.challenge_timeout_minutes",
    ),
    ("CRON_PROCESS_SHIPMENT_SCHEDULE", "jobs.process_schedule"),
    ("FPR_LOG_FORMAT", "log_format"),
    ("CRON_DATA_CLEANUP_SCHEDULE", "jobs.cleanup_schedule"),
    (
        "CRON_DATA_CLEANUP_COMPLETED_DAYS",
        "jobs.cleanup_completed_days",
    ),
];

// === impl Config ===

impl Config {
    /// Parses TOML, applies the seed's variables from `env`, validates.
    pub fn from_toml(text: &str, env: &dyn Source) -> Result<Self, Error> {
        let bad = |key: &str, reason: String| Error::Config {
            key: key.into(),
            reason,
        };
        let mut doc: toml::Table =
            toml::from_str(text).map_err(|e| bad("config file", e.message().to_owned()))?;
        fpr_config::apply_overrides(&mut doc, ENV_OVERRIDES, env);
        let list = |var: &str| {
            env.var(var).map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
        };
        let mut c: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| bad("config", e.message().to_owned()))?;
        if let Some(a) = list("FIDO_Connector_Allowed_Audiences") {
            c.auth.allowed_audiences = a;
        }
        if let Some(a) = list("FIDO_Connector_Allowed_Client_Apps") {
            c.auth.allowed_client_apps = a;
        }
        c.validate()?;
        Ok(c)
    }

    /// Reads `path` and calls [`Config::from_toml`].
    pub fn load(path: &std::path::Path, env: &dyn Source) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            key: "config file".into(),
            reason: format!("{}: {e}", path.display()),
        })?;
        Self::from_toml(&text, env)
    }

    /// A configuration with the three sections that have no default and every other setting
    /// at its default, as a file with only those sections would give. Call
    /// [`Config::validate`] after changing it.
    pub fn new(yubienterprise: YubiEnterpriseConfig, entra: EntraConfig, auth: AuthConfig) -> Self {
        Self {
            listen: default_listen(),
            health_listen: None,
            metrics_listen: None,
            log_format: default_log_format(),
            store_path: default_store(),
            store_cache_mb: default_store_cache_mb(),
            vault_socket: default_vault(),
            yubienterprise,
            entra,
            okta: None,
            auth,
            jobs: JobsConfig::default(),
            attestation: crate::attestation::AttestationConfig::default(),
            tls: None,
            retry: RetryConfig::default(),
            key_display_name: default_display(),
            upstream_timeout: default_timeout(),
            vault_timeout: default_vault_timeout(),
            reconcile_after: default_reconcile_after(),
            danger_allow_plaintext_http: false,
            max_response_bytes: default_max_response_bytes(),
            rest: None,
            okta_event_hook: None,
            group_orders: GroupOrdersConfig::default(),
        }
    }

    /// Checks every rule [`Config::from_toml`] checks after reading a file.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, reason: &str| {
            Err(Error::Config {
                key: key.into(),
                reason: reason.into(),
            })
        };
        if std::net::SocketAddr::from_str(&self.listen).is_err() {
            return bad("listen", "must be ip:port");
        }
        if self
            .health_listen
            .as_deref()
            .is_some_and(|h| std::net::SocketAddr::from_str(h).is_err())
        {
            return bad("health_listen", "must be ip:port");
        }
        if self
            .metrics_listen
            .as_deref()
            .is_some_and(|h| std::net::SocketAddr::from_str(h).is_err())
        {
            return bad("metrics_listen", "must be ip:port");
        }
        if fpr_telemetry::trace::LogFormat::parse(&self.log_format).is_none() {
            return bad("log_format", "text or json");
        }
        if let Some(rest) = &self.rest {
            if std::net::SocketAddr::from_str(&rest.listen).is_err() {
                return bad("rest.listen", "must be ip:port");
            }
            if rest.order_wait > Duration::from_secs(300) {
                return bad("rest.order_wait", "at most 5 minutes");
            }
            if rest.default_idp == RestIdp::Okta && self.okta.is_none() {
                return bad("rest.default_idp", "okta needs an [okta] section");
            }
        }
        for (key, url) in [
            ("yubienterprise.base_url", &self.yubienterprise.base_url),
            ("entra.login_base", &self.entra.login_base),
            ("entra.graph_base", &self.entra.graph_base),
            ("auth.jwks_url", &self.auth.jwks_url),
        ] {
            if !fpr_config::scheme_ok(url, self.danger_allow_plaintext_http) {
                return bad(
                    key,
                    "must be https (http only with danger_allow_plaintext_http)",
                );
            }
        }
        self.entra.validate()?;
        if self.auth.allowed_audiences.is_empty() {
            return bad("auth.allowed_audiences", "at least one audience");
        }
        if self.auth.allowed_client_apps.is_empty() && !self.auth.danger_allow_any_client_app {
            return bad(
                "auth.allowed_client_apps",
                "at least one client app id (any app of the issuer only with auth.danger_allow_any_client_app)",
            );
        }
        if self.auth.roles_claim.is_empty() {
            return bad("auth.roles_claim", "a claim name");
        }
        if self.auth.clock_skew > Duration::from_secs(300) {
            return bad("auth.clock_skew", "0s to 5m");
        }
        if self.auth.unknown_kid_refresh_interval < Duration::from_secs(1) {
            return bad("auth.unknown_kid_refresh_interval", "at least 1s");
        }
        if !(4096..=64 << 20).contains(&self.max_response_bytes) {
            return bad("max_response_bytes", "4096 to 67108864");
        }
        if !(1..=1024).contains(&self.jobs.process_concurrency) {
            return bad("jobs.process_concurrency", "1 to 1024");
        }
        if !(1..=65536).contains(&self.store_cache_mb) {
            return bad("store_cache_mb", "1 to 65536");
        }
        for (key, d) in [
            ("upstream_timeout", self.upstream_timeout),
            ("vault_timeout", self.vault_timeout),
        ] {
            if d.is_zero() {
                return bad(key, "more than 0s");
            }
        }
        for (key, expr) in [
            ("jobs.process_schedule", &self.jobs.process_schedule),
            ("jobs.cleanup_schedule", &self.jobs.cleanup_schedule),
        ] {
            if cron::Schedule::from_str(expr).is_err() {
                return bad(key, "a cron expression with seconds, e.g. \"0 0 * * * *\"");
            }
        }
        self.yubienterprise.token.source("yubienterprise.token")?;
        if let Some(o) = &self.okta {
            o.auth()?;
            if !fpr_config::scheme_ok(&o.base_url, self.danger_allow_plaintext_http) {
                return bad(
                    "okta.base_url",
                    "must be https (http only with danger_allow_plaintext_http)",
                );
            }
            if o.rp_ids()
                .iter()
                .any(|r| r.is_empty() || r.contains(['/', ':']))
            {
                return bad("okta.enrollment_rp_ids", "bare host names");
            }
        }
        self.entra.client_secret.source("entra.client_secret")?;
        crate::attestation::Policy::check_config(&self.attestation)?;
        if let Some(h) = &self.okta_event_hook {
            if self.rest.is_none() {
                return bad("okta_event_hook", "needs the REST listener ([rest] listen)");
            }
            if self.okta.is_none() {
                return bad(
                    "okta_event_hook",
                    "needs [okta]: the users of its events are Okta's",
                );
            }
            h.secret.source("okta_event_hook.secret")?;
        }
        self.validate_group_orders()
    }

    /// Which secrets are given inline (for start-up warnings).
    pub fn inline_secrets(&self) -> Vec<(&'static str, bool)> {
        let mut v = vec![
            (
                "yubienterprise.token",
                self.yubienterprise.token.danger_inline.is_some(),
            ),
            (
                "entra.client_secret",
                self.entra.client_secret.danger_inline.is_some(),
            ),
        ];
        if let Some(o) = &self.okta {
            v.push((
                "okta.token",
                o.token.as_ref().is_some_and(|t| t.danger_inline.is_some()),
            ));
            v.push((
                "okta.oauth.private_key",
                o.oauth
                    .as_ref()
                    .is_some_and(|a| a.private_key.danger_inline.is_some()),
            ));
        }
        v
    }

    /// The YubiEnterprise token source.
    pub fn ye_token(&self) -> Result<fpr_upstream::SecretSource, Error> {
        self.yubienterprise.token.source("yubienterprise.token")
    }

    /// The Graph client secret source.
    pub fn entra_secret(&self) -> Result<fpr_upstream::SecretSource, Error> {
        self.entra.client_secret.source("entra.client_secret")
    }

    /// Effective settings under the seed's names, secrets redacted.
    pub fn settings(&self) -> std::collections::HashMap<String, String> {
        let mut m = std::collections::HashMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        put("YE_API_BASE_URL", self.yubienterprise.base_url.to_string());
        put("YE_API_TOKEN", "[redacted]".into());
        put("AZURE_TENANT_ID", self.entra.tenant.clone());
        put("ENTRA_FIDO_API_CLIENT_ID", self.entra.client_id.clone());
        put("ENTRA_FIDO_API_CLIENT_SECRET", "[redacted]".into());
        put("ENTRA_FIDO_API_VERSION", self.entra.api_version.clone());
        put(
            "ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES",
            self.entra.challenge_timeout_minutes.to_string(),
        );
        put(
            "CRON_PROCESS_SHIPMENT_SCHEDULE",
            self.jobs.process_schedule.clone(),
        );
        put(
            "CRON_DATA_CLEANUP_SCHEDULE",
            self.jobs.cleanup_schedule.clone(),
        );
        put(
            "CRON_DATA_CLEANUP_COMPLETED_DAYS",
            self.jobs.cleanup_completed_days.to_string(),
        );
        put(
            "FIDO_Connector_Allowed_Audiences",
            self.auth.allowed_audiences.join(","),
        );
        put(
            "FIDO_Connector_Allowed_Client_Apps",
            self.auth.allowed_client_apps.join(","),
        );
        if let Some(o) = &self.okta {
            put("OKTA_ORG_URL", o.base_url.to_string());
            put(
                "OKTA_AUTH",
                if o.oauth.is_some() {
                    "oauth private_key_jwt".into()
                } else {
                    "ssws".into()
                },
            );
            put("OKTA_API_TOKEN", "[redacted]".into());
            put("OKTA_ENROLLMENT_RP_IDS", o.rp_ids().join(","));
        }
        put(
            "FPR_TLS",
            self.tls.as_ref().map_or_else(
                || "off".to_owned(),
                |t| format!("on ({})", t.cert_file.display()),
            ),
        );
        put("FPR_STORE_PATH", self.store_path.display().to_string());
        put("FPR_STORE_CACHE_MB", self.store_cache_mb.to_string());
        put("FPR_VAULT_SOCKET", self.vault_socket.display().to_string());
        put(
            "FPR_UPSTREAM_TIMEOUT",
            humantime_serde::re::humantime::format_duration(self.upstream_timeout).to_string(),
        );
        put(
            "FPR_VAULT_TIMEOUT",
            humantime_serde::re::humantime::format_duration(self.vault_timeout).to_string(),
        );
        put(
            "FPR_RECONCILE_AFTER",
            humantime_serde::re::humantime::format_duration(self.reconcile_after).to_string(),
        );
        put(
            "FPR_PROCESS_CONCURRENCY",
            self.jobs.process_concurrency.to_string(),
        );
        put(
            "FPR_METRICS_LISTEN",
            self.metrics_listen.clone().unwrap_or_else(|| "off".into()),
        );
        put(
            "FPR_REST_LISTEN",
            self.rest
                .as_ref()
                .map_or_else(|| "off".to_owned(), |r| r.listen.clone()),
        );
        m
    }
}

#[cfg(test)]
mod tests;
