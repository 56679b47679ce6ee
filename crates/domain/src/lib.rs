//! fpr's shipment model and the validation of every request field, to the YubiEnterprise limits
//! of docs/design/upstream-apis.md §1.8.
//!
//! This crate does no I/O and holds no secret. The field rules live here once: the
//! orchestrator checks requests with them before any upstream call, and the sandbox's
//! YubiEnterprise refuses with the same rules. The shipping fields are one table
//! ([`shipping::FIELDS`]), from which the API's messages, YubiEnterprise's bodies and the
//! Okta profile mapping are made.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod contact;
pub mod email;
pub mod model;
pub mod shipping;
pub mod validate;
pub mod yubikey;

/// One broken rule: the field's path and the rule with its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the field, e.g. `yubico_shipment_request.recipient.recipient_firstname`.
    pub field: String,
    /// The rule, e.g. `at most 15 characters (UTF-8 bytes), got 16`.
    pub rule: String,
}

impl Violation {
    /// A violation of `rule` on `field`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
        }
    }
}
