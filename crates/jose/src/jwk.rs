//! EC JWKs and JWK sets: public keys, ECDH private keys and ECDSA signing keys.

use std::fmt;

use aws_lc_rs::encoding::AsBigEndian as _;
use aws_lc_rs::{agreement, signature};
use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::util::{b64d, b64e};
use crate::{Error, Result};

/// An elliptic curve the profile allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (ES256).
    P256,
    /// NIST P-384: every Yubico key and every response key.
    P384,
    /// NIST P-521 (ES512).
    P521,
}

// === impl Curve ===

impl Curve {
    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Parses a JWK `crv` name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            _ => None,
        }
    }

    /// Length in bytes of a coordinate or a private scalar.
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    pub(crate) fn ecdh(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P384 => &agreement::ECDH_P384,
            Curve::P521 => &agreement::ECDH_P521,
        }
    }

    pub(crate) fn verify_alg(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        }
    }

    pub(crate) fn signing_alg(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        }
    }

    /// The JWS algorithm that goes with this curve (ES256, ES384, ES512).
    pub fn jws_alg(self) -> &'static str {
        match self {
            Curve::P256 => "ES256",
            Curve::P384 => "ES384",
            Curve::P521 => "ES512",
        }
    }
}

/// The JWK `use` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// `enc`: key agreement / encryption.
    Enc,
    /// `sig`: signatures.
    Sig,
}

// === impl KeyUse ===

impl KeyUse {
    /// The JWK `use` value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyUse::Enc => "enc",
            KeyUse::Sig => "sig",
        }
    }
}

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    crv: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<Zeroizing<String>>,
}

/// An EC public key with its id: a Yubico transport or signing key, or a response key.
#[derive(Clone)]
pub struct PublicJwk {
    kid: String,
    key_use: Option<KeyUse>,
    curve: Curve,
    /// Uncompressed SEC1 point: 0x04 || x || y.
    point: Vec<u8>,
    verify: Option<signature::ParsedPublicKey>,
}

// === impl PublicJwk ===

impl PublicJwk {
    /// Builds a key from an uncompressed point, checking that it is on the curve.
    pub fn try_new(
        kid: String,
        key_use: Option<KeyUse>,
        curve: Curve,
        point: Vec<u8>,
    ) -> Result<Self> {
        let bad = |reason| Error::InvalidKey {
            kid: Some(kid.clone()),
            reason,
        };
        if kid.is_empty() || kid.len() > 256 {
            return Err(bad("kid must be 1 to 256 characters"));
        }
        if point.len() != 1 + 2 * curve.coordinate_len() || point.first() != Some(&0x04) {
            return Err(bad("coordinates have the wrong length for the curve"));
        }
        // Validates the point (on the curve, not infinity) once, and keeps the parsed key so
        // that verification does not parse it again.
        let verify = signature::ParsedPublicKey::new(curve.verify_alg(), &point)
            .map_err(|_| bad("point is not on the curve"))?;
        let verify = if key_use == Some(KeyUse::Enc) {
            None
        } else {
            Some(verify)
        };
        Ok(Self {
            kid,
            key_use,
            curve,
            point,
            verify,
        })
    }

