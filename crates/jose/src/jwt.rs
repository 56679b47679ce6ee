//! RS256 JWTs as Microsoft Entra issues them: for the sandbox's token endpoint.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

use crate::util::b64e;
use crate::{Error, Result};

/// An RSA-2048 token signing key. Secret: no `Clone`, redacted `Debug`.
pub struct RsaJwtSigner {
    kid: String,
    pair: RsaKeyPair,
}

impl std::fmt::Debug for RsaJwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaJwtSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

// === impl RsaJwtSigner ===

impl RsaJwtSigner {
    /// A new RSA-2048 key (slow: tens of milliseconds).
    pub fn generate(kid: &str) -> Result<Self> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| Error::Internal("RSA key generation failed"))?;
        Ok(Self {
            kid: kid.to_owned(),
            pair,
        })
    }

    /// Loads a key from PKCS#8 DER. Secret input.
    pub fn from_pkcs8(kid: &str, der: &[u8]) -> Result<Self> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| Error::InvalidKey {
            kid: Some(kid.to_owned()),
            reason: "not an RSA PKCS#8 key",
        })?;
        Ok(Self {
            kid: kid.to_owned(),
            pair,
        })
    }

    /// The key as PKCS#8 DER. Secret: for the sandbox's own key file only.
    pub fn to_pkcs8(&self) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        use aws_lc_rs::encoding::AsDer as _;
        let doc: aws_lc_rs::encoding::Pkcs8V1Der<'static> = self
            .pair
            .as_der()
            .map_err(|_| Error::Internal("RSA key export failed"))?;
        Ok(zeroize::Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK (`kty RSA, use sig, alg RS256, kid, n, e`).
    pub fn public_jwk(&self) -> Value {
        let c: PublicKeyComponents<Vec<u8>> = self.pair.public_key().into();
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64e(&c.n), "e": b64e(&c.e)})
    }

    /// Signs `claims` as a compact JWT with header `{"typ":"JWT","alg":"RS256","kid":…}`.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64e(header.to_string().as_bytes()),
            b64e(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| Error::Internal("RSA signing failed"))?;
        Ok(format!("{input}.{}", b64e(&sig)))
    }
}

/// Verifies an RS256 JWT against RSA public JWKs and returns its claims. Checks the signature
/// only; the caller checks `iss`, `aud`, `exp` and the rest.
pub fn verify_rs256(token: &str, keys: &[Value]) -> Result<Value> {
    let parts = crate::header::split(token, 3)?;
    let h = crate::header::parse(parts[0])?;
    if crate::header::string(&h, "alg")? != "RS256" {
        return Err(Error::ForbiddenAlgorithm {
            header: "alg",
            value: crate::header::string(&h, "alg")?.chars().take(16).collect(),
        });
    }
    let kid = crate::header::string(&h, "kid")?;
    let key = keys
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        .ok_or_else(|| Error::UnknownKid(kid.to_owned()))?;
    let comp = |name: &'static str| {
        key.get(name)
            .and_then(Value::as_str)
            .and_then(|s| crate::util::b64d(s).ok())
            .ok_or(Error::InvalidKey {
                kid: Some(kid.to_owned()),
                reason: "n/e",
            })
    };
    let pk = aws_lc_rs::signature::RsaPublicKeyComponents {
        n: comp("n")?,
        e: comp("e")?,
    };
    let sig =
        crate::util::b64d(parts[2]).map_err(|_| Error::Malformed("signature is not base64url"))?;
    let input = format!("{}.{}", parts[0], parts[1]);
    pk.verify(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        input.as_bytes(),
        &sig,
    )
    .map_err(|_| Error::BadSignature {
        kid: kid.to_owned(),
    })?;
    let claims =
        crate::util::b64d(parts[1]).map_err(|_| Error::Malformed("claims are not base64url"))?;
    serde_json::from_slice(&claims).map_err(Error::from)
}
