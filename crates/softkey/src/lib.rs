//! NO SECURITY: a software FIDO2 security key for the sandbox and tests. It makes credentials
//! the way a YubiKey would (packed attestation under a generated root CA, one attestation
//! certificate per AAGUID) and holds the WebAuthn encoders (authenticator data, COSE keys,
//! attestation objects) it builds them with.
//!
//! It must never be linked into the vault or the orchestrator: verification lives in
//! `fpr-webauthn`, which has no way to make a credential.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authenticator;
pub mod build;

pub use authenticator::{AttestationCa, AuthenticatorError, Credential};