    /// Parses a public JWK object. A JWK that carries private material (`d`) is refused.
    pub fn from_json(v: &Value) -> Result<Self> {
        let raw: RawJwk = serde_json::from_value(v.clone()).map_err(|_| Error::InvalidKey {
            kid: None,
            reason: "not a JWK object",
        })?;
        if raw.d.is_some() {
            return Err(Error::InvalidKey {
                kid: raw.kid,
                reason: "private key material in a public JWK",
            });
        }
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawJwk) -> Result<Self> {
        let kid = raw.kid.ok_or(Error::InvalidKey {
            kid: None,
            reason: "kid is required",
        })?;
        let bad = |reason| Error::InvalidKey {
            kid: Some(kid.clone()),
            reason,
        };
        if raw.kty.as_deref() != Some("EC") {
            return Err(bad("kty must be EC"));
        }
        let curve = raw
            .crv
            .as_deref()
            .and_then(Curve::from_name)
            .ok_or_else(|| bad("crv must be P-256, P-384 or P-521"))?;
        let key_use = match raw.use_.as_deref() {
            None => None,
            Some("enc") => Some(KeyUse::Enc),
            Some("sig") => Some(KeyUse::Sig),
            Some(_) => return Err(bad("use must be enc or sig")),
        };
        let x = raw
            .x
            .as_deref()
            .map(b64d)
            .transpose()
            .map_err(|_| bad("x is not base64url"))?
            .ok_or_else(|| bad("x is required"))?;
        let y = raw
            .y
            .as_deref()
            .map(b64d)
            .transpose()
            .map_err(|_| bad("y is not base64url"))?
            .ok_or_else(|| bad("y is required"))?;
        let n = curve.coordinate_len();
        if x.len() != n || y.len() != n {
            return Err(bad("coordinates have the wrong length for the curve"));
        }
        let mut point = Vec::with_capacity(1 + 2 * n);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Self::try_new(kid, key_use, curve, point)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The `use` parameter, if the JWK had one.
    pub fn key_use(&self) -> Option<KeyUse> {
        self.key_use
    }

    /// The uncompressed SEC1 point.
    pub fn point(&self) -> &[u8] {
        &self.point
    }

    pub(crate) fn verifier(&self) -> Option<&signature::ParsedPublicKey> {
        self.verify.as_ref()
    }

    /// The JWK as a JSON object (`kty, crv, kid, use, x, y`).
    pub fn to_json(&self) -> Value {
        let n = self.curve.coordinate_len();
        let mut m = Map::new();
        m.insert("kty".into(), "EC".into());
        m.insert("crv".into(), self.curve.name().into());
        m.insert("kid".into(), self.kid.clone().into());
        if let Some(u) = self.key_use {
            m.insert("use".into(), u.as_str().into());
        }
        m.insert("x".into(), b64e(&self.point[1..=n]).into());
        m.insert("y".into(), b64e(&self.point[1 + n..]).into());
        Value::Object(m)
    }
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicJwk")
            .field("kid", &self.kid)
            .field("crv", &self.curve.name())
            .field("use", &self.key_use)
            .finish()
    }
}

impl PartialEq for PublicJwk {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid
            && self.curve == other.curve
            && self.point == other.point
            && self.key_use == other.key_use
    }
}

/// A JWK set of EC public keys with unique kids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Jwks {
    keys: Vec<PublicJwk>,
}

// === impl Jwks ===

impl Jwks {
    /// Builds a set, refusing duplicate kids.
    pub fn try_new(keys: Vec<PublicJwk>) -> Result<Self> {
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(Error::InvalidJwks("duplicate kid"));
            }
        }
        Ok(Self { keys })
    }

    /// Parses `{"keys":[...]}`. Keys of another `kty` than EC are skipped (a set may mix key
    /// types); a malformed EC key, a private key or a duplicate kid fails the whole set.
    pub fn from_json(text: &[u8]) -> Result<Self> {
        if text.len() > crate::MAX_TOKEN_LEN {
            return Err(Error::InvalidJwks("document over 64 KiB"));
        }
        let v: Value = serde_json::from_slice(text).map_err(|_| Error::InvalidJwks("not JSON"))?;
        let keys = v
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(Error::InvalidJwks("no keys array"))?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if k.get("kty").and_then(Value::as_str) != Some("EC") {
                continue;
            }
            out.push(PublicJwk::from_json(k)?);
        }
        Self::try_new(out)
    }

    /// The set as a JSON document `{"keys":[...]}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "keys": self.keys.iter().map(PublicJwk::to_json).collect::<Vec<_>>() })
    }

    /// The key with this kid.
    pub fn get(&self, kid: &str) -> Option<&PublicJwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// All keys.
    pub fn keys(&self) -> &[PublicJwk] {
        &self.keys
    }

    /// Kids of all keys, in order.
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// Keys usable for encryption (`use` absent or `enc`).
    pub fn encryption_keys(&self) -> impl Iterator<Item = &PublicJwk> {
        self.keys.iter().filter(|k| k.key_use != Some(KeyUse::Sig))
    }

    /// One encryption key chosen uniformly at random (as Yubico's examples choose a transport key).
    pub fn choose_encryption_key(&self) -> Result<Option<&PublicJwk>> {
        let usable: Vec<&PublicJwk> = self.encryption_keys().collect();
        if usable.is_empty() {
            return Ok(None);
        }
        let mut b = [0u8; 4];
        crate::util::fill_random(&mut b)?;
        let i = u32::from_le_bytes(b) as usize % usable.len();
        Ok(usable.get(i).copied())
    }
}

