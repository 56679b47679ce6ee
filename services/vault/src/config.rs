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

/// The whole vault configuration.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The JSON-lines file (default: `audit.jsonl` beside the store directory).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// Listener settings.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the sled store (default `./fpr-data/vault/store`).
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

/// Where the Yubico JWKS come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YubicoConfig {
    /// `YE_JWKS_TRANSPORT_ENDPOINT`: URL of the transport (encryption) JWKS.
    #[serde(default = "default_transport_url")]
    pub transport_jwks_url: Url,
    /// `YE_JWKS_SIGN_ENDPOINT`: URL of the signing JWKS.
    #[serde(default = "default_sign_url")]
    pub sign_jwks_url: Url,
    /// Pin the transport JWKS from this file instead of fetching it (air-gapped sites).
    #[serde(default)]
    pub transport_jwks_file: Option<PathBuf>,
    /// Pin the signing JWKS from this file instead of fetching it.
    #[serde(default)]
    pub sign_jwks_file: Option<PathBuf>,
    /// How often fetched sets are refreshed.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Least time between two refreshes caused by an unknown kid.
    #[serde(default = "default_unknown_kid", with = "humantime_serde")]
    pub unknown_kid_min_interval: Duration,
    /// Timeout of one JWKS fetch.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub fetch_timeout: Duration,
}

impl Default for YubicoConfig {
    fn default() -> Self {
        Self {
            transport_jwks_url: default_transport_url(),
            sign_jwks_url: default_sign_url(),
            transport_jwks_file: None,
            sign_jwks_file: None,
            refresh_interval: default_refresh(),
            unknown_kid_min_interval: default_unknown_kid(),
            fetch_timeout: default_timeout(),
        }
    }
}

/// JOSE algorithms used for requests (PROTOCOL.md: configuration, not constants).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoseConfig {
    /// JWE `alg` (default `ECDH-ES+A256KW`).
    #[serde(default = "default_alg")]
    pub alg: String,
    /// JWE `enc` (default `A256GCM`).
    #[serde(default = "default_enc")]
    pub enc: String,
}

impl Default for JoseConfig {
    fn default() -> Self {
        Self {
            alg: default_alg(),
            enc: default_enc(),
        }
    }
}

/// The PIN delivery channel.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// E-mail through an SMTP relay.
    Smtp,
    /// JSON POST to an HTTPS webhook (like the seed's `SEND_PIN_URL` Logic App).
    Webhook,
}

/// PIN delivery settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Which channel sends PINs.
    #[serde(default = "default_channel")]
    pub channel: ChannelKind,
    /// Subject line.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Message body template; must contain `{pin}`. Placeholders: `{pin}`, `{display_name}`,
    /// `{upn}`, `{serial}`, `{shipment_id}`.
    #[serde(default = "default_template")]
    pub template: String,
    /// SMTP settings (channel `smtp`).
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// Webhook settings (channel `webhook`).
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// Domains whose addresses may receive a PIN (exact match, case-insensitive).
    #[serde(default)]
    pub allowed_recipient_domains: Vec<String>,
    /// Single addresses that may receive a PIN besides those domains.
    #[serde(default)]
    pub allowed_recipients: Vec<String>,
    /// Sends of one shipment's PIN after the first (ResendPin), at most.
    #[serde(default = "default_max_resends")]
    pub max_resends: u32,
    /// Least time between two sends of one shipment's PIN.
    #[serde(default = "default_resend_interval", with = "humantime_serde")]
    pub resend_min_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            channel: default_channel(),
            subject: default_subject(),
            template: default_template(),
            smtp: None,
            webhook: None,
            allowed_recipient_domains: Vec::new(),
            allowed_recipients: Vec::new(),
            max_resends: default_max_resends(),
            resend_min_interval: default_resend_interval(),
        }
    }
}

fn default_max_resends() -> u32 {
    3
}

fn default_resend_interval() -> Duration {
    Duration::from_secs(300)
}

/// Who may receive a PIN: the vault's own rule, checked at SealRequests, CheckRecipients,
/// RebindRecipients and DeliverPin, whatever the orchestrator asks.
#[derive(Debug, Clone, Default)]
pub struct RecipientPolicy {
    domains: Vec<String>,
    addresses: Vec<String>,
    any: bool,
}

