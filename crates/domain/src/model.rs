//! The shipment record the orchestrator keeps (no PIN, no private key: JWEs are encrypted to
//! Yubico or to the vault's keys).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A shipment's id (`shp_` and up to 60 letters, digits or `_`), checked once where it
/// enters: every workflow call takes one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShipmentId(String);

// === impl ShipmentId ===

impl ShipmentId {
    /// The id in `s`, or the violation of the `shipment_id` field.
    pub fn try_new(s: &str) -> Result<Self, crate::Violation> {
        if s.starts_with("shp_")
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(crate::Violation::new(
                "shipment_id",
                "an id returned by CreateShipment (shp_…)",
            ))
        }
    }

    /// A new id that sorts by creation: nanoseconds since the epoch, then a counter that
    /// keeps ids of the same nanosecond apart.
    pub fn generated(unix_nanos: u128, counter: u32) -> Self {
        Self(format!("shp_{unix_nanos:024x}{counter:08x}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ShipmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The overall state.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// In progress.
    Ongoing,
    /// Done.
    Complete,
    /// Stopped on an error.
    Error,
    /// Canceled.
    Canceled,
}

/// The last step reached. Each is durable before the next upstream call.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Validated and recorded.
    Accepted,
    /// Recipients resolved, creation options fetched, requests sealed.
    Sealed,
    /// About to call YubiEnterprise create: if found here after a crash, the outcome is unknown.
    Ordering,
    /// YubiEnterprise accepted the order.
    Ordered,
    /// Shipped: responses read.
    Shipped,
    /// The credential is registered at the IdP.
    Registered,
    /// The PIN was delivered.
    PinSent,
    /// Finished.
    Complete,
}

impl Step {
    /// The name used in the API and in `step_times`.
    pub fn name(self) -> &'static str {
        match self {
            Step::Accepted => "accepted",
            Step::Sealed => "sealed",
            Step::Ordering => "ordering",
            Step::Ordered => "ordered",
            Step::Shipped => "shipped",
            Step::Registered => "registered",
            Step::PinSent => "pin_sent",
            Step::Complete => "complete",
        }
    }
}

/// A side effect at an upstream that was started but whose outcome is not recorded yet. It is
/// written (and flushed) before the call and cleared with the step the call leads to; found
/// set, the call's outcome is unknown (a crash, a lost answer) and the workflow finds it out
/// instead of repeating the call blindly. (The YubiEnterprise order has its own step,
/// [`Step::Ordering`].)
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Okta `enroll` (makes an enrollment at Okta).
    OktaEnroll,
    /// Okta `activate` (registers the credential at Okta).
    OktaActivate,
    /// Okta `send-pin` (Okta e-mails the PIN).
    OktaSendPin,
}

/// Which IdP.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Idp {
    /// Microsoft Entra ID.
    Entra,
    /// Okta.
    Okta,
}

/// One shipment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// fpr's id (sortable by creation).
    pub id: String,
    /// The caller's idempotency key.
    pub idempotency_key: String,
    /// The IdP.
    pub idp: Idp,
    /// The user as given.
    pub user_id: String,
    /// The IdP's id of the user, once looked up.
    #[serde(default)]
    pub idp_user_id: Option<String>,
    /// Display name, once looked up.
    #[serde(default)]
    pub display_name: String,
    /// Sign-in name, once looked up.
    #[serde(default)]
    pub upn: String,
    /// State.
    pub state: State,
    /// Last step reached.
    pub step: Step,
    /// Error kind when in error.
    #[serde(default)]
    pub error_kind: String,
    /// Error message when in error.
    #[serde(default)]
    pub error_message: String,
    /// The last transient error.
    #[serde(default)]
    pub last_error: String,
    /// Unix seconds before which processing waits (backoff, Retry-After).
    #[serde(default)]
    pub not_before: i64,
    /// Transient failures in a row.
    #[serde(default)]
    pub attempts: u32,
    /// PIN length.
    pub pin_length: u32,
    /// Force PIN change.
    pub force_change: bool,
    /// Explicit PIN recipients from the request.
    #[serde(default)]
    pub emails_to: Vec<String>,
    /// The YubiEnterprise shipment body without the JWEs (nested FPR shape).
    pub shipping: Value,
    /// Resolved PIN recipients.
    #[serde(default)]
    pub pin_recipients: Vec<String>,
    /// Creation options as the IdP returned them.
    #[serde(default)]
    pub creation_options: Option<Value>,
    /// When the challenge of `creation_options` expires (unix seconds; Entra ID): a key
    /// programmed with it cannot be registered after that.
    #[serde(default)]
    pub challenge_expires_at: Option<i64>,
    /// Vault request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Credential request JWE (to Yubico).
    #[serde(default)]
    pub credential_request_jwe: Option<String>,
    /// PIN request JWE (to Yubico).
    #[serde(default)]
    pub pin_request_jwe: Option<String>,
    /// Okta's enrollment id (Okta shipments).
    #[serde(default)]
    pub okta_enrollment_id: Option<String>,
    /// YubiEnterprise shipment id.
    #[serde(default)]
    pub ye_shipment_id: Option<String>,
    /// YubiEnterprise state id.
    #[serde(default)]
    pub ye_state_id: u32,
    /// YubiEnterprise state message.
    #[serde(default)]
    pub ye_state_message: String,
    /// Serial number.
    #[serde(default)]
    pub serial: String,
    /// Firmware version.
    #[serde(default)]
    pub firmware: String,
    /// Tracking link.
    #[serde(default)]
    pub tracking_link: String,
    /// Credential response JWE (to the vault's key).
    #[serde(default)]
    pub credential_response_jwe: Option<String>,
    /// PIN response JWE (to the vault's key).
    #[serde(default)]
    pub pin_response_jwe: Option<String>,
    /// Registered credential id (base64url).
    #[serde(default)]
    pub credential_id: String,
    /// PIN deliveries.
    #[serde(default)]
    pub pin_deliveries: u32,
    /// Unix seconds of each step.
    #[serde(default)]
    pub step_times: BTreeMap<String, i64>,
    /// Created, unix seconds.
    pub created_at: i64,
    /// Updated, unix seconds.
    pub updated_at: i64,
    /// Reason for a manual completion or cancel.
    #[serde(default)]
    pub admin_reason: String,
    /// The upstream call in flight, with the unix second it started.
    #[serde(default)]
    pub in_flight: Option<(Effect, i64)>,
    /// What happened to the shipment besides its steps, oldest first: where an order's ids
    /// came from, a re-issued challenge, an order canceled to be placed again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Times the order was placed again with a new challenge (Entra ID).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reissues: u32,
    /// YubiEnterprise orders of this shipment canceled to be replaced, oldest first. While the
    /// current `ye_shipment_id` is among them, its cancel is under way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced_ye_ids: Vec<String>,
    /// Set when YubiEnterprise refused to cancel the order for a re-issue: not tried again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reissue_refused: bool,
}

