//! The JSON plaintexts inside every JWE and JWS of docs/design/protocol.md.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

/// `typ` of a credential request.
pub const CREDENTIAL_REQUEST: &str = "fido-credential-request";
/// `typ` of a PIN request.
pub const PIN_REQUEST: &str = "fido-pin-request";
/// `typ` of a credential response.
pub const CREDENTIAL_RESPONSE: &str = "fido-credential-response";
/// `typ` of a PIN response.
pub const PIN_RESPONSE: &str = "fido-pin-response";
/// The protocol version every message carries as `v`.
pub const VERSION: u32 = 1;

/// Shortest and longest PIN Yubico programs.
pub const PIN_LENGTH: std::ops::RangeInclusive<u32> = 4..=63;

/// A credential request (one per shipment).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CredentialRequest {
    /// Always [`CREDENTIAL_REQUEST`].
    pub typ: String,
    /// Always [`VERSION`].
    pub v: u32,
    /// Random 128-bit id, base64url; also the response key's kid.
    pub request_id: String,
    /// The public response key (JWK object).
    pub response_key: Value,
    /// PublicKeyCredentialCreationOptions exactly as the IdP returned them.
    pub public_key: Value,
}

/// What Yubico generates for the PIN.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinSpec {
    /// Always "generate".
    #[serde(rename = "type")]
    pub kind: String,
    /// Number of digits, 4 to 63.
    pub length: u32,
    /// Ask for CTAP 2.1 forcePINChange.
    pub force_change: bool,
}

/// A PIN request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PinRequest {
    /// Always [`PIN_REQUEST`].
    pub typ: String,
    /// Always [`VERSION`].
    pub v: u32,
    /// The same request id as the credential request.
    pub request_id: String,
    /// The same public response key.
    pub response_key: Value,
    /// The PIN to generate.
    pub pin: PinSpec,
}

/// A credential response (the JWS payload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CredentialResponse {
    /// Always [`CREDENTIAL_RESPONSE`].
    pub typ: String,
    /// Always [`VERSION`].
    pub v: u32,
    /// The request id answered.
    pub request_id: String,
    /// Decimal serial number of the key.
    pub serial_number: String,
    /// Firmware version, e.g. "5.7.1".
    pub firmware_version: String,
    /// WebAuthn RegistrationResponseJSON.
    pub credential: RegistrationResponseJson,
}

/// WebAuthn RegistrationResponseJSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponseJson {
    /// Credential id, base64url.
    pub id: String,
    /// Credential id, base64url.
    pub raw_id: String,
    /// "public-key".
    #[serde(rename = "type")]
    pub kind: String,
    /// "cross-platform".
    #[serde(default)]
    pub authenticator_attachment: Option<String>,
    /// The attestation response.
    pub response: AttestationResponseJson,
    /// Client extension results.
    #[serde(default)]
    pub client_extension_results: Value,
}

/// AuthenticatorAttestationResponseJSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponseJson {
    /// clientDataJSON, base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// attestationObject, base64url.
    pub attestation_object: String,
    /// Transports.
    #[serde(default)]
    pub transports: Vec<String>,
}

/// A PIN response (the JWS payload). Secret: `Debug` redacts the PIN, which lives in a
/// zeroizing buffer and leaves it only through [`PinResponse::pin`].
#[derive(Serialize, Deserialize)]
pub struct PinResponse {
    /// Always [`PIN_RESPONSE`].
    pub typ: String,
    /// Always [`VERSION`].
    pub v: u32,
    /// The request id answered.
    pub request_id: String,
    /// Decimal serial number of the key.
    pub serial_number: String,
    pin: Zeroizing<String>,
}

// === impl PinResponse ===

impl PinResponse {
    /// Builds a PIN response (the Yubico side: sandbox and tests).
    pub fn new(request_id: String, serial_number: String, pin: Zeroizing<String>) -> Self {
        Self {
            typ: PIN_RESPONSE.to_owned(),
            v: VERSION,
            request_id,
            serial_number,
            pin,
        }
    }

    /// The PIN. Secret: hand it straight to the delivery channel.
    pub fn pin(&self) -> &str {
        &self.pin
    }

    /// Serializes into a zeroizing buffer (the payload holds the PIN).
    pub fn to_json(&self) -> Result<Zeroizing<Vec<u8>>, serde_json::Error> {
        serde_json::to_vec(self).map(Zeroizing::new)
    }
}

impl fmt::Debug for PinResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinResponse")
            .field("request_id", &self.request_id)
            .field("serial_number", &self.serial_number)
            .field("pin", &"[redacted]")
            .finish()
    }
}