/// Private EC key material as a big-endian scalar in a zeroizing buffer.
fn scalar_of(key: &agreement::PrivateKey) -> Result<Zeroizing<Vec<u8>>> {
    let bin: aws_lc_rs::encoding::EcPrivateKeyBin<'static> = key
        .as_be_bytes()
        .map_err(|_| Error::Internal("private key export failed"))?;
    Ok(Zeroizing::new(bin.as_ref().to_vec()))
}

fn public_of(
    curve: Curve,
    kid: &str,
    key_use: KeyUse,
    key: &agreement::PrivateKey,
) -> Result<PublicJwk> {
    let public = key
        .compute_public_key()
        .map_err(|_| Error::Internal("public key computation failed"))?;
    PublicJwk::try_new(
        kid.to_owned(),
        Some(key_use),
        curve,
        public.as_ref().to_vec(),
    )
}

fn parse_private_jwk(text: &str, want: KeyUse) -> Result<(Curve, String, Zeroizing<Vec<u8>>)> {
    let raw: RawJwk = serde_json::from_str(text).map_err(|_| Error::InvalidKey {
        kid: None,
        reason: "not a JWK object",
    })?;
    let d = raw.d.clone().ok_or(Error::InvalidKey {
        kid: raw.kid.clone(),
        reason: "d is required in a private JWK",
    })?;
    let kid_for_err = raw.kid.clone();
    let public = PublicJwk::from_raw(raw)?;
    if public.key_use.is_some_and(|u| u != want) {
        return Err(Error::InvalidKey {
            kid: kid_for_err,
            reason: "use does not fit this key's purpose",
        });
    }
    let scalar = Zeroizing::new(b64d(&d).map_err(|_| Error::InvalidKey {
        kid: kid_for_err.clone(),
        reason: "d is not base64url",
    })?);
    if scalar.len() != public.curve.coordinate_len() {
        return Err(Error::InvalidKey {
            kid: kid_for_err,
            reason: "d has the wrong length for the curve",
        });
    }
    Ok((public.curve, public.kid, scalar))
}

fn private_jwk_json(public: &PublicJwk, scalar: &[u8]) -> Zeroizing<String> {
    let mut v = public.to_json();
    if let Value::Object(m) = &mut v {
        m.insert("d".into(), b64e(scalar).into());
    }
    let s = Zeroizing::new(v.to_string());
    // Best effort: the Value's copy of d is dropped here; serde_json does not zeroize it.
    drop(v);
    s
}

/// An EC private key for ECDH (a response key, or a sandbox Yubico transport key).
///
/// Secret: no `Clone`, no `Serialize`; `Debug` prints only the kid. The scalar leaves this type
/// only through [`PrivateKey::scalar`] (for sealing at rest) and [`PrivateKey::to_private_jwk`].
pub struct PrivateKey {
    inner: agreement::PrivateKey,
    public: PublicJwk,
}

// === impl PrivateKey ===

impl PrivateKey {
    /// A new random key with the given kid and `use: enc`.
    pub fn generate(curve: Curve, kid: &str) -> Result<Self> {
        let inner = agreement::PrivateKey::generate(curve.ecdh())
            .map_err(|_| Error::Internal("key generation failed"))?;
        let public = public_of(curve, kid, KeyUse::Enc, &inner)?;
        Ok(Self { inner, public })
    }

