//! The vault's typed configuration: a TOML file plus environment overrides, validated once,
//! before any socket or store opens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fpr_jose::jwe::{Algorithms, ContentEncryption, KeyManagement};
use serde::Deserialize;
use url::Url;

use crate::Error;

pub use fpr_config::{Env, Source};

mod delivery;
mod yubico;
pub use self::delivery::{
    ChannelKind, DeliveryConfig, RecipientPolicy, SmtpConfig, SmtpTls, WebhookConfig,
};
use self::yubico::*;
pub use self::yubico::{JoseConfig, YubicoConfig};

/// The whole vault configuration.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where and how the gRPC server listens.
    #[serde(default)]
    pub server: ServerConfig,
    /// The sealed key store.
    #[serde(default)]
    pub store: StoreConfig,
    /// Yubico's JWKS.
    #[serde(default)]
    pub yubico: YubicoConfig,
    /// JOSE algorithms for requests.
    #[serde(default)]
    pub jose: JoseConfig,
    /// PIN delivery.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// The append-only audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Switches that weaken security; each logs a warning at start.
    #[serde(default)]
    pub danger: DangerConfig,
}

/// Audit log settings.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The JSON-lines file (default: `audit.jsonl` beside the store directory).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// Listener settings.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `unix:<path>` (default `unix:./fpr-data/vault/run/vault.sock`) or `tcp:<addr:port>` (mTLS only).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Unix peer uids allowed to call the vault. Empty: only the vault's own uid.
    #[serde(default)]
    pub allowed_uids: Vec<u32>,
    /// TLS for a TCP listener: required there, with client certificates.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Time to finish in-flight calls after SIGTERM.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Address (ip:port, plain HTTP) of the admin listener serving Prometheus metrics at
    /// `/metrics` (no secret, no shipment id in them). None: off.
    #[serde(default)]
    pub metrics_listen: Option<String>,
    /// Log lines as `text` (default) or `json` (one object a line, with span fields such as
    /// the shipment and the trace id). `FPR_LOG_FORMAT` applies before the file is read.
    #[serde(default = "default_log_format")]
    pub log_format: String,
}

fn default_log_format() -> String {
    "text".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            allowed_uids: Vec::new(),
            tls: None,
            shutdown_grace: default_grace(),
            metrics_listen: None,
            log_format: default_log_format(),
        }
    }
}

/// Server TLS with required client certificates.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the vault.
    pub cert_file: PathBuf,
    /// PEM private key of the vault.
    pub key_file: PathBuf,
    /// PEM CA bundle that client certificates must chain to.
    pub client_ca_file: PathBuf,
    /// SHA-256 fingerprints (hex, of the DER certificate) of the client certificates allowed
    /// to call: chaining to the CA is not enough. At least one.
    #[serde(default)]
    pub allowed_client_sha256: Vec<String>,
}

/// The parsed listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A Unix socket at this path; its directory is created with mode 0700.
    Unix(PathBuf),
    /// A TCP address (mTLS required).
    Tcp(std::net::SocketAddr),
}

/// Store settings.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the store, `vault.redb` (default `./fpr-data/vault/store`).
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// File holding the 32-byte master key (64 hex digits or base64).
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    /// Name of an environment variable holding the master key, when no file is given.
    #[serde(default)]
    pub master_key_env: Option<String>,
    /// The master key before the last rotation: a store still sealed under it (the key file
    /// changed while the vault was down) is re-sealed under the current key at start.
    #[serde(default)]
    pub previous_master_key_file: Option<PathBuf>,
    /// How often the vault re-reads `master_key_file` and, when it holds a new key, re-seals
    /// every stored key under it while serving (also on SIGHUP). 0 s: only on SIGHUP.
    #[serde(default = "default_key_check", with = "humantime_serde")]
    pub master_key_check_interval: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: default_store_path(),
            master_key_file: None,
            master_key_env: None,
            previous_master_key_file: None,
            master_key_check_interval: default_key_check(),
        }
    }
}

/// Switches that weaken security. Off by default; each logs a warning at start.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DangerConfig {
    /// Allow `http://` JWKS and webhook URLs (the sandbox on loopback).
    #[serde(default)]
    pub allow_plaintext_http: bool,
    /// Allow SMTP without TLS (a local relay or the sandbox mailbox).
    #[serde(default)]
    pub allow_plaintext_smtp: bool,
    /// Allow PINs to any well-formed address when no recipient policy is set.
    #[serde(default)]
    pub allow_any_recipient: bool,
}