impl RecipientPolicy {
    /// The policy of `config`.
    pub fn of(config: &Config) -> Self {
        Self {
            domains: config
                .delivery
                .allowed_recipient_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            addresses: config
                .delivery
                .allowed_recipients
                .iter()
                .map(|a| a.to_ascii_lowercase())
                .collect(),
            any: config.danger.allow_any_recipient,
        }
    }

    /// Checks one address: the e-mail rule, then the allowed domains and addresses.
    pub fn check(&self, address: &str) -> Result<(), String> {
        fpr_domain::email::check(address)
            .map_err(|r| format!("{}: {r}", fpr_domain::email::RULE))?;
        if self.any {
            return Ok(());
        }
        let lower = address.to_ascii_lowercase();
        let domain = fpr_domain::email::domain(address).unwrap_or_default();
        if self.addresses.contains(&lower) || self.domains.contains(&domain) {
            Ok(())
        } else {
            Err(format!(
                "is outside the vault's recipient policy (domain {domain:?} is not allowed)"
            ))
        }
    }

    /// A description for the settings (`GetStatus`).
    pub fn describe(&self) -> String {
        if self.any {
            return "any (danger.allow_any_recipient)".into();
        }
        let mut all = self
            .domains
            .iter()
            .map(|d| format!("@{d}"))
            .collect::<Vec<_>>();
        all.extend(self.addresses.iter().cloned());
        all.join(",")
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS: only with `danger.allow_plaintext_smtp`.
    None,
}

/// SMTP relay settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name.
    pub host: String,
    /// Relay port (default 587).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Connection security.
    #[serde(default = "default_smtp_tls")]
    pub tls: SmtpTls,
    /// Sender address.
    pub from: String,
    /// AUTH user name; no AUTH when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the AUTH password (read at each send, so rotation needs no restart).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the AUTH password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Timeout of one delivery.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Webhook settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `SEND_PIN_URL`: where the JSON is POSTed (https, unless `danger.allow_plaintext_http`).
    pub url: Url,
    /// File holding the HMAC-SHA256 key for the `X-Fpr-Signature` header (read at each send).
    #[serde(default)]
    pub hmac_secret_file: Option<PathBuf>,
    /// Environment variable holding the HMAC key.
    #[serde(default)]
    pub hmac_secret_env: Option<String>,
    /// Timeout of one delivery.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Switches that weaken security. Off by default; each logs a warning at start.
#[derive(Debug, Clone, Default, Deserialize)]
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
#[expect(clippy::expect_used, reason = "a constant URL that parses")]
fn default_transport_url() -> Url {
    Url::parse("https://console.yubico.com/.well-known/yubico-transport-keys.jwks")
        .expect("constant URL parses")
}
#[expect(clippy::expect_used, reason = "a constant URL that parses")]
fn default_sign_url() -> Url {
    Url::parse("https://console.yubico.com/.well-known/yubico-sign.jwks")
        .expect("constant URL parses")
}
fn default_refresh() -> Duration {
    Duration::from_secs(6 * 3600)
}
fn default_unknown_kid() -> Duration {
    Duration::from_secs(60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_alg() -> String {
    KeyManagement::EcdhEsA256kw.name().into()
}
fn default_enc() -> String {
    ContentEncryption::A256Gcm.name().into()
}
fn default_channel() -> ChannelKind {
    ChannelKind::Smtp
}
fn default_subject() -> String {
    "Your new security key's PIN".into()
}
fn default_template() -> String {
    // Sent to the user's manager by default, or to the contacts the request named: it says
    // whose key it is rather than addressing the reader as the user.
    "A pre-registered security key (serial {serial}) is on its way to {display_name} ({upn}).\n\n\
     Its PIN is: {pin}\n\n\
     Give this PIN to {display_name} separately from the key: both are needed to sign in.\n"
        .into()
}
fn default_smtp_port() -> u16 {
    587
}
fn default_smtp_tls() -> SmtpTls {
    SmtpTls::Starttls
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

    fn validate(&self) -> Result<(), Error> {
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
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const MINIMAL: &str = r#"
        [store]
        master_key_file = "/k"
        [delivery]
        channel = "smtp"
        allowed_recipient_domains = ["example.com"]
        [delivery.smtp]
        host = "smtp.example.com"
        from = "keys@example.com"
    "#;

    #[test]
    fn minimal_file_loads_with_defaults() {
        let c = Config::from_toml(MINIMAL, &env(&[])).unwrap();
        assert!(matches!(c.listen().unwrap(), Listen::Unix(_)));
        assert_eq!(c.algorithms().unwrap(), Algorithms::default());
        assert_eq!(c.yubico.refresh_interval, Duration::from_secs(6 * 3600));
    }

    #[test]
    fn env_overrides_the_file() {
        let c = Config::from_toml(
            MINIMAL,
            &env(&[("YE_JWKS_SIGN_ENDPOINT", "https://keys.example/sign.jwks")]),
        )
        .unwrap();
        assert_eq!(
            c.yubico.sign_jwks_url.as_str(),
            "https://keys.example/sign.jwks"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                MINIMAL.replace("master_key_file = \"/k\"", ""),
                "store.master_key_file",
            ),
            (format!("{MINIMAL}\n[jose]\nalg = \"RSA1_5\""), "jose.alg"),
            (
                format!("[server]\nlisten = \"tcp:127.0.0.1:1\"\n{MINIMAL}"),
                "server.tls",
            ),
            (
                MINIMAL.replace(
                    "host = \"smtp.example.com\"",
                    "host = \"smtp.example.com\"\ntls = \"none\"",
                ),
                "delivery.smtp.tls",
            ),
            (
                format!("{MINIMAL}\n[yubico]\nsign_jwks_url = \"http://x/\""),
                "yubico.sign_jwks_url",
            ),
            (
                MINIMAL.replace("allowed_recipient_domains = [\"example.com\"]", ""),
                "delivery.allowed_recipient_domains",
            ),
            (
                MINIMAL.replace("[\"example.com\"]", "[\"@example.com\"]"),
                "delivery.allowed_recipient_domains",
            ),
            (
                format!(
                    "[server]\nlisten = \"tcp:127.0.0.1:1\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"\n{MINIMAL}"
                ),
                "server.tls.allowed_client_sha256",
            ),
        ];
        for (text, key) in cases {
            match Config::from_toml(&text, &env(&[])) {
                Err(Error::Config { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
        assert!(matches!(
            Config::from_toml("[nope]\nx=1", &env(&[])),
            Err(Error::Config { .. })
        ));
    }

    #[test]
    fn recipient_policy_allows_listed_domains_and_addresses_only() {
        let c = Config::from_toml(
            &MINIMAL.replace(
                "allowed_recipient_domains = [\"example.com\"]",
                "allowed_recipient_domains = [\"Example.com\"]\nallowed_recipients = [\"pins@partner.example\"]",
            ),
            &env(&[]),
        )
        .unwrap();
        let p = RecipientPolicy::of(&c);
        assert!(p.check("ada@example.com").is_ok());
        assert!(p.check("ADA@EXAMPLE.COM").is_ok());
        assert!(p.check("pins@partner.example").is_ok());
        for bad in [
            "eve@evil.example",
            "ada@sub.example.com",
            "ada@example.com.evil.example",
            "other@partner.example",
            "Ada <ada@example.com>",
            "ada@example.com\r\nBcc: eve@evil.example",
        ] {
            assert!(p.check(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_redact_secrets() {
        let text = format!(
            "{}\n[delivery.webhook]\nurl = \"https://logic.example/x?sig=SECRETSIG\"\nhmac_secret_env = \"H\"",
            MINIMAL.replace("channel = \"smtp\"", "channel = \"webhook\"")
        );
        let c = Config::from_toml(&text, &env(&[])).unwrap();
        let s = c.settings();
        assert!(!format!("{s:?}").contains("SECRETSIG"));
        assert_eq!(s["FPR_VAULT_MASTER_KEY"], "[redacted]");
    }
}
