//! Sealing secrets at rest: AES-256-GCM under a 32-byte master key, with associated data.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use zeroize::{Zeroize, Zeroizing};

use crate::util::{fill_random, hmac_sha256};
use crate::{Error, Result};

/// Version byte in front of every sealed value.
const VERSION: u8 = 1;

/// The vault's 32-byte master key. Secret: no `Clone`, redacted `Debug`, zeroized on drop.
pub struct MasterKey {
    bytes: [u8; 32],
    aead: LessSafeKey,
}

// === impl MasterKey ===

impl MasterKey {
    /// Parses a master key from a file's or variable's contents: 64 hex digits, base64 of 32
    /// bytes (standard or url-safe), or exactly 32 raw bytes. Surrounding whitespace is ignored.
    pub fn from_encoded(text: &[u8]) -> Result<Self> {
        let trimmed = text.trim_ascii();
        let mut bytes = Zeroizing::new([0u8; 32]);
        if trimmed.len() == 64 && trimmed.iter().all(u8::is_ascii_hexdigit) {
            for (i, pair) in trimmed.chunks(2).enumerate() {
                let s =
                    std::str::from_utf8(pair).map_err(|_| Error::InvalidMasterKey("not hex"))?;
                bytes[i] =
                    u8::from_str_radix(s, 16).map_err(|_| Error::InvalidMasterKey("not hex"))?;
            }
        } else if let Some(decoded) = decode_b64(trimmed) {
            if decoded.len() != 32 {
                return Err(Error::InvalidMasterKey(
                    "must be 32 bytes (64 hex digits or 44 base64 characters)",
                ));
            }
            bytes.copy_from_slice(&decoded);
        } else if text.len() == 32 {
            bytes.copy_from_slice(text);
        } else {
            return Err(Error::InvalidMasterKey(
                "must be 32 bytes (64 hex digits or 44 base64 characters)",
            ));
        }
        Self::from_bytes(&bytes)
    }

    /// A master key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::Internal("AES-256-GCM key setup failed"))?;
        Ok(Self {
            bytes: *bytes,
            aead: LessSafeKey::new(unbound),
        })
    }

    /// A new random master key, hex-encoded for a key file. Secret.
    pub fn generate_hex() -> Result<Zeroizing<String>> {
        let mut b = Zeroizing::new([0u8; 32]);
        fill_random(&mut b[..])?;
        let mut s = Zeroizing::new(String::with_capacity(65));
        for byte in b.iter() {
            s.push_str(&format!("{byte:02x}"));
        }
        s.push('\n');
        Ok(s)
    }

    /// Key check value: the first 3 bytes of HMAC-SHA256(key, "fpr kcv"), hex. Public: it
    /// identifies a key without revealing it, so a wrong key is caught at start.
    pub fn check_value(&self) -> String {
        let mac = hmac_sha256(&self.bytes, b"fpr kcv");
        mac[..3].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Seals `plaintext`, binding it to `aad` (the record's key id): version || nonce || ct || tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plaintext.to_vec());
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *body,
            )
            .map_err(|_| Error::Internal("AES-256-GCM seal failed"))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a value sealed by [`MasterKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(Error::SealOpenFailed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..=NONCE_LEN]);
        let mut body = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| Error::SealOpenFailed)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

fn decode_b64(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    [
        STANDARD.decode(text),
        URL_SAFE.decode(text),
        URL_SAFE_NO_PAD.decode(text),
    ]
    .into_iter()
    .find_map(|r| r.ok())
    .map(Zeroizing::new)
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("check_value", &self.check_value())
            .finish_non_exhaustive()
    }
}
