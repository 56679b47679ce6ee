//! Settings of the three upstreams: YubiEnterprise, Microsoft Entra ID (Graph) and Okta.

use super::*;

/// YubiEnterprise settings.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct YubiEnterpriseConfig {
    /// `YE_API_BASE_URL`.
    pub base_url: Url,
    /// The API token.
    pub token: SecretRef,
}

/// Entra settings.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EntraConfig {
    /// `AZURE_TENANT_ID`.
    pub tenant: String,
    /// `ENTRA_FIDO_API_CLIENT_ID`.
    pub client_id: String,
    /// The client secret (`ENTRA-FIDO-API-CLIENT-SECRET`).
    pub client_secret: SecretRef,
    /// Login base (default `https://login.microsoftonline.com`).
    #[serde(default = "default_login")]
    pub login_base: Url,
    /// Graph base (default `https://graph.microsoft.com`).
    #[serde(default = "default_graph")]
    pub graph_base: Url,
    /// `ENTRA_FIDO_API_VERSION`: `beta` (default) or `v1.0`.
    #[serde(default = "default_version")]
    pub api_version: String,
    /// `ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES` (5–43,200; default 20,160).
    #[serde(default = "default_challenge")]
    pub challenge_timeout_minutes: u32,
    /// How long Yubico usually takes from the order to the shipped key (default 10 days): a
    /// shorter challenge lifetime is warned about at start and in GetStatus.
    #[serde(default = "default_fulfilment", with = "humantime_serde")]
    pub expected_fulfilment: Duration,
    /// Re-issue expiring challenges (default true): a shipment whose challenge expires within
    /// `reissue_margin` while YubiEnterprise still allows edits is canceled there and ordered
    /// again with a new challenge (one live order at any time). When false, such shipments are
    /// flagged (history, a warning) and left as they are.
    #[serde(default = "default_true")]
    pub reissue_expiring: bool,
    /// How long before its challenge expires a shipment counts as expiring (default 2 days;
    /// shorter than the challenge lifetime).
    #[serde(default = "default_reissue_margin", with = "humantime_serde")]
    pub reissue_margin: Duration,
}

fn default_true() -> bool {
    true
}

fn default_reissue_margin() -> Duration {
    Duration::from_secs(2 * 86_400)
}

/// Okta settings.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    /// `https://{yourOktaDomain}`.
    pub base_url: Url,
    /// The SSWS API token (or use `oauth`).
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// An OAuth 2.0 service app with `private_key_jwt` (instead of `token`).
    #[serde(default)]
    pub oauth: Option<OktaOauth>,
    /// `enrollmentRpIds` (default: the org's host name).
    #[serde(default)]
    pub enrollment_rp_ids: Vec<String>,
    /// When a send-pin's answer is lost (fpr stopped during it, a timeout, a 5xx, a broken
    /// connection), ask Okta once more instead of reporting `pin_delivery_unknown`. Okta's
    /// send-pin mails the same PIN to the same user again, so the price is a possible second
    /// identical mail; the default (false) asks a person instead.
    #[serde(default)]
    pub resend_pin_when_unknown: bool,
}

impl EntraConfig {
    /// Entra ID at Microsoft's public endpoints, with the default Graph version and challenge
    /// lifetime.
    pub fn new(tenant: &str, client_id: &str, client_secret: SecretRef) -> Self {
        Self {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            login_base: default_login(),
            graph_base: default_graph(),
            api_version: default_version(),
            challenge_timeout_minutes: default_challenge(),
            expected_fulfilment: default_fulfilment(),
            reissue_expiring: true,
            reissue_margin: default_reissue_margin(),
        }
    }

    /// How long before expiry a challenge counts as expiring, in seconds, and whether such
    /// orders are re-issued. None on v1.0 (5-minute challenges cannot outlive any order) or
    /// with a margin not shorter than the challenge lifetime (every order would count as
    /// expiring at once; the start-up warning says so).
    pub fn expiry_margin(&self) -> Option<(i64, bool)> {
        let margin = self.reissue_margin.as_secs();
        let lifetime = u64::from(self.challenge_timeout_minutes) * 60;
        (self.api_version == "beta" && margin < lifetime).then(|| {
            (
                i64::try_from(margin).unwrap_or(i64::MAX),
                self.reissue_expiring,
            )
        })
    }

