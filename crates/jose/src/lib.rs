//! fpr's JOSE profile (docs/design/protocol.md): EC JWKs and sets, compact JWE and JWS under an
//! allow-list, the protocol's plaintexts, sealing at rest. Only the vault and the sandbox use it.
//! It wraps josekit for the framing and runs the curve work on aws-lc-rs (decision 0001).
//! Refused wherever they appear: tokens over 64 KiB; algorithms outside the allow-list; `zip`,
//! `crit`, `b64`; headers that name a key (`jku`, `x5u`, `jwk`, `x5c`, `x5t`); an ephemeral key
//! off the recipient's curve; a JWE for another kid; a JWS whose kid is not pinned.
//! It never does I/O, and never logs, prints or returns key material except through explicitly
//! named calls (`scalar`, `to_private_jwk`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod error;
mod header;
pub mod jwe;
mod jwk;
pub mod jws;
pub mod protocol;
pub mod seal;
pub mod util;

pub use error::{Error, PayloadError, Result};
pub use jwk::{Curve, Jwks, KeyUse, PrivateKey, PublicJwk, SigningKey};

/// The largest compact token (or JWKS document) accepted, in bytes: 64 KiB.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

#[cfg(test)]
mod tests;

/// Entry points for the `cargo fuzz` targets in `fuzz/` and the corpus replay test. Each must
/// never panic, whatever the input. Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::OnceLock;

    use crate::{Curve, Jwks, PrivateKey, SigningKey};

    fn key() -> Option<&'static PrivateKey> {
        static KEY: OnceLock<Option<PrivateKey>> = OnceLock::new();
        KEY.get_or_init(|| PrivateKey::generate(Curve::P384, "fuzz").ok())
            .as_ref()
    }

    fn jwks() -> &'static Jwks {
        static SET: OnceLock<Jwks> = OnceLock::new();
        SET.get_or_init(|| {
            SigningKey::generate(Curve::P384, "fuzz")
                .ok()
                .and_then(|k| Jwks::try_new(vec![k.public().clone()]).ok())
                .unwrap_or_default()
        })
    }

    /// Parses and decrypts arbitrary bytes as a compact JWE.
    pub fn jwe_decrypt(data: &[u8]) {
        if let (Ok(s), Some(k)) = (std::str::from_utf8(data), key()) {
            let _ = crate::jwe::decrypt(s, k);
        }
    }

    /// Parses and verifies arbitrary bytes as a compact JWS.
    pub fn jws_verify(data: &[u8]) {
        if let Ok(s) = std::str::from_utf8(data) {
            let _ = crate::jws::verify(s, jwks());
        }
    }

    /// Parses arbitrary bytes as a JWKS and as a single JWK.
    pub fn jwks_parse(data: &[u8]) {
        let _ = Jwks::from_json(data);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            let _ = crate::PublicJwk::from_json(&v);
        }
    }
}
