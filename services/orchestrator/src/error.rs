//! The orchestrator's error type and its one mapping to `tonic::Status`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// Every way an orchestrator call fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or invalid.
    #[error("config {key}: {reason}")]
    Config {
        /// The setting.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Request fields break rules (every violation).
    #[error("invalid request: {}", .0.iter().map(|v| format!("{}: {}", v.field, v.rule)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<fpr_domain::Violation>),
    /// No shipment with this id.
    #[error("shipment {0:?} not found")]
    ShipmentNotFound(String),
    /// The shipment is not in a state that allows the call.
    #[error("{0}")]
    Precondition(String),
    /// An upstream refused or failed.
    #[error("{0}")]
    Upstream(#[from] fpr_upstream::Error),
    /// The vault refused or failed (its code and reason kept).
    #[error("{0}")]
    Vault(#[from] crate::workflow::vault::VaultError),
    /// Something needed for the call is busy or unreachable now; the call may be repeated.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] fpr_store::Error),
    /// A stored record could not be decoded.
    #[error("corrupt record {0:?}")]
    Corrupt(String),
    /// Transport failure at start.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// I/O at start.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::Invalid(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.rule.clone());
                }
                let msg = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.rule))
                    .collect::<Vec<_>>()
                    .join("; ");
                Status::with_error_details(Code::InvalidArgument, msg, details)
            }
            Error::ShipmentNotFound(id) => Status::not_found(format!("shipment {id:?} not found")),
            Error::Precondition(m) => Status::failed_precondition(m),
            Error::Upstream(u) => match u {
                fpr_upstream::Error::Transient { .. } => Status::unavailable(u.to_string()),
                fpr_upstream::Error::NotFound { .. } => Status::not_found(u.to_string()),
                fpr_upstream::Error::Rejected { .. } => Status::failed_precondition(u.to_string()),
                fpr_upstream::Error::Unauthorized { .. }
                | fpr_upstream::Error::Malformed { .. }
                | fpr_upstream::Error::Secret { .. } => {
                    tracing::warn!(error = %u, "Upstream misconfigured or misbehaving");
                    Status::unavailable(u.to_string())
                }
            },
            Error::Vault(v) => {
                let code = if v.is_refusal() {
                    Code::FailedPrecondition
                } else {
                    Code::Unavailable
                };
                Status::new(code, v.to_string())
            }
            Error::Unavailable(m) => Status::unavailable(m),
            Error::Store(s) if s.disk_refused().is_some() => {
                tracing::warn!(error = %s, "The store cannot be written");
                Status::unavailable(format!(
                    "{}: nothing was stored; try again once the operator has made room",
                    s.disk_refused().unwrap_or("the store cannot be written")
                ))
            }
            e @ (Error::Config { .. }
            | Error::Store(_)
            | Error::Corrupt(_)
            | Error::Transport(_)
            | Error::Io(_)) => {
                tracing::warn!(error = %e, "Internal error");
                Status::internal("internal error")
            }
        }
    }
}