    /// The Graph version, the challenge lifetime and the re-issue margin.
    pub(super) fn validate(&self) -> Result<(), Error> {
        let bad = |key: &str, reason: &str| {
            Err(Error::Config {
                key: key.into(),
                reason: reason.into(),
            })
        };
        if !matches!(self.api_version.as_str(), "beta" | "v1.0") {
            return bad("entra.api_version", "beta or v1.0");
        }
        if !(5..=43_200).contains(&self.challenge_timeout_minutes) {
            return bad("entra.challenge_timeout_minutes", "5 to 43200");
        }
        Ok(())
    }

    /// Why keys may ship after their challenge expired, if they may: the v1.0 API (5-minute
    /// challenges) or a lifetime shorter than the expected fulfilment.
    pub fn challenge_warning(&self) -> Option<String> {
        let days = |s: u64| s as f64 / 86_400.0;
        if self.api_version == "v1.0" {
            return Some(
                "ENTRA_FIDO_API_VERSION=v1.0 issues 5-minute challenges: every key Yubico \
                 programs will be refused at registration; use beta"
                    .into(),
            );
        }
        let lifetime = u64::from(self.challenge_timeout_minutes) * 60;
        let expected = self.expected_fulfilment.as_secs();
        (lifetime < expected).then(|| {
            let reissue = match self.expiry_margin() {
                Some((_, true)) => {
                    "; orders still editable are re-issued before their challenge expires"
                }
                Some((_, false)) => "; orders whose challenge nears expiry are flagged",
                None => {
                    "; expiring orders are not flagged, as entra.reissue_margin is not \
                         shorter than the lifetime"
                }
            };
            format!(
                "ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES={} ({:.1} days) is shorter than the \
                 expected fulfilment ({:.1} days, entra.expected_fulfilment): keys that ship \
                 later cannot be registered{reissue}",
                self.challenge_timeout_minutes,
                days(lifetime),
                days(expected)
            )
        })
    }
}

impl OktaConfig {
    /// An Okta org with an SSWS token and every other setting at its default.
    pub fn with_token(base_url: Url, token: SecretRef) -> Self {
        Self {
            base_url,
            token: Some(token),
            oauth: None,
            enrollment_rp_ids: Vec::new(),
            resend_pin_when_unknown: false,
        }
    }

    /// The RP ids to enroll for.
    pub fn rp_ids(&self) -> Vec<String> {
        if self.enrollment_rp_ids.is_empty() {
            self.base_url
                .host_str()
                .map(|h| vec![h.to_owned()])
                .unwrap_or_default()
        } else {
            self.enrollment_rp_ids.clone()
        }
    }

    /// How the client authenticates.
    pub fn auth(&self) -> Result<fpr_okta::Auth, Error> {
        match (&self.token, &self.oauth) {
            (Some(t), None) => Ok(fpr_okta::Auth::Ssws(t.source("okta.token")?)),
            (None, Some(o)) => Ok(fpr_okta::Auth::PrivateKeyJwt {
                client_id: o.client_id.clone(),
                key: o.private_key.source("okta.oauth.private_key")?,
                key_id: o.key_id.clone(),
            }),
            _ => Err(Error::Config {
                key: "okta.token".into(),
                reason: "set exactly one of token (SSWS) or [okta.oauth]".into(),
            }),
        }
    }
}

/// An Okta OAuth service app (client credentials, `private_key_jwt`, scope `okta.users.manage`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OktaOauth {
    /// The app's client id.
    pub client_id: String,
    /// PEM private key (EC P-256 or RSA, PKCS#8).
    pub private_key: SecretRef,
    /// The key id registered with the app.
    pub key_id: String,
}

#[expect(clippy::expect_used, reason = "a constant URL")]
pub(super) fn default_login() -> Url {
    Url::parse("https://login.microsoftonline.com").expect("constant URL")
}
#[expect(clippy::expect_used, reason = "a constant URL")]
pub(super) fn default_graph() -> Url {
    Url::parse("https://graph.microsoft.com").expect("constant URL")
}
pub(super) fn default_fulfilment() -> Duration {
    Duration::from_secs(10 * 86_400)
}
pub(super) fn default_version() -> String {
    "beta".into()
}
pub(super) fn default_challenge() -> u32 {
    20_160
}
