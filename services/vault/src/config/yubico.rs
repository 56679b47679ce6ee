//! Settings of Yubico's key sets (where, how often) and of the JOSE algorithms requests use.

use super::*;

/// Where the Yubico JWKS come from.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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

/// JOSE algorithms used for requests (docs/design/protocol.md: configuration, not constants).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
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

#[expect(clippy::expect_used, reason = "a constant URL that parses")]
pub(super) fn default_transport_url() -> Url {
    Url::parse("https://console.yubico.com/.well-known/yubico-transport-keys.jwks")
        .expect("constant URL parses")
}
#[expect(clippy::expect_used, reason = "a constant URL that parses")]
pub(super) fn default_sign_url() -> Url {
    Url::parse("https://console.yubico.com/.well-known/yubico-sign.jwks")
        .expect("constant URL parses")
}
pub(super) fn default_refresh() -> Duration {
    Duration::from_secs(6 * 3600)
}
pub(super) fn default_unknown_kid() -> Duration {
    Duration::from_secs(60)
}
pub(super) fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
pub(super) fn default_alg() -> String {
    KeyManagement::EcdhEsA256kw.name().into()
}
pub(super) fn default_enc() -> String {
    ContentEncryption::A256Gcm.name().into()
}
