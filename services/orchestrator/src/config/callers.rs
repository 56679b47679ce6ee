//! Settings of how callers reach the orchestrator: who may (token checks, roles) and the connector-style REST API.

use super::*;

/// The HTTP listener serving the FIDO Connector's REST API (`/v1/...`) beside the gRPC one:
/// same tokens and roles, TLS when `tls` is set.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// Listen address (ip:port).
    pub listen: String,
    /// The IdP of a create request without an `idp` field (the connector knows only Entra ID).
    #[serde(default = "default_rest_idp")]
    pub default_idp: RestIdp,
    /// How long `POST /v1/fpr/shipments` waits for the order to be placed, to answer with the
    /// YubiEnterprise shipment id as the connector does; past it, it answers with fpr's id and
    /// `"order_placed": false` (the order is still placed). 0 to 5 minutes.
    #[serde(default = "default_order_wait", with = "humantime_serde")]
    pub order_wait: Duration,
}

/// The IdP of a REST create request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RestIdp {
    /// Microsoft Entra ID.
    Entra,
    /// Okta.
    Okta,
}

pub(super) fn default_rest_idp() -> RestIdp {
    RestIdp::Entra
}

pub(super) fn default_order_wait() -> Duration {
    Duration::from_secs(30)
}

pub(super) fn default_max_response_bytes() -> usize {
    fpr_upstream::DEFAULT_MAX_BODY
}

/// Inbound auth.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Where the issuer's keys are.
    pub jwks_url: Url,
    /// `FIDO_Connector_Allowed_Audiences`.
    pub allowed_audiences: Vec<String>,
    /// `FIDO_Connector_Allowed_Client_Apps` (azp/appid). Required: an empty list is refused at
    /// start unless `danger_allow_any_client_app` is set.
    #[serde(default)]
    pub allowed_client_apps: Vec<String>,
    /// Accept a token of any app of the issuer when `allowed_client_apps` is empty (warns).
    #[serde(default)]
    pub danger_allow_any_client_app: bool,
    /// The claim that carries the caller's app roles: `roles` for Entra ID app roles; an Okta
    /// authorization server needs a custom claim (e.g. `fpr_roles`), named here.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Tolerance for `exp`, `nbf` and `iat` against this host's clock (0 to 5 minutes).
    #[serde(default = "default_clock_skew", with = "humantime_serde")]
    pub clock_skew: Duration,
    /// A token signed by a key id the cache does not know makes fpr fetch the issuer's keys at
    /// most once per this interval; other unknown kids are refused without a fetch.
    #[serde(default = "default_key_refresh", with = "humantime_serde")]
    pub unknown_kid_refresh_interval: Duration,
}

pub(super) fn default_roles_claim() -> String {
    "roles".into()
}

pub(super) fn default_clock_skew() -> Duration {
    Duration::from_secs(60)
}

pub(super) fn default_key_refresh() -> Duration {
    Duration::from_secs(60)
}

impl AuthConfig {
    /// Tokens of `issuer`, checked with its keys at `jwks_url`, for `audiences`, from the
    /// client apps `client_apps`; every other setting at its default.
    pub fn new(
        issuer: &str,
        jwks_url: Url,
        audiences: Vec<String>,
        client_apps: Vec<String>,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            jwks_url,
            allowed_audiences: audiences,
            allowed_client_apps: client_apps,
            danger_allow_any_client_app: false,
            roles_claim: default_roles_claim(),
            clock_skew: default_clock_skew(),
            unknown_kid_refresh_interval: default_key_refresh(),
        }
    }
}

impl RestConfig {
    /// The REST API on `listen`, with the default IdP and wait.
    pub fn new(listen: &str) -> Self {
        Self {
            listen: listen.to_owned(),
            default_idp: default_rest_idp(),
            order_wait: default_order_wait(),
        }
    }
}

/// Okta Event Hooks as a trigger (on the REST listener, `/v1/okta/event-hooks`): an admin's
/// "Add" of a pre-enrolled authenticator (`system.mfa.preregister.initiate`) and, for the
/// configured groups, `group.user_membership.add` order a key for the event's user.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OktaEventHookConfig {
    /// The `Authorization` header value the hook is registered with in Okta.
    pub secret: SecretRef,
    /// Groups (id or name) whose new members get a key. Empty: membership events are ignored.
    #[serde(default)]
    pub groups: Vec<String>,
    /// `product_id` when the event does not name one.
    pub default_product_id: u32,
    /// `inventory_product_id` when the event does not name one.
    pub default_inventory_product_id: u32,
    /// `customization_id` when the event does not name one.
    pub default_customization_id: String,
}