fn default_listen() -> String {
    "unix:./fpr-data/vault/run/vault.sock".into()
}
fn default_grace() -> Duration {
    Duration::from_secs(10)
}
fn default_key_check() -> Duration {
    Duration::from_secs(60)
}
fn default_store_path() -> PathBuf {
    PathBuf::from("./fpr-data/vault/store")
}
/// Environment variables that override the file, and the setting each one sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("FPR_VAULT_LISTEN", "server.listen"),
    ("FPR_VAULT_METRICS_LISTEN", "server.metrics_listen"),
    ("FPR_LOG_FORMAT", "server.log_format"),
    ("FPR_VAULT_STORE_PATH", "store.path"),
    ("FPR_VAULT_MASTER_KEY_FILE", "store.master_key_file"),
    (
        "FPR_VAULT_PREVIOUS_MASTER_KEY_FILE",
        "store.previous_master_key_file",
    ),
    ("YE_JWKS_TRANSPORT_ENDPOINT", "yubico.transport_jwks_url"),
    ("YE_JWKS_SIGN_ENDPOINT", "yubico.sign_jwks_url"),
    (
        "FPR_VAULT_TRANSPORT_JWKS_FILE",
        "yubico.transport_jwks_file",
    ),
    ("FPR_VAULT_SIGN_JWKS_FILE", "yubico.sign_jwks_file"),
    ("SEND_PIN_URL", "delivery.webhook.url"),
];

// === impl Config ===

