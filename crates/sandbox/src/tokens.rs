//! JWTs as the sandbox's Microsoft login issues them (RS256 under the tenant's key) and as it
//! checks them (Graph's access tokens, Okta's client assertions), on the workspace's one JWT
//! stack, `jsonwebtoken`. The RSA key itself is made and stored with aws-lc-rs.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// An RSA-2048 token signing key. Secret: no `Clone`, and `Debug` shows the kid only.
pub struct TokenSigner {
    kid: String,
    pair: RsaKeyPair,
    key: EncodingKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

// === impl TokenSigner ===

impl TokenSigner {
    /// A new RSA-2048 key (slow: tens of milliseconds).
    pub fn generate(kid: &str) -> anyhow::Result<Self> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        Self::new(kid, pair)
    }

    /// Loads a key from PKCS#8 DER. Secret input.
    pub fn from_pkcs8(kid: &str, der: &[u8]) -> anyhow::Result<Self> {
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|_| anyhow::anyhow!("{kid}: not an RSA PKCS#8 key"))?;
        Self::new(kid, pair)
    }

    fn new(kid: &str, pair: RsaKeyPair) -> anyhow::Result<Self> {
        let der = pkcs8(&pair)?;
        let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
        let b64 = Zeroizing::new(STANDARD.encode(&*der));
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line)?);
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let key = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        Ok(Self {
            kid: kid.to_owned(),
            pair,
            key,
        })
    }

    /// The key as PKCS#8 DER. Secret: for the sandbox's own key file only.
    pub fn to_pkcs8(&self) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        pkcs8(&self.pair)
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK (`kty RSA, use sig, alg RS256, kid, n, e`).
    pub fn public_jwk(&self) -> Value {
        let c: PublicKeyComponents<Vec<u8>> = self.pair.public_key().into();
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
               "n": URL_SAFE_NO_PAD.encode(&c.n), "e": URL_SAFE_NO_PAD.encode(&c.e)})
    }

    /// Signs `claims` as a compact JWT with header `{"typ":"JWT","alg":"RS256","kid":…}`.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

fn pkcs8(pair: &RsaKeyPair) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let doc: aws_lc_rs::encoding::Pkcs8V1Der<'static> = pair
        .as_der()
        .map_err(|_| anyhow::anyhow!("RSA key export failed"))?;
    Ok(Zeroizing::new(doc.as_ref().to_vec()))
}

/// Verifies a JWT (RS256, or ES256/ES384) against public JWKs, choosing the key by `kid`, and
/// returns its claims. Checks the signature only; the caller checks `iss`, `aud`, `exp`.
pub fn verify(token: &str, keys: &[Value]) -> anyhow::Result<Value> {
    let header = jsonwebtoken::decode_header(token)?;
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::ES384
    ) {
        anyhow::bail!("algorithm {:?} is not accepted", header.alg);
    }
    let key = keys
        .iter()
        .find(|k| header.kid.is_some() && k["kid"].as_str() == header.kid.as_deref())
        .or_else(|| {
            keys.first()
                .filter(|_| keys.len() == 1 && header.kid.is_none())
        })
        .ok_or_else(|| anyhow::anyhow!("no key for kid {:?}", header.kid))?;
    // A caller sends the same token with each of its calls for as long as it lives: the
    // claims of a token already verified under the same key are answered from memory (the
    // check is a pure function of the two; RSA verification was a thirtieth of the sandbox's
    // CPU under load).
    let memo_key = (token.to_owned(), key.to_string());
    if let Some(claims) = lock(&VERIFIED).get(&memo_key) {
        return Ok(claims.clone());
    }
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone())?;
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(&jwk)?, &v)?.claims;
    let mut memo = lock(&VERIFIED);
    if memo.len() >= VERIFIED_MAX {
        memo.clear();
    }
    memo.insert(memo_key, claims.clone());
    Ok(claims)
}

/// Tokens verified lately, by (token, key): their claims.
static VERIFIED: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<(String, String), Value>>,
> = std::sync::LazyLock::new(Default::default);

/// At most this many remembered (a sandbox sees a few callers' tokens at a time).
const VERIFIED_MAX: usize = 256;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_reloads() {
        let k = TokenSigner::generate("t1").unwrap();
        let token = k.sign(&json!({"aud": "x"})).unwrap();
        assert_eq!(verify(&token, &[k.public_jwk()]).unwrap()["aud"], "x");
        let again = TokenSigner::from_pkcs8("t1", &k.to_pkcs8().unwrap()).unwrap();
        assert_eq!(again.public_jwk(), k.public_jwk());
        let other = TokenSigner::generate("t1").unwrap();
        assert!(verify(&token, &[other.public_jwk()]).is_err());
        assert!(verify(&token, &[]).is_err());
        // `none` and HMAC are refused whatever the keys.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"t1"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert!(verify(&none, &[k.public_jwk()]).is_err());
    }
}
