//! Settings of PIN delivery: the channel (SMTP or webhook), the recipient policy and the resend limits.

use super::*;

/// The PIN delivery channel.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// E-mail through an SMTP relay.
    Smtp,
    /// JSON POST to an HTTPS webhook (like the seed's `SEND_PIN_URL` Logic App).
    Webhook,
}

/// PIN delivery settings.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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

pub(super) fn default_max_resends() -> u32 {
    3
}

pub(super) fn default_resend_interval() -> Duration {
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
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
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
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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

impl SmtpConfig {
    /// A relay at `host:port` sending from `from`, with STARTTLS and no login.
    pub fn new(host: &str, port: u16, from: &str) -> Self {
        Self {
            host: host.to_owned(),
            port,
            tls: default_smtp_tls(),
            from: from.to_owned(),
            username: None,
            password_file: None,
            password_env: None,
            timeout: default_timeout(),
        }
    }
}

pub(super) fn default_channel() -> ChannelKind {
    ChannelKind::Smtp
}
pub(super) fn default_subject() -> String {
    "Your new security key's PIN".into()
}
pub(super) fn default_template() -> String {
    // Sent to the user's manager by default, or to the contacts the request named: it says
    // whose key it is rather than addressing the reader as the user.
    "A pre-registered security key (serial {serial}) is on its way to {display_name} ({upn}).\n\n\
     Its PIN is: {pin}\n\n\
     Give this PIN to {display_name} separately from the key: both are needed to sign in.\n"
        .into()
}
pub(super) fn default_smtp_port() -> u16 {
    587
}
pub(super) fn default_smtp_tls() -> SmtpTls {
    SmtpTls::Starttls
}
