//! Parsing client data, authenticator data, COSE keys and attestation objects.

use ciborium::Value;
use serde::Deserialize;

use crate::Error;

/// Authenticator data flags.
pub mod flags {
    /// User present.
    pub const UP: u8 = 0x01;
    /// User verified.
    pub const UV: u8 = 0x04;
    /// Backup eligible.
    pub const BE: u8 = 0x08;
    /// Backed up.
    pub const BS: u8 = 0x10;
    /// Attested credential data included.
    pub const AT: u8 = 0x40;
    /// Extension data included.
    pub const ED: u8 = 0x80;
}

/// The fields of clientDataJSON that registration checks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientData {
    /// `type`.
    pub kind: String,
    /// `challenge`, base64url.
    pub challenge: String,
    /// `origin`.
    pub origin: String,
    /// `crossOrigin`.
    pub cross_origin: bool,
}

#[derive(Deserialize)]
struct RawClientData {
    #[serde(rename = "type")]
    kind: Option<String>,
    challenge: Option<String>,
    origin: Option<String>,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
}

// === impl ClientData ===

impl ClientData {
    /// Parses clientDataJSON.
    pub fn parse(json: &[u8]) -> Result<Self, Error> {
        let raw: RawClientData = serde_json::from_slice(json)
            .map_err(|_| Error::MalformedClientData("not a JSON object"))?;
        Ok(Self {
            kind: raw.kind.ok_or(Error::MalformedClientData("type missing"))?,
            challenge: raw
                .challenge
                .ok_or(Error::MalformedClientData("challenge missing"))?,
            origin: raw
                .origin
                .ok_or(Error::MalformedClientData("origin missing"))?,
            cross_origin: raw.cross_origin.unwrap_or(false),
        })
    }
}

/// A COSE public key (EC2 P-256/P-384 or RSA), with its encoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoseKey {
    /// COSE algorithm (-7 ES256, -35 ES384, -257 RS256).
    pub alg: i64,
    /// The key as encoded in the authenticator data.
    pub encoded: Vec<u8>,
    /// For EC2 keys: the uncompressed point; for RSA: empty.
    pub point: Vec<u8>,
}

fn int_key(map: &[(Value, Value)], k: i64) -> Option<&Value> {
    map.iter()
        .find(|(key, _)| {
            key.as_integer()
                .is_some_and(|i| i128::from(i) == i128::from(k))
        })
        .map(|(_, v)| v)
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_integer().and_then(|i| i64::try_from(i).ok())
}

// === impl CoseKey ===

impl CoseKey {
    fn parse(value: &Value, encoded: Vec<u8>) -> Result<Self, Error> {
        let map = value
            .as_map()
            .ok_or(Error::UnsupportedKey("not a CBOR map"))?;
        let kty = int_key(map, 1)
            .and_then(as_i64)
            .ok_or(Error::UnsupportedKey("kty missing"))?;
        let alg = int_key(map, 3)
            .and_then(as_i64)
            .ok_or(Error::UnsupportedKey("alg missing"))?;
        match (kty, alg) {
            (2, -7) | (2, -35) => {
                let crv = int_key(map, -1)
                    .and_then(as_i64)
                    .ok_or(Error::UnsupportedKey("crv missing"))?;
                let len = match (alg, crv) {
                    (-7, 1) => 32,
                    (-35, 2) => 48,
                    _ => return Err(Error::UnsupportedKey("curve does not fit the algorithm")),
                };
                let x = int_key(map, -2)
                    .and_then(Value::as_bytes)
                    .ok_or(Error::UnsupportedKey("x missing"))?;
                let y = int_key(map, -3)
                    .and_then(Value::as_bytes)
                    .ok_or(Error::UnsupportedKey("y missing"))?;
                if x.len() != len || y.len() != len {
                    return Err(Error::UnsupportedKey("coordinate length"));
                }
                let mut point = vec![0x04];
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                Ok(Self {
                    alg,
                    encoded,
                    point,
                })
            }
            (3, -257) => Ok(Self {
                alg,
                encoded,
                point: Vec::new(),
            }),
            _ => Err(Error::UnsupportedKey("only ES256, ES384 and RS256 keys")),
        }
    }
}

/// Attested credential data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredential {
    /// The authenticator model.
    pub aaguid: [u8; 16],
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The credential public key.
    pub public_key: CoseKey,
}

