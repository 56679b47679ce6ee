//! fpr's JOSE profile (PROTOCOL.md): EC JWKs and JWK sets, JWE and JWS in compact form under
//! an allow-list, the protocol's plaintexts, and sealing of secrets at rest.
//!
//! This crate owns every cryptographic operation of fpr; only the vault and the sandbox use it.
//! It wraps josekit for the JOSE framing and runs the elliptic-curve work on aws-lc-rs (see
//! `docs/decisions/0002-jose-on-aws-lc-rs.md`). Nothing outside this crate touches josekit.
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
pub mod protocol;
pub mod seal;
pub mod util;

pub use error::{Error, Result};
pub use jwk::{Curve, Jwks, KeyUse, PrivateKey, PublicJwk, SigningKey};

/// The largest compact token (or JWKS document) accepted, in bytes: 64 KiB.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

#[cfg(test)]
mod tests;
