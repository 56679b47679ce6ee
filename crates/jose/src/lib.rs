//! fpr's JOSE profile (PROTOCOL.md): EC JWKs and JWK sets, JWE and JWS in compact form under
//! an allow-list, the protocol's plaintexts, and sealing of secrets at rest.
//!
//! This crate owns every cryptographic operation of fpr; only the vault and the sandbox use it.
//! It wraps josekit for the JOSE framing and runs the elliptic-curve work on aws-lc-rs (see
//! `docs/decisions/0001-jose-on-aws-lc-rs.md`). Nothing outside this crate touches josekit.
//!
//! What it refuses, wherever it appears: a token over 64 KiB; `alg` outside ECDH-ES,
//! ECDH-ES+A128KW/A192KW/A256KW (JWE) or ES256/ES384/ES512 (JWS); `enc` outside AES-GCM and
//! AES-CBC-HMAC; the `zip`, `crit`, `b64` header parameters and every header that names a key
//! (`jku`, `x5u`, `jwk`, `x5c`, `x5t`); an ephemeral key off the recipient's curve; a JWE made
//! for another key id; a JWS whose kid is not pinned.
//!
//! What it never does: log, print or return key material except through explicitly named
//! calls (`scalar`, `to_private_jwk`), or do I/O.
//!
//! ```
//! use fpr_jose::{Curve, Jwks, PrivateKey, SigningKey, jwe, jws};
//!
//! let response_key = PrivateKey::generate(Curve::P384, "req-1")?;
//! let signer = SigningKey::generate(Curve::P384, "yubico-sig-1")?;
//! let pinned = Jwks::try_new(vec![signer.public().clone()])?;
//!
//! // Yubico's side: sign, then encrypt to the response key.
//! let signed = jws::sign(br#"{"typ":"fido-pin-response"}"#, &signer)?;
//! let token = jwe::encrypt(signed.as_bytes(), response_key.public(), jwe::Algorithms::default())?;
//!
//! // The vault's side: decrypt with the response key, verify against the pinned set.
//! let inner = jwe::decrypt(&token, &response_key)?;
//! let verified = jws::verify(std::str::from_utf8(&inner).unwrap(), &pinned)?;
//! assert_eq!(verified.kid, "yubico-sig-1");
//! # Ok::<(), fpr_jose::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backend;
mod error;
mod header;
pub mod jwe;
mod jwk;
pub mod jws;
pub mod jwt;
pub mod protocol;
pub mod seal;
pub mod util;

pub use error::{Error, PayloadError, Result};
pub use jwk::{Curve, Jwks, KeyUse, PrivateKey, PublicJwk, SigningKey};

/// The largest compact token (or JWKS document) accepted, in bytes: 64 KiB.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

#[cfg(test)]
mod tests;

/// Raw P-384 primitive timings, so benchmarks can state what fraction of the backend's
/// ceiling they reach on the machine they run on. Not part of the API.
#[doc(hidden)]
pub mod calibrate {
    use aws_lc_rs::{agreement, rand::SystemRandom, signature};

    /// One P-384 key generation.
    pub fn keygen() {
        let _ = std::hint::black_box(agreement::PrivateKey::generate(&agreement::ECDH_P384));
    }

    /// Returns a closure doing one P-384 ECDH with a pre-parsed peer point.
    pub fn ecdh() -> impl FnMut() {
        let me = agreement::PrivateKey::generate(&agreement::ECDH_P384).ok();
        let peer = agreement::PrivateKey::generate(&agreement::ECDH_P384)
            .ok()
            .and_then(|k| k.compute_public_key().ok())
            .map(|p| p.as_ref().to_vec())
            .unwrap_or_default();
        move || {
            if let Some(me) = &me {
                let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P384, &peer);
                let _ = std::hint::black_box(agreement::agree(me, peer, (), |z| Ok(z.len())));
            }
        }
    }

    /// Returns a closure doing one ES384 verification with a pre-parsed key.
    pub fn verify() -> impl FnMut() {
        use signature::KeyPair as _;
        let kp =
            signature::EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).ok();
        let sig = kp
            .as_ref()
            .and_then(|k| k.sign(&SystemRandom::new(), b"calibrate").ok());
        let vk = kp.as_ref().and_then(|k| {
            signature::ParsedPublicKey::new(
                &signature::ECDSA_P384_SHA384_FIXED,
                k.public_key().as_ref(),
            )
            .ok()
        });
        move || {
            if let (Some(vk), Some(sig)) = (&vk, &sig) {
                let _ = std::hint::black_box(vk.verify_sig(b"calibrate", sig.as_ref()));
            }
        }
    }
}

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
