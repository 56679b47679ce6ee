//! WebAuthn registration checks, as an identity provider makes them: client data, authenticator
//! data, **packed** attestation and its certificate chain, AAGUID rules.
//!
//! It owns no keys, does no I/O and cannot make a credential (the sandbox's software key is
//! `fpr-softkey`). It verifies with aws-lc-rs and parses X.509 with x509-parser (without its
//! `verify` feature, which would bring a second crypto provider).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attestation;
mod data;
mod error;

pub use attestation::{AttestationPolicy, Verified, verify_packed};
pub use data::{
    AttestationObject, AttestedCredential, AuthenticatorData, ClientData, CoseKey, flags,
};
pub use error::Error;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The extension OID that carries the AAGUID in an attestation certificate (WebAuthn §8.2.1).
pub const AAGUID_EXTENSION_OID: &str = "1.3.6.1.4.1.45724.1.1.4";

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Formats an AAGUID as the usual 8-4-4-4-12 hex string.
pub fn aaguid_string(a: &[u8; 16]) -> String {
    let h: String = a.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses an 8-4-4-4-12 AAGUID string.
pub fn parse_aaguid(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// What the relying party expects of a registration.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The challenge it issued, base64url.
    pub challenge: &'a str,
    /// Its RP id.
    pub rp_id: &'a str,
    /// Origins it accepts, e.g. `https://login.microsoft.com`.
    pub origins: &'a [String],
    /// Whether user verification is required.
    pub require_uv: bool,
}

/// A registration that passed every check.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The authenticator model.
    pub aaguid: [u8; 16],
    /// The credential public key (COSE).
    pub public_key: CoseKey,
    /// The attestation result.
    pub attestation: Verified,
    /// The parsed client data.
    pub client_data: ClientData,
}

/// Checks a registration the way an IdP does: client data type, challenge and origin; rpIdHash;
/// UP (and UV when required); an attested credential; then the attestation per `policy`.
pub fn check_registration(
    client_data_json: &[u8],
    attestation_object: &[u8],
    expected: &Expected<'_>,
    policy: &AttestationPolicy,
) -> Result<Registration, Error> {
    let client_data = ClientData::parse(client_data_json)?;
    if client_data.kind != "webauthn.create" {
        return Err(Error::ClientDataType(
            client_data.kind.chars().take(40).collect(),
        ));
    }
    if client_data.challenge != expected.challenge {
        return Err(Error::ChallengeMismatch);
    }
    if !expected.origins.contains(&client_data.origin) {
        return Err(Error::OriginMismatch(
            client_data.origin.chars().take(200).collect(),
        ));
    }
    let obj = AttestationObject::parse(attestation_object)?;
    let ad = &obj.auth_data;
    if ad.rp_id_hash != sha256(expected.rp_id.as_bytes()) {
        return Err(Error::RpIdHashMismatch);
    }
    if !ad.user_present() {
        return Err(Error::UserNotPresent);
    }
    if expected.require_uv && !ad.user_verified() {
        return Err(Error::UserNotVerified);
    }
    let cred = ad.attested.clone().ok_or(Error::NoAttestedCredential)?;
    let attestation = verify_packed(&obj, &sha256(client_data_json), policy)?;
    Ok(Registration {
        credential_id: cred.credential_id,
        aaguid: cred.aaguid,
        public_key: cred.public_key,
        attestation,
        client_data,
    })
}

/// Base64url without padding.
pub fn b64e(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// Decodes base64url, with or without padding, or standard base64 (Graph accepts several).
pub fn b64d_any(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let t = s.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .or_else(|| URL_SAFE.decode(s).ok())
        .or_else(|| STANDARD.decode(s).ok())
}
