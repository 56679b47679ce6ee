//! The vault's error type and its one mapping to `tonic::Status`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// Every way a vault operation fails. Messages carry ids, field names and limits; never a PIN,
/// a key, a token or an upstream body.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is missing or invalid; `key` names the setting.
    #[error("config {key}: {reason}")]
    Config {
        /// The setting, e.g. `store.master_key_file`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A request field breaks a rule; `field` names it.
    #[error("{field}: {rule}")]
    InvalidField {
        /// The request field, e.g. `pin_policy.length`.
        field: &'static str,
        /// The rule it breaks, with the limit.
        rule: String,
    },
    /// A Yubico response was refused; `check` says which check failed.
    #[error("{field} refused: {check}")]
    ResponseRejected {
        /// The request field holding the response.
        field: &'static str,
        /// Machine-readable name of the check, e.g. `bad_signature`.
        reason: &'static str,
        /// What failed, from the JOSE layer or the binding checks.
        check: String,
    },
    /// Nothing is held for this shipment (never sealed, or purged).
    #[error("no sealed key for shipment {0:?}")]
    ShipmentNotFound(String),
    /// The shipment already has requests sealed from other inputs.
    #[error("shipment {0:?} already has sealed requests made from other inputs")]
    AlreadySealed(String),
    /// No usable Yubico transport or signing key is pinned yet.
    #[error("no usable Yubico {0} key is pinned")]
    NoYubicoKeys(&'static str),
    /// The master key does not match the one the store was sealed with.
    #[error(
        "master key check value {found} does not match the store's {expected}: wrong master key"
    )]
    WrongMasterKey {
        /// Check value of the store.
        expected: String,
        /// Check value of the key given.
        found: String,
    },
    /// Reading a secret (master key, SMTP password, webhook key) from its file or env failed.
    #[error("cannot read secret {name}: {reason}")]
    Secret {
        /// The setting that names the secret.
        name: &'static str,
        /// Why (file missing, empty, env unset). Never the value.
        reason: String,
    },
    /// The PIN channel failed to accept the message.
    #[error("PIN delivery over {channel} failed: {reason}")]
    Delivery {
        /// `smtp` or `webhook`.
        channel: &'static str,
        /// The transport error or upstream status (no body).
        reason: String,
    },
    /// An earlier delivery of this shipment's PIN was interrupted (the vault stopped while
    /// sending): the PIN may or may not have gone out, so it is not sent again unasked.
    #[error(
        "the PIN delivery of shipment {0:?} started at {1} was interrupted; its outcome is unknown"
    )]
    DeliveryOutcomeUnknown(String, i64),
    /// A PIN recipient breaks the e-mail rule or the vault's recipient policy.
    #[error("recipients[{index}] {rule}")]
    RecipientRefused {
        /// Position in the request's list.
        index: usize,
        /// Why.
        rule: String,
    },
    /// DeliverPin named an address not bound to the shipment at SealRequests.
    #[error("recipients[{0}] is not bound to this shipment")]
    RecipientNotBound(usize),
    /// A resend beyond the configured count or sooner than the configured interval.
    #[error("{0}")]
    ResendLimited(String),
    /// The audit log could not be written: the operation is not confirmed.
    #[error("audit log: {0}")]
    Audit(String),
    /// The sealed key store failed.
    #[error("store: {0}")]
    Store(#[from] fpr_store::Error),
    /// A JOSE operation failed on our side (not a refused response).
    #[error("crypto: {0}")]
    Crypto(#[source] fpr_jose::Error),
    /// A stored record could not be decoded.
    #[error("corrupt record for shipment {0:?}")]
    CorruptRecord(String),
    /// An I/O error at start (socket, directory).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl Error {
    /// A short machine name of the failure for the audit log and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::InvalidField { .. } => "invalid_argument",
            Error::ResponseRejected { reason, .. } => reason,
            Error::ShipmentNotFound(_) => "not_found",
            Error::AlreadySealed(_) => "already_sealed",
            Error::NoYubicoKeys(_) => "no_yubico_keys",
            Error::WrongMasterKey { .. } => "wrong_master_key",
            Error::Secret { .. } => "secret_unreadable",
            Error::Delivery { .. } => "delivery_failed",
            Error::DeliveryOutcomeUnknown(..) => "delivery_outcome_unknown",
            Error::RecipientRefused { .. } => "recipient_not_allowed",
            Error::RecipientNotBound(_) => "recipient_not_bound",
            Error::ResendLimited(_) => "resend_limited",
            Error::Audit(_) => "audit_failed",
            Error::Store(_) => "store",
            Error::Crypto(_) => "crypto",
            Error::CorruptRecord(_) => "corrupt_record",
            Error::Io { .. } => "io",
            Error::Transport(_) => "transport",
        }
    }
}

fn with_reason(code: Code, reason: &str, message: String) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, "vault.fpr", std::collections::HashMap::new());
    Status::with_error_details(code, message, details)
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::InvalidField { field, rule } => {
                let details = ErrorDetails::with_bad_request_violation(field, rule.clone());
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("{field}: {rule}"),
                    details,
                )
            }
            Error::ResponseRejected {
                field,
                reason,
                check,
            } => {
                let mut details = ErrorDetails::with_bad_request_violation(field, check.clone());
                details.set_error_info(reason, "vault.fpr", std::collections::HashMap::new());
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("{field} refused: {check}"),
                    details,
                )
            }
            Error::ShipmentNotFound(r) => {
                Status::not_found(format!("no sealed key for shipment {r:?}"))
            }
            Error::AlreadySealed(r) => Status::already_exists(format!(
                "shipment {r:?} already has sealed requests made from other inputs"
            )),
            Error::NoYubicoKeys(which) => {
                Status::unavailable(format!("no usable Yubico {which} key is pinned yet"))
            }
            Error::Delivery { channel, reason } => {
                Status::unavailable(format!("PIN delivery over {channel} failed: {reason}"))
            }
            e @ Error::DeliveryOutcomeUnknown(..) => {
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    "delivery_outcome_unknown",
                    "vault.fpr",
                    std::collections::HashMap::new(),
                );
                Status::with_error_details(Code::FailedPrecondition, e.to_string(), details)
            }
            Error::RecipientRefused { index, rule } => {
                let field = format!("recipients[{index}]");
                let mut details = ErrorDetails::with_bad_request_violation(&field, rule.clone());
                details.set_error_info(
                    "recipient_not_allowed",
                    "vault.fpr",
                    std::collections::HashMap::new(),
                );
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("{field} {rule}"),
                    details,
                )
            }
            e @ Error::RecipientNotBound(_) => {
                with_reason(Code::PermissionDenied, "recipient_not_bound", e.to_string())
            }
            Error::ResendLimited(m) => with_reason(Code::ResourceExhausted, "resend_limited", m),
            Error::Audit(m) => {
                tracing::error!(error = %m, "Audit log write failed");
                Status::unavailable("the vault's audit log cannot be written")
            }
            Error::Secret { name, .. } => {
                tracing::warn!(secret = name, "Secret could not be read");
                Status::failed_precondition(format!("vault secret {name} is not readable"))
            }
            e @ (Error::Config { .. }
            | Error::WrongMasterKey { .. }
            | Error::Store(_)
            | Error::Crypto(_)
            | Error::CorruptRecord(_)
            | Error::Io { .. }
            | Error::Transport(_)) => {
                tracing::warn!(error = %e, "Internal error");
                Status::internal("internal error")
            }
        }
    }
}