    /// Rebuilds a key from its big-endian scalar (as sealed at rest).
    pub fn from_scalar(curve: Curve, kid: &str, scalar: &[u8]) -> Result<Self> {
        let inner =
            agreement::PrivateKey::from_private_key(curve.ecdh(), scalar).map_err(|_| {
                Error::InvalidKey {
                    kid: Some(kid.to_owned()),
                    reason: "scalar is not a valid private key",
                }
            })?;
        let public = public_of(curve, kid, KeyUse::Enc, &inner)?;
        Ok(Self { inner, public })
    }

    /// Parses a private JWK (`d` required; `use`, if present, must be `enc`).
    pub fn from_private_jwk(text: &str) -> Result<Self> {
        let (curve, kid, scalar) = parse_private_jwk(text, KeyUse::Enc)?;
        Self::from_scalar(curve, &kid, &scalar)
    }

    /// The private JWK as JSON text. Secret: for the sandbox's own key files only.
    pub fn to_private_jwk(&self) -> Result<Zeroizing<String>> {
        Ok(private_jwk_json(&self.public, &self.scalar()?))
    }

    /// The big-endian private scalar, for sealing at rest. Secret.
    pub fn scalar(&self) -> Result<Zeroizing<Vec<u8>>> {
        scalar_of(&self.inner)
    }

    /// The public half.
    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub(crate) fn inner(&self) -> &agreement::PrivateKey {
        &self.inner
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kid", &self.public.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// An ECDSA signing key (a sandbox Yubico signing key). Secret, as [`PrivateKey`], except that
/// it is `Clone` (the clone shares the key, it does not copy it).
#[derive(Clone)]
pub struct SigningKey {
    // Shared, not copied: cloning a SigningKey shares the one key pair (josekit's signer trait
    // needs an owned, cloneable signer).
    pair: std::sync::Arc<signature::EcdsaKeyPair>,
    public: PublicJwk,
}

// === impl SigningKey ===

impl SigningKey {
    /// A new random key with the given kid and `use: sig`.
    pub fn generate(curve: Curve, kid: &str) -> Result<Self> {
        let ecdh = agreement::PrivateKey::generate(curve.ecdh())
            .map_err(|_| Error::Internal("key generation failed"))?;
        Self::from_scalar(curve, kid, &scalar_of(&ecdh)?)
    }

    /// Rebuilds a key from its big-endian scalar.
    pub fn from_scalar(curve: Curve, kid: &str, scalar: &[u8]) -> Result<Self> {
        let bad = || Error::InvalidKey {
            kid: Some(kid.to_owned()),
            reason: "scalar is not a valid private key",
        };
        let ecdh =
            agreement::PrivateKey::from_private_key(curve.ecdh(), scalar).map_err(|_| bad())?;
        let public = public_of(curve, kid, KeyUse::Sig, &ecdh)?;
        let pair = signature::EcdsaKeyPair::from_private_key_and_public_key(
            curve.signing_alg(),
            scalar,
            public.point(),
        )
        .map_err(|_| bad())?;
        Ok(Self {
            pair: std::sync::Arc::new(pair),
            public,
        })
    }

    /// Parses a private JWK (`d` required; `use`, if present, must be `sig`).
    pub fn from_private_jwk(text: &str) -> Result<Self> {
        let (curve, kid, scalar) = parse_private_jwk(text, KeyUse::Sig)?;
        Self::from_scalar(curve, &kid, &scalar)
    }

    /// The private JWK as JSON text. Secret: for the sandbox's own key files only.
    pub fn to_private_jwk(&self) -> Result<Zeroizing<String>> {
        let bin: aws_lc_rs::encoding::EcPrivateKeyBin<'static> = self
            .pair
            .private_key()
            .as_be_bytes()
            .map_err(|_| Error::Internal("private key export failed"))?;
        Ok(private_jwk_json(&self.public, bin.as_ref()))
    }

    /// The public half.
    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub(crate) fn pair(&self) -> &signature::EcdsaKeyPair {
        &self.pair
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}
