//! JWE compact encryption and decryption under the profile's allow-list (docs/design/protocol.md).

use std::fmt;
use std::str::FromStr;

use josekit::jwe::alg::ecdh_es::EcdhEsJweAlgorithm;
use josekit::jwe::{JweContext, JweHeader};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::backend::{Encrypter, KnownKey, aes_kw_unwrap, ecdh_derive};
use crate::jwk::{Curve, PrivateKey, PublicJwk};
use crate::util::b64d;
use crate::{Error, Result, header};

/// The allowed key-management algorithms (`alg`): ECDH-ES and its key-wrap variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyManagement {
    /// `ECDH-ES`: the derived key is the content-encryption key.
    EcdhEs,
    /// `ECDH-ES+A128KW`.
    EcdhEsA128kw,
    /// `ECDH-ES+A192KW`.
    EcdhEsA192kw,
    /// `ECDH-ES+A256KW` (the default).
    EcdhEsA256kw,
}

// === impl KeyManagement ===

impl KeyManagement {
    /// Every allowed value.
    pub const ALL: [KeyManagement; 4] = [
        Self::EcdhEs,
        Self::EcdhEsA128kw,
        Self::EcdhEsA192kw,
        Self::EcdhEsA256kw,
    ];

    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Self::EcdhEs => "ECDH-ES",
            Self::EcdhEsA128kw => "ECDH-ES+A128KW",
            Self::EcdhEsA192kw => "ECDH-ES+A192KW",
            Self::EcdhEsA256kw => "ECDH-ES+A256KW",
        }
    }

    /// Key-wrap key length in bytes, or None for direct ECDH-ES.
    pub(crate) fn kw_len(self) -> Option<usize> {
        match self {
            Self::EcdhEs => None,
            Self::EcdhEsA128kw => Some(16),
            Self::EcdhEsA192kw => Some(24),
            Self::EcdhEsA256kw => Some(32),
        }
    }

    pub(crate) fn josekit(self) -> &'static EcdhEsJweAlgorithm {
        match self {
            Self::EcdhEs => &EcdhEsJweAlgorithm::EcdhEs,
            Self::EcdhEsA128kw => &EcdhEsJweAlgorithm::EcdhEsA128kw,
            Self::EcdhEsA192kw => &EcdhEsJweAlgorithm::EcdhEsA192kw,
            Self::EcdhEsA256kw => &EcdhEsJweAlgorithm::EcdhEsA256kw,
        }
    }
}

impl FromStr for KeyManagement {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::ForbiddenAlgorithm {
                header: "alg",
                value: s.chars().take(64).collect(),
            })
    }
}