impl Config {
    /// Reads `path` (if given) as TOML, applies [`ENV_OVERRIDES`] from `env`, and validates.
    pub fn load(path: Option<&Path>, env: &dyn Source) -> Result<Self, Error> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| Error::Config {
                key: "config file".into(),
                reason: format!("{}: {e}", p.display()),
            })?,
            None => String::new(),
        };
        Self::from_toml(&text, env)
    }

    /// Parses TOML text, applies overrides from `env`, and validates.
    pub fn from_toml(text: &str, env: &dyn Source) -> Result<Self, Error> {
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| Error::Config {
            key: "config file".into(),
            reason: e.message().to_owned(),
        })?;
        fpr_config::apply_overrides(&mut doc, ENV_OVERRIDES, env);
        let config: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config {
                key: "config".into(),
                reason: e.message().to_owned(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule [`Config::from_toml`] checks after reading a file.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, reason: &str| {
            Err(Error::Config {
                key: key.into(),
                reason: reason.into(),
            })
        };
        match self.listen()? {
            Listen::Tcp(_) if self.server.tls.is_none() => {
                return bad(
                    "server.tls",
                    "a tcp listener requires TLS with client certificates",
                );
            }
            _ => {}
        }
        if self
            .server
            .metrics_listen
            .as_deref()
            .is_some_and(|m| m.parse::<std::net::SocketAddr>().is_err())
        {
            return bad("server.metrics_listen", "must be ip:port");
        }
        if fpr_telemetry::trace::LogFormat::parse(&self.server.log_format).is_none() {
            return bad("server.log_format", "text or json");
        }
        if self.store.master_key_file.is_none() && self.store.master_key_env.is_none() {
            return bad(
                "store.master_key_file",
                "set a master key file or store.master_key_env",
            );
        }
        self.algorithms()?;
        let http_ok = self.danger.allow_plaintext_http;
        for (key, url, pinned) in [
            (
                "yubico.transport_jwks_url",
                &self.yubico.transport_jwks_url,
                self.yubico.transport_jwks_file.is_some(),
            ),
            (
                "yubico.sign_jwks_url",
                &self.yubico.sign_jwks_url,
                self.yubico.sign_jwks_file.is_some(),
            ),
        ] {
            if !pinned && !scheme_ok(url, http_ok) {
                return bad(
                    key,
                    "must be https (http only with danger.allow_plaintext_http)",
                );
            }
        }
        if self.yubico.refresh_interval < Duration::from_secs(1) {
            return bad("yubico.refresh_interval", "must be at least 1s");
        }
        let d = &self.delivery;
        if d.allowed_recipient_domains.is_empty()
            && d.allowed_recipients.is_empty()
            && !self.danger.allow_any_recipient
        {
            return bad(
                "delivery.allowed_recipient_domains",
                "set the domains (or delivery.allowed_recipients) that may receive PINs; any address only with danger.allow_any_recipient",
            );
        }
        for dom in &d.allowed_recipient_domains {
            if fpr_domain::email::domain(&format!("x@{dom}")).is_none() {
                return bad(
                    "delivery.allowed_recipient_domains",
                    "each entry must be a domain name such as contoso.com",
                );
            }
        }
        if d.allowed_recipients
            .iter()
            .any(|a| !fpr_domain::email::is_valid(a))
        {
            return bad("delivery.allowed_recipients", fpr_domain::email::RULE);
        }
        if d.max_resends > 100 {
            return bad("delivery.max_resends", "0 to 100");
        }
        if let Some(tls) = &self.server.tls {
            let ok = |h: &String| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
            if tls.allowed_client_sha256.is_empty() || !tls.allowed_client_sha256.iter().all(ok) {
                return bad(
                    "server.tls.allowed_client_sha256",
                    "one or more SHA-256 fingerprints (64 hex digits) of the client certificates allowed",
                );
            }
        }
        if !self.delivery.template.contains("{pin}") {
            return bad("delivery.template", "must contain {pin}");
        }
        if self.delivery.subject.contains("{pin}") {
            return bad("delivery.subject", "must not contain the PIN");
        }
        match self.delivery.channel {
            ChannelKind::Smtp => {
                let Some(smtp) = &self.delivery.smtp else {
                    return bad(
                        "delivery.smtp",
                        "channel smtp needs a [delivery.smtp] section",
                    );
                };
                if smtp.host.is_empty() {
                    return bad("delivery.smtp.host", "must not be empty");
                }
                if smtp.from.parse::<lettre::message::Mailbox>().is_err() {
                    return bad("delivery.smtp.from", "must be an e-mail address");
                }
                if smtp.tls == SmtpTls::None && !self.danger.allow_plaintext_smtp {
                    return bad(
                        "delivery.smtp.tls",
                        "none requires danger.allow_plaintext_smtp",
                    );
                }
                if smtp.username.is_some()
                    && smtp.password_file.is_none()
                    && smtp.password_env.is_none()
                {
                    return bad(
                        "delivery.smtp.password_file",
                        "AUTH needs a password file or password_env",
                    );
                }
            }
            ChannelKind::Webhook => {
                let Some(hook) = &self.delivery.webhook else {
                    return bad(
                        "delivery.webhook",
                        "channel webhook needs a [delivery.webhook] section (or SEND_PIN_URL)",
                    );
                };
                if !scheme_ok(&hook.url, http_ok) {
                    return bad(
                        "delivery.webhook.url",
                        "must be https (http only with danger.allow_plaintext_http)",
                    );
                }
                if hook.hmac_secret_file.is_none() && hook.hmac_secret_env.is_none() {
                    return bad(
                        "delivery.webhook.hmac_secret_file",
                        "the webhook must be signed: set a secret file or env",
                    );
                }
            }
        }
        Ok(())
    }

    /// Where the audit log is written.
    pub fn audit_path(&self) -> PathBuf {
        self.audit.path.clone().unwrap_or_else(|| {
            let store = &self.store.path;
            store
                .parent()
                .map_or_else(|| PathBuf::from("audit.jsonl"), |p| p.join("audit.jsonl"))
        })
    }

    /// The parsed listen address.
    pub fn listen(&self) -> Result<Listen, Error> {
        let l = &self.server.listen;
        if let Some(p) = l.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(Error::Config {
                    key: "server.listen".into(),
                    reason: "empty socket path".into(),
                });
            }
            Ok(Listen::Unix(PathBuf::from(p)))
        } else if let Some(a) = l.strip_prefix("tcp:") {
            a.parse().map(Listen::Tcp).map_err(|_| Error::Config {
                key: "server.listen".into(),
                reason: "tcp:<ip:port> expected".into(),
            })
        } else {
            Err(Error::Config {
                key: "server.listen".into(),
                reason: "must start with unix: or tcp:".into(),
            })
        }
    }

    /// The JWE algorithms for requests.
    pub fn algorithms(&self) -> Result<Algorithms, Error> {
        let alg = self.jose.alg.parse().map_err(|_| Error::Config {
            key: "jose.alg".into(),
            reason: "not in the allow-list".into(),
        })?;
        let enc = self.jose.enc.parse().map_err(|_| Error::Config {
            key: "jose.enc".into(),
            reason: "not in the allow-list".into(),
        })?;
        Ok(Algorithms { alg, enc })
    }

    /// The effective settings by name, secrets redacted: what `GetStatus` reports.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        put("FPR_VAULT_LISTEN", self.server.listen.clone());
        put(
            "FPR_VAULT_METRICS_LISTEN",
            self.server
                .metrics_listen
                .clone()
                .unwrap_or_else(|| "off".into()),
        );
        put(
            "FPR_VAULT_ALLOWED_UIDS",
            format!("{:?}", self.server.allowed_uids),
        );
        put(
            "FPR_VAULT_STORE_PATH",
            self.store.path.display().to_string(),
        );
        put("FPR_VAULT_MASTER_KEY", "[redacted]".into());
        if let Some(p) = &self.store.previous_master_key_file {
            put(
                "FPR_VAULT_PREVIOUS_MASTER_KEY_FILE",
                p.display().to_string(),
            );
        }
        put(
            "FPR_VAULT_MASTER_KEY_CHECK_INTERVAL",
            humantime_serde::re::humantime::format_duration(self.store.master_key_check_interval)
                .to_string(),
        );
        put(
            "YE_JWKS_TRANSPORT_ENDPOINT",
            self.yubico.transport_jwks_url.to_string(),
        );
        put(
            "YE_JWKS_SIGN_ENDPOINT",
            self.yubico.sign_jwks_url.to_string(),
        );
        if let Some(p) = &self.yubico.transport_jwks_file {
            put("FPR_VAULT_TRANSPORT_JWKS_FILE", p.display().to_string());
        }
        if let Some(p) = &self.yubico.sign_jwks_file {
            put("FPR_VAULT_SIGN_JWKS_FILE", p.display().to_string());
        }
        put(
            "FPR_VAULT_JWKS_REFRESH_INTERVAL",
            humantime_serde::re::humantime::format_duration(self.yubico.refresh_interval)
                .to_string(),
        );
        put(
            "FPR_VAULT_PIN_RECIPIENTS",
            RecipientPolicy::of(self).describe(),
        );
        put(
            "FPR_VAULT_MAX_RESENDS",
            self.delivery.max_resends.to_string(),
        );
        put(
            "FPR_VAULT_RESEND_MIN_INTERVAL",
            humantime_serde::re::humantime::format_duration(self.delivery.resend_min_interval)
                .to_string(),
        );
        put(
            "FPR_VAULT_AUDIT_PATH",
            self.audit_path().display().to_string(),
        );
        put("FPR_VAULT_JWE_ALG", self.jose.alg.clone());
        put("FPR_VAULT_JWE_ENC", self.jose.enc.clone());
        put(
            "FPR_VAULT_PIN_CHANNEL",
            format!("{:?}", self.delivery.channel).to_lowercase(),
        );
        if let Some(s) = &self.delivery.smtp {
            put(
                "FPR_VAULT_SMTP",
                format!("{}:{} ({:?})", s.host, s.port, s.tls).to_lowercase(),
            );
            put("FPR_VAULT_SMTP_FROM", s.from.clone());
            put(
                "FPR_VAULT_SMTP_PASSWORD",
                if s.username.is_some() {
                    "[redacted]".into()
                } else {
                    "none".into()
                },
            );
        }
        if let Some(w) = &self.delivery.webhook {
            // The Logic App's URL carries a signature in its query: show scheme, host and path only.
            let mut shown = w.url.clone();
            shown.set_query(None);
            put("SEND_PIN_URL", shown.to_string());
            put("FPR_VAULT_WEBHOOK_HMAC_SECRET", "[redacted]".into());
        }
        put(
            "FPR_VAULT_DANGER_ALLOW_PLAINTEXT_HTTP",
            self.danger.allow_plaintext_http.to_string(),
        );
        put(
            "FPR_VAULT_DANGER_ALLOW_PLAINTEXT_SMTP",
            self.danger.allow_plaintext_smtp.to_string(),
        );
        m
    }
}

use fpr_config::scheme_ok;

#[cfg(test)]
mod tests;
