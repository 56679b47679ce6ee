//! josekit's encrypter, decrypter, signer and verifier traits implemented over aws-lc-rs.
//!
//! josekit keeps the JOSE framing (headers, compact serialization, content encryption); every
//! elliptic-curve operation (ECDH, ECDSA) runs on aws-lc-rs, which is several times faster than
//! the system OpenSSL that josekit's own EC implementations use. See
//! `docs/decisions/0001-jose-on-aws-lc-rs.md`.

use std::borrow::Cow;

use aws_lc_rs::{agreement, digest};
use josekit::JoseError;
use josekit::jwe::{JweAlgorithm, JweContentEncryption, JweDecrypter, JweEncrypter, JweHeader};
use josekit::jws::alg::ecdsa::EcdsaJwsAlgorithm;
use josekit::jws::{JwsAlgorithm, JwsSigner, JwsVerifier};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::jwe::KeyManagement;
use crate::jwk::{Curve, PrivateKey, PublicJwk, SigningKey};
use crate::util::b64e;
use crate::{Error, Result};

fn jose_err(msg: &'static str) -> JoseError {
    JoseError::InvalidKeyFormat(anyhow::Error::msg(msg))
}

/// Concat KDF of RFC 7518 §4.6.2 with SHA-256 and empty `apu`/`apv`.
pub(crate) fn concat_kdf(z: &[u8], algorithm_id: &str, key_len: usize) -> Zeroizing<Vec<u8>> {
    let mut other = Vec::with_capacity(4 + algorithm_id.len() + 12);
    other.extend_from_slice(&(algorithm_id.len() as u32).to_be_bytes());
    other.extend_from_slice(algorithm_id.as_bytes());
    other.extend_from_slice(&0u32.to_be_bytes()); // apu
    other.extend_from_slice(&0u32.to_be_bytes()); // apv
    other.extend_from_slice(&((key_len * 8) as u32).to_be_bytes());
    let mut out = Zeroizing::new(Vec::with_capacity(key_len + 32));
    let mut counter: u32 = 1;
    while out.len() < key_len {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        ctx.update(&other);
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(key_len);
    out
}

/// ECDH between our private key and a peer point, then the Concat KDF.
pub(crate) fn ecdh_derive(
    private: &agreement::PrivateKey,
    curve: Curve,
    peer_point: &[u8],
    algorithm_id: &str,
    key_len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let peer = agreement::UnparsedPublicKey::new(curve.ecdh(), peer_point);
    agreement::agree(
        private,
        peer,
        Error::InvalidEphemeralKey("not a point on the recipient's curve"),
        |z| Ok(concat_kdf(z, algorithm_id, key_len)),
    )
}

pub(crate) fn aes_kw(kek: &[u8], cek: &[u8]) -> Result<Vec<u8>> {
    let key = openssl::aes::AesKey::new_encrypt(kek)
        .map_err(|_| Error::Internal("AES key wrap setup failed"))?;
    let mut out = vec![0u8; cek.len() + 8];
    openssl::aes::wrap_key(&key, None, &mut out, cek)
        .map_err(|_| Error::Internal("AES key wrap failed"))?;
    Ok(out)
}

pub(crate) fn aes_kw_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Err(Error::KeyUnwrapFailed);
    }
    let key = openssl::aes::AesKey::new_decrypt(kek)
        .map_err(|_| Error::Internal("AES key unwrap setup failed"))?;
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
    openssl::aes::unwrap_key(&key, None, &mut out, wrapped).map_err(|_| Error::KeyUnwrapFailed)?;
    Ok(out)
}

/// ECDH-ES (+AxxxKW) encrypter to one recipient public key.
#[derive(Debug, Clone)]
pub(crate) struct Encrypter {
    pub(crate) alg: KeyManagement,
    pub(crate) recipient: PublicJwk,
}

// === impl Encrypter ===

impl Encrypter {
    /// Makes an ephemeral key, writes `epk` into the header and derives the KDF output.
    fn agree(
        &self,
        out_header: &mut JweHeader,
        algorithm_id: &str,
        key_len: usize,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let curve = self.recipient.curve();
        let eph = PrivateKey::generate(curve, "epk")?;
        let n = curve.coordinate_len();
        let point = eph.public().point();
        let mut epk = Map::new();
        epk.insert("kty".into(), "EC".into());
        epk.insert("crv".into(), curve.name().into());
        epk.insert("x".into(), b64e(&point[1..=n]).into());
        epk.insert("y".into(), b64e(&point[1 + n..]).into());
        out_header
            .set_claim("epk", Some(Value::Object(epk)))
            .map_err(Error::Framing)?;
        ecdh_derive(
            eph.inner(),
            curve,
            self.recipient.point(),
            algorithm_id,
            key_len,
        )
    }
}