impl fmt::Display for KeyManagement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The allowed content-encryption algorithms (`enc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentEncryption {
    /// `A128GCM`.
    A128Gcm,
    /// `A192GCM`.
    A192Gcm,
    /// `A256GCM` (the default).
    A256Gcm,
    /// `A128CBC-HS256`.
    A128CbcHs256,
    /// `A192CBC-HS384`.
    A192CbcHs384,
    /// `A256CBC-HS512`.
    A256CbcHs512,
}

// === impl ContentEncryption ===

impl ContentEncryption {
    /// Every allowed value.
    pub const ALL: [ContentEncryption; 6] = [
        Self::A128Gcm,
        Self::A192Gcm,
        Self::A256Gcm,
        Self::A128CbcHs256,
        Self::A192CbcHs384,
        Self::A256CbcHs512,
    ];

    /// The `enc` header value.
    pub fn name(self) -> &'static str {
        match self {
            Self::A128Gcm => "A128GCM",
            Self::A192Gcm => "A192GCM",
            Self::A256Gcm => "A256GCM",
            Self::A128CbcHs256 => "A128CBC-HS256",
            Self::A192CbcHs384 => "A192CBC-HS384",
            Self::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// Content-encryption key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::A128Gcm => 16,
            Self::A192Gcm => 24,
            Self::A256Gcm => 32,
            Self::A128CbcHs256 => 32,
            Self::A192CbcHs384 => 48,
            Self::A256CbcHs512 => 64,
        }
    }
}

impl FromStr for ContentEncryption {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::ForbiddenAlgorithm {
                header: "enc",
                value: s.chars().take(64).collect(),
            })
    }
}

impl fmt::Display for ContentEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The pair of algorithms a JWE is made with. Configuration, not constants (docs/design/protocol.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Algorithms {
    /// Key management.
    pub alg: KeyManagement,
    /// Content encryption.
    pub enc: ContentEncryption,
}

impl Default for Algorithms {
    fn default() -> Self {
        Self {
            alg: KeyManagement::EcdhEsA256kw,
            enc: ContentEncryption::A256Gcm,
        }
    }
}

/// Encrypts `plaintext` to `recipient` as a compact JWE with header
/// `{"alg","enc","kid":<recipient kid>,"cty":"JSON"}`.
pub fn encrypt(plaintext: &[u8], recipient: &PublicJwk, algs: Algorithms) -> Result<String> {
    if recipient.key_use() == Some(crate::KeyUse::Sig) {
        return Err(Error::KeyAlgorithmMismatch {
            kid: recipient.kid().to_owned(),
            alg: algs.alg.name().to_owned(),
        });
    }
    let mut h = JweHeader::new();
    h.set_content_encryption(algs.enc.name());
    h.set_key_id(recipient.kid());
    h.set_content_type("JSON");
    let enc = Encrypter {
        alg: algs.alg,
        recipient: recipient.clone(),
    };
    josekit::jwe::serialize_compact(plaintext, &h, &enc).map_err(Error::Framing)
}

/// What a checked JWE header says.
#[derive(Debug, Clone)]
pub struct JweInfo {
    /// Key management algorithm.
    pub alg: KeyManagement,
    /// Content encryption algorithm.
    pub enc: ContentEncryption,
    /// The recipient key id.
    pub kid: String,
}

/// Reads and checks a JWE's protected header without decrypting: size, shape, allow-lists,
/// forbidden parameters, and the presence of `kid`.
pub fn inspect(token: &str) -> Result<JweInfo> {
    let parts = header::split(token, 5)?;
    let h = header::parse(parts[0])?;
    let alg: KeyManagement = header::string(&h, "alg")?.parse()?;
    let enc: ContentEncryption = header::string(&h, "enc")?.parse()?;
    let kid = header::string(&h, "kid")?.to_owned();
    Ok(JweInfo { alg, enc, kid })
}

/// Decrypts a compact JWE with `key`, after every check of the profile. The plaintext is
/// returned in a zeroizing buffer.
pub fn decrypt(token: &str, key: &PrivateKey) -> Result<Zeroizing<Vec<u8>>> {
    let parts = header::split(token, 5)?;
    let h = header::parse(parts[0])?;
    let alg: KeyManagement = header::string(&h, "alg")?.parse()?;
    let enc: ContentEncryption = header::string(&h, "enc")?.parse()?;
    let kid = header::string(&h, "kid")?;
    if kid != key.kid() {
        return Err(Error::KidMismatch {
            expected: key.kid().to_owned(),
            found: kid.chars().take(128).collect(),
        });
    }
    let curve = key.public().curve();
    let epk = epk_point(h.get("epk"), curve)?;

    let encrypted_key =
        b64d(parts[1]).map_err(|_| Error::Malformed("encrypted key is not base64url"))?;
    let cek = match alg.kw_len() {
        None => {
            if !encrypted_key.is_empty() {
                return Err(Error::Malformed("ECDH-ES carries no encrypted key"));
            }
            ecdh_derive(key.inner(), curve, &epk, enc.name(), enc.key_len())?
        }
        Some(kw_len) => {
            let kek = ecdh_derive(key.inner(), curve, &epk, alg.name(), kw_len)?;
            let cek = aes_kw_unwrap(&kek, &encrypted_key)?;
            if cek.len() != enc.key_len() {
                return Err(Error::KeyUnwrapFailed);
            }
            cek
        }
    };
    let known = KnownKey { alg, cek };
    let (plain, _) = JweContext::new()
        .deserialize_compact(token, &known)
        .map_err(|e| match e {
            josekit::JoseError::InvalidJweFormat(_) => Error::DecryptionFailed,
            other => Error::Framing(other),
        })?;
    Ok(Zeroizing::new(plain))
}

fn epk_point(epk: Option<&Value>, curve: Curve) -> Result<Vec<u8>> {
    let epk = epk
        .and_then(Value::as_object)
        .ok_or(Error::InvalidEphemeralKey(
            "epk is missing or not an object",
        ))?;
    if epk.get("kty").and_then(Value::as_str) != Some("EC") {
        return Err(Error::InvalidEphemeralKey("epk kty is not EC"));
    }
    if epk.get("crv").and_then(Value::as_str) != Some(curve.name()) {
        return Err(Error::InvalidEphemeralKey(
            "epk is not on the recipient's curve",
        ));
    }
    if epk.contains_key("d") {
        return Err(Error::InvalidEphemeralKey("epk carries private material"));
    }
    let coord = |name| {
        epk.get(name)
            .and_then(Value::as_str)
            .and_then(|s| b64d(s).ok())
            .filter(|b| b.len() == curve.coordinate_len())
            .ok_or(Error::InvalidEphemeralKey("epk coordinates are malformed"))
    };
    let (x, y) = (coord("x")?, coord("y")?);
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}
