//! Test fixtures for fpr: a test Yubico (transport and signing keys, fulfilment of sealed
//! requests), an SMTP receiver and a small HTTP server that serves JWKS and records webhook
//! calls. Everything binds to 127.0.0.1 port 0 and stops when dropped.
//!
//! NO SECURITY: this crate exists for tests. Its Yubico keys are generated per run and its
//! servers speak plaintext on loopback.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod http;
pub mod smtp;
mod yubico;

pub use yubico::{Fulfilment, Yubico};

/// A valid PublicKeyCredentialCreationOptions, as Microsoft Graph returns them.
pub fn creation_options(user: &str) -> serde_json::Value {
    serde_json::json!({
        "challenge": fpr_jose::util::b64e(user.as_bytes()),
        "timeout": 1_209_600_000u64,
        "rp": {"id": "login.microsoft.com", "name": "Microsoft"},
        "user": {"id": fpr_jose::util::b64e(user.as_bytes()), "name": user, "displayName": user},
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
        "excludeCredentials": [],
        "authenticatorSelection": {"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"},
        "attestation": "direct",
        "extensions": {"credProtect": "userVerificationRequired", "enforceCredProtect": true}
    })
}