/// One entry of a shipment's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Unix seconds.
    pub at: i64,
    /// What happened, for people.
    pub event: String,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if signature"
)]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Record {
    /// The name the vault keeps this shipment's keys under: the id, and after each re-issue
    /// (a new challenge sealed anew) the id and `.r<n>`.
    pub fn vault_ref(&self) -> String {
        if self.reissues == 0 {
            self.id.clone()
        } else {
            format!("{}.r{}", self.id, self.reissues)
        }
    }

    /// Adds `event` to the history (at most 50 entries are kept: the first and the latest).
    pub fn note(&mut self, now: i64, event: impl Into<String>) {
        if self.history.len() >= 50 {
            self.history.remove(1);
        }
        self.history.push(HistoryEntry {
            at: now,
            event: event.into(),
        });
    }

    /// Moves to `step` at time `now`, and lets go of what no later step reads: the sealed
    /// requests once the order is placed, the creation options and the credential response
    /// once the credential is registered. (Entra ID's PIN response stays: ResendPin needs it.) Every
    /// step is rewritten whole, so a record carries only what is still ahead of it.
    pub fn reach(&mut self, step: Step, now: i64) {
        if step >= Step::Ordered {
            self.credential_request_jwe = None;
            self.pin_request_jwe = None;
        }
        if step >= Step::Registered {
            self.creation_options = None;
            self.credential_response_jwe = None;
            // Okta was given the PIN response when the key was activated, and sends the PIN
            // itself; Entra ID's PIN is delivered (and re-delivered) from this JWE by the vault.
            if self.idp == Idp::Okta {
                self.pin_response_jwe = None;
            }
        }
        self.step = step;
        self.step_times.insert(step.name().to_owned(), now);
        self.updated_at = now;
        self.last_error.clear();
        self.attempts = 0;
        self.not_before = 0;
        self.in_flight = None;
    }

    /// Stops on an error.
    pub fn fail(&mut self, kind: &str, message: &str, now: i64) {
        self.state = State::Error;
        self.error_kind = kind.to_owned();
        self.error_message = message.chars().take(1000).collect();
        self.updated_at = now;
    }

    /// Records a transient error; processing waits `wait_secs` before trying again.
    pub fn defer(&mut self, error: &str, wait_secs: i64, now: i64) {
        self.attempts = self.attempts.saturating_add(1);
        self.not_before = now.saturating_add(wait_secs.max(0));
        self.last_error = error.chars().take(500).collect();
        self.updated_at = now;
    }
}

/// Seconds to wait after a transient failure: the upstream's Retry-After when it gave one,
/// else `base` doubled per earlier attempt, at most `max`.
pub fn backoff(base: i64, max: i64, attempts: u32, retry_after: Option<i64>) -> i64 {
    retry_after.map_or_else(
        || base.saturating_mul(1i64 << attempts.min(16)).min(max),
        |r| r.max(0),
    )
}

#[cfg(test)]
mod tests {
    use super::{ShipmentId, backoff};

    #[test]
    fn shipment_ids_are_checked_and_sort_by_creation() {
        let a = ShipmentId::generated(1, 0);
        let b = ShipmentId::generated(2, 0);
        assert!(a < b && a.as_str().len() == 36);
        assert_eq!(ShipmentId::try_new(a.as_str()), Ok(a));
        for bad in [
            "",
            "shp",
            "abc_1",
            "shp_../x",
            &format!("shp_{}", "a".repeat(61)),
        ] {
            assert!(ShipmentId::try_new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_honours_retry_after() {
        assert_eq!(backoff(30, 3600, 0, None), 30);
        assert_eq!(backoff(30, 3600, 3, None), 240);
        assert_eq!(backoff(30, 3600, 30, None), 3600);
        assert_eq!(backoff(30, 3600, 0, Some(120)), 120);
        assert_eq!(backoff(0, 0, 5, Some(2)), 2);
        // The deadline cannot overflow, whatever the wait (fpr-upstream caps Retry-After).
        let mut r: super::Record = serde_json::from_value(serde_json::json!({
            "id": "shp_1", "idempotency_key": "k", "idp": "entra", "user_id": "u", "state": "ongoing",
            "step": "accepted", "pin_length": 8, "force_change": false, "shipping": {}, "created_at": 0, "updated_at": 0
        })).unwrap();
        r.defer("x", i64::MAX, i64::MAX - 5);
        assert_eq!(r.not_before, i64::MAX);
    }
}
