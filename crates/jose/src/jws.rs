//! JWS compact signing and verification (ES256, ES384, ES512) against a pinned JWKS.

use josekit::jws::JwsHeader;
use zeroize::Zeroizing;

use crate::backend::{Signer, Verifier, ecdsa_alg};
use crate::jwk::{Curve, Jwks, KeyUse, SigningKey};
use crate::{Error, Result, header};

/// A verified JWS.
#[derive(Debug)]
pub struct Verified {
    /// The payload, in a zeroizing buffer (a PIN response's payload holds the PIN).
    pub payload: Zeroizing<Vec<u8>>,
    /// The kid of the key that verified it.
    pub kid: String,
}

/// Signs `payload` as a compact JWS with header `{"alg":"ES…","kid":…,"typ":"JOSE"}`; the
/// algorithm follows the key's curve.
pub fn sign(payload: &[u8], key: &SigningKey) -> Result<String> {
    let alg = ecdsa_alg(key.public().curve());
    let mut h = JwsHeader::new();
    h.set_key_id(key.kid());
    h.set_token_type("JOSE");
    let signer = Signer {
        alg,
        key: key.clone(),
    };
    josekit::jws::serialize_compact(payload, &h, &signer).map_err(Error::Framing)
}

/// Verifies a compact JWS with the key its `kid` names in `keys`, after the profile's checks:
/// size, shape, `alg` in {ES256, ES384, ES512} and matching the key's curve, no key-naming
/// headers, key `use` not `enc`.
///
/// # Example
///
/// ```
/// use fpr_jose::{Curve, Jwks, PrivateKey, SigningKey, jwe, jws};
///
/// let response_key = PrivateKey::generate(Curve::P384, "req-1")?;
/// let signer = SigningKey::generate(Curve::P384, "yubico-sig-1")?;
/// let pinned = Jwks::try_new(vec![signer.public().clone()])?;
///
/// // Yubico's side: sign, then encrypt to the response key.
/// let signed = jws::sign(br#"{"typ":"fido-pin-response"}"#, &signer)?;
/// let token = jwe::encrypt(signed.as_bytes(), response_key.public(), jwe::Algorithms::default())?;
///
/// // The vault's side: decrypt with the response key, verify against the pinned set.
/// let inner = jwe::decrypt(&token, &response_key)?;
/// let verified = jws::verify(std::str::from_utf8(&inner).unwrap(), &pinned)?;
/// assert_eq!(verified.kid, "yubico-sig-1");
/// # Ok::<(), fpr_jose::Error>(())
/// ```
pub fn verify(token: &str, keys: &Jwks) -> Result<Verified> {
    let parts = header::split(token, 3)?;
    let h = header::parse(parts[0])?;
    let alg = header::string(&h, "alg")?;
    let curve = match alg {
        "ES256" => Curve::P256,
        "ES384" => Curve::P384,
        "ES512" => Curve::P521,
        other => {
            return Err(Error::ForbiddenAlgorithm {
                header: "alg",
                value: other.chars().take(64).collect(),
            });
        }
    };
    let kid = header::string(&h, "kid")?;
    let key = keys
        .get(kid)
        .ok_or_else(|| Error::UnknownKid(kid.chars().take(128).collect()))?;
    if key.curve() != curve || key.key_use() == Some(KeyUse::Enc) {
        return Err(Error::KeyAlgorithmMismatch {
            kid: kid.to_owned(),
            alg: alg.to_owned(),
        });
    }
    let verifier = Verifier {
        alg: ecdsa_alg(curve),
        key: key.clone(),
    };
    let (payload, _) =
        josekit::jws::deserialize_compact(token, &verifier).map_err(|e| match e {
            josekit::JoseError::InvalidSignature(_) => Error::BadSignature {
                kid: kid.to_owned(),
            },
            josekit::JoseError::InvalidJwsFormat(_) => Error::Malformed("JWS framing"),
            other => Error::Framing(other),
        })?;
    Ok(Verified {
        payload: Zeroizing::new(payload),
        kid: kid.to_owned(),
    })
}
