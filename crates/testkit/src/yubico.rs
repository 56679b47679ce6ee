//! A test Yubico: what Yubico's fulfilment does with sealed requests, per docs/design/protocol.md.

use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::{
    self, AttestationResponseJson, CredentialRequest, CredentialResponse, PinRequest, PinResponse,
    RegistrationResponseJson,
};
use fpr_jose::util::{b64e, random_digits};
use fpr_jose::{Curve, Jwks, PrivateKey, PublicJwk, SigningKey, jws};
use serde_json::json;
use zeroize::Zeroizing;

/// Two transport keys and two signing keys, like Yubico's published sets.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let yubico = fpr_testkit::Yubico::new();
/// assert_eq!(yubico.signing_jwks().keys().len(), 2);
/// # }
/// ```
pub struct Yubico {
    /// Transport (decryption) keys.
    pub transport: Vec<PrivateKey>,
    /// Signing keys.
    pub signing: Vec<SigningKey>,
}

/// What fulfilment produced for one shipment. `pin` is test data.
pub struct Fulfilment {
    /// The decrypted credential request.
    pub credential_request: CredentialRequest,
    /// The decrypted PIN request.
    pub pin_request: PinRequest,
    /// The generated PIN (test data).
    pub pin: Zeroizing<String>,
    /// The key's serial.
    pub serial: String,
    /// The credential response JWE.
    pub credential_response_jwe: String,
    /// The PIN response JWE.
    pub pin_response_jwe: String,
}

impl Default for Yubico {
    fn default() -> Self {
        Self::new()
    }
}

impl Yubico {
    /// New random keys with Yubico-like kids.
    pub fn new() -> Self {
        let transport = (0..2)
            .map(|i| {
                PrivateKey::generate(Curve::P384, &format!("APCS-Ttrans-TEST-I00{i}")).unwrap()
            })
            .collect();
        let signing = (0..2)
            .map(|i| {
                SigningKey::generate(Curve::P384, &format!("APCS-Tsgnkey-TEST-H00{i}")).unwrap()
            })
            .collect();
        Self { transport, signing }
    }

    /// The public transport JWKS.
    pub fn transport_jwks(&self) -> Jwks {
        Jwks::try_new(self.transport.iter().map(|k| k.public().clone()).collect()).unwrap()
    }

    /// The public signing JWKS.
    pub fn signing_jwks(&self) -> Jwks {
        Jwks::try_new(self.signing.iter().map(|k| k.public().clone()).collect()).unwrap()
    }

    /// Decrypts a request JWE with the transport key its kid names.
    pub fn open_request(&self, token: &str) -> Result<Zeroizing<Vec<u8>>, fpr_jose::Error> {
        let info = jwe::inspect(token)?;
        let key = self
            .transport
            .iter()
            .find(|k| k.kid() == info.kid)
            .ok_or(fpr_jose::Error::UnknownKid(info.kid))?;
        jwe::decrypt(token, key)
    }

    /// Signs `payload` with `signer` and encrypts it to `response_key` (a public JWK object).
    pub fn respond(
        payload: &[u8],
        signer: &SigningKey,
        response_key: &serde_json::Value,
    ) -> String {
        let to = PublicJwk::from_json(response_key).unwrap();
        let signed = Zeroizing::new(jws::sign(payload, signer).unwrap());
        jwe::encrypt(signed.as_bytes(), &to, Algorithms::default()).unwrap()
    }

    /// Programs a (pretend) key from the two sealed requests and returns the responses.
    pub fn fulfil(
        &self,
        credential_request_jwe: &str,
        pin_request_jwe: &str,
        serial: &str,
    ) -> Fulfilment {
        let credential_request: CredentialRequest =
            serde_json::from_slice(&self.open_request(credential_request_jwe).unwrap()).unwrap();
        let pin_request: PinRequest =
            serde_json::from_slice(&self.open_request(pin_request_jwe).unwrap()).unwrap();
        let pin = random_digits(pin_request.pin.length as usize).unwrap();
        let signer = &self.signing[0];
        let cred = self.credential_response(&credential_request, serial);
        let credential_response_jwe = Self::respond(
            &serde_json::to_vec(&cred).unwrap(),
            signer,
            &credential_request.response_key,
        );
        let pin_resp = PinResponse::new(
            pin_request.request_id.clone(),
            serial.to_owned(),
            pin.clone(),
        );
        let pin_response_jwe = Self::respond(
            &pin_resp.to_json().unwrap(),
            signer,
            &pin_request.response_key,
        );
        Fulfilment {
            credential_request,
            pin_request,
            pin,
            serial: serial.to_owned(),
            credential_response_jwe,
            pin_response_jwe,
        }
    }

    /// A credential response for `req` (the attestation object is a placeholder: real packed
    /// attestation is the sandbox's job).
    pub fn credential_response(&self, req: &CredentialRequest, serial: &str) -> CredentialResponse {
        let cred_id = b64e(format!("cred-{}", req.request_id).as_bytes());
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": req.public_key["challenge"],
            "origin": format!("https://{}", req.public_key["rp"]["id"].as_str().unwrap_or_default()),
            "crossOrigin": false
        });
        CredentialResponse {
            typ: protocol::CREDENTIAL_RESPONSE.into(),
            v: protocol::VERSION,
            request_id: req.request_id.clone(),
            serial_number: serial.to_owned(),
            firmware_version: "5.7.1".into(),
            credential: RegistrationResponseJson {
                id: cred_id.clone(),
                raw_id: cred_id,
                kind: "public-key".into(),
                authenticator_attachment: Some("cross-platform".into()),
                response: AttestationResponseJson {
                    client_data_json: b64e(client_data.to_string().as_bytes()),
                    attestation_object: b64e(b"placeholder attestation"),
                    transports: vec!["nfc".into(), "usb".into()],
                },
                client_extension_results: json!({"credProps": {"rk": true}}),
            },
        }
    }
}