impl JweEncrypter for Encrypter {
    fn algorithm(&self) -> &dyn JweAlgorithm {
        self.alg.josekit()
    }

    fn key_id(&self) -> Option<&str> {
        Some(self.recipient.kid())
    }

    fn compute_content_encryption_key(
        &self,
        cencryption: &dyn JweContentEncryption,
        _in_header: &JweHeader,
        out_header: &mut JweHeader,
    ) -> Result<Option<Cow<'_, [u8]>>, JoseError> {
        match self.alg {
            KeyManagement::EcdhEs => {
                let key = self
                    .agree(out_header, cencryption.name(), cencryption.key_len())
                    .map_err(|_| jose_err("ECDH failed"))?;
                Ok(Some(Cow::Owned(key.to_vec())))
            }
            _ => Ok(None),
        }
    }

    fn encrypt(
        &self,
        key: &[u8],
        _in_header: &JweHeader,
        out_header: &mut JweHeader,
    ) -> Result<Option<Vec<u8>>, JoseError> {
        match self.alg.kw_len() {
            None => Ok(None),
            Some(kw_len) => {
                let kek = self
                    .agree(out_header, self.alg.name(), kw_len)
                    .map_err(|_| jose_err("ECDH failed"))?;
                aes_kw(&kek, key)
                    .map(Some)
                    .map_err(|_| jose_err("key wrap failed"))
            }
        }
    }

    fn box_clone(&self) -> Box<dyn JweEncrypter> {
        Box::new(self.clone())
    }
}

/// Hands josekit a content-encryption key that was already derived and checked.
#[derive(Clone)]
pub(crate) struct KnownKey {
    pub(crate) alg: KeyManagement,
    pub(crate) cek: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KnownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl JweDecrypter for KnownKey {
    fn algorithm(&self) -> &dyn JweAlgorithm {
        self.alg.josekit()
    }

    fn key_id(&self) -> Option<&str> {
        None
    }

    fn decrypt(
        &self,
        _encrypted_key: Option<&[u8]>,
        _cencryption: &dyn JweContentEncryption,
        _header: &JweHeader,
    ) -> Result<Cow<'_, [u8]>, JoseError> {
        Ok(Cow::Borrowed(&self.cek))
    }

    fn box_clone(&self) -> Box<dyn JweDecrypter> {
        Box::new(self.clone())
    }
}

pub(crate) fn ecdsa_alg(curve: Curve) -> EcdsaJwsAlgorithm {
    match curve {
        Curve::P256 => EcdsaJwsAlgorithm::Es256,
        Curve::P384 => EcdsaJwsAlgorithm::Es384,
        Curve::P521 => EcdsaJwsAlgorithm::Es512,
    }
}

/// Verifies ES256/384/512 signatures with a pre-parsed aws-lc-rs public key.
#[derive(Debug, Clone)]
pub(crate) struct Verifier {
    pub(crate) alg: EcdsaJwsAlgorithm,
    pub(crate) key: PublicJwk,
}

impl JwsVerifier for Verifier {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &self.alg
    }

    fn key_id(&self) -> Option<&str> {
        Some(self.key.kid())
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        let parsed = self
            .key
            .verifier()
            .ok_or_else(|| jose_err("key is not a signature key"))?;
        parsed
            .verify_sig(message, signature)
            .map_err(|_| JoseError::InvalidSignature(anyhow::Error::msg("signature mismatch")))
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

/// Signs with an aws-lc-rs ECDSA key pair (fixed-length r||s, as JWS wants).
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    pub(crate) alg: EcdsaJwsAlgorithm,
    pub(crate) key: SigningKey,
}

impl JwsSigner for Signer {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &self.alg
    }

    fn key_id(&self) -> Option<&str> {
        Some(self.key.kid())
    }

    fn signature_len(&self) -> usize {
        2 * self.key.public().curve().coordinate_len()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = self
            .key
            .pair()
            .sign(&rng, message)
            .map_err(|_| jose_err("ECDSA signing failed"))?;
        Ok(sig.as_ref().to_vec())
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}