/// Parsed authenticator data.
///
/// # Example
///
/// ```
/// use fpr_webauthn::{AuthenticatorData, flags};
/// // rpIdHash, flags, a zero signature counter.
/// let mut bytes = fpr_webauthn::sha256(b"login.microsoft.com").to_vec();
/// bytes.push(flags::UP | flags::UV);
/// bytes.extend_from_slice(&0u32.to_be_bytes());
/// let parsed = AuthenticatorData::parse(&bytes)?;
/// assert!(parsed.user_present() && parsed.user_verified());
/// # Ok::<(), fpr_webauthn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatorData {
    /// SHA-256 of the RP id.
    pub rp_id_hash: [u8; 32],
    /// Flags (see [`flags`]).
    pub flags: u8,
    /// Signature counter.
    pub sign_count: u32,
    /// Present when the AT flag is set.
    pub attested: Option<AttestedCredential>,
    /// Extension outputs (CBOR), when the ED flag is set.
    pub extensions: Option<Value>,
    /// The raw bytes (signed by the attestation).
    pub raw: Vec<u8>,
}

// === impl AuthenticatorData ===

impl AuthenticatorData {
    /// Parses authenticator data bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bad = Error::MalformedAuthData;
        if bytes.len() < 37 {
            return Err(bad("shorter than 37 bytes"));
        }
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&bytes[..32]);
        let flags = bytes[32];
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let mut rest = &bytes[37..];
        let attested = if flags & flags::AT != 0 {
            if rest.len() < 18 {
                return Err(bad("attested credential data truncated"));
            }
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(&rest[..16]);
            let id_len = u16::from_be_bytes([rest[16], rest[17]]) as usize;
            rest = &rest[18..];
            if rest.len() < id_len || id_len == 0 || id_len > 1023 {
                return Err(bad("credential id length"));
            }
            let credential_id = rest[..id_len].to_vec();
            rest = &rest[id_len..];
            let before = rest.len();
            let key: Value = ciborium::from_reader(&mut rest)
                .map_err(|_| bad("credential public key is not CBOR"))?;
            let encoded = bytes[bytes.len() - before..bytes.len() - rest.len()].to_vec();
            Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key: CoseKey::parse(&key, encoded)?,
            })
        } else {
            None
        };
        let extensions = if flags & flags::ED != 0 {
            let v: Value =
                ciborium::from_reader(&mut rest).map_err(|_| bad("extensions are not CBOR"))?;
            Some(v)
        } else {
            None
        };
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(Self {
            rp_id_hash,
            flags,
            sign_count,
            attested,
            extensions,
            raw: bytes.to_vec(),
        })
    }

    /// UP flag.
    pub fn user_present(&self) -> bool {
        self.flags & flags::UP != 0
    }

    /// UV flag.
    pub fn user_verified(&self) -> bool {
        self.flags & flags::UV != 0
    }
}

/// A parsed attestation object.
#[derive(Debug, Clone)]
pub struct AttestationObject {
    /// `fmt`.
    pub fmt: String,
    /// `attStmt`.
    pub att_stmt: Vec<(Value, Value)>,
    /// `authData`, parsed.
    pub auth_data: AuthenticatorData,
}

fn text_key<'a>(map: &'a [(Value, Value)], k: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(key, _)| key.as_text() == Some(k))
        .map(|(_, v)| v)
}

// === impl AttestationObject ===

impl AttestationObject {
    /// Parses CBOR attestation object bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bad = Error::MalformedAttestation;
        let v: Value = ciborium::from_reader(bytes).map_err(|_| bad("not CBOR"))?;
        let map = v.as_map().ok_or(bad("not a CBOR map"))?;
        let fmt = text_key(map, "fmt")
            .and_then(Value::as_text)
            .ok_or(bad("fmt missing"))?
            .to_owned();
        let att_stmt = text_key(map, "attStmt")
            .and_then(Value::as_map)
            .ok_or(bad("attStmt missing"))?
            .clone();
        let auth = text_key(map, "authData")
            .and_then(Value::as_bytes)
            .ok_or(bad("authData missing"))?;
        Ok(Self {
            fmt,
            att_stmt,
            auth_data: AuthenticatorData::parse(auth)?,
        })
    }

    /// A text-keyed field of attStmt.
    pub fn stmt(&self, k: &str) -> Option<&Value> {
        text_key(&self.att_stmt, k)
    }
}
