//! The tests' Yubico: keys the tests hold (so they can forge, rotate and impersonate) around the
//! sandbox's own Yubico code (`fpr_sandbox::yubico`), so there is one implementation of
//! Yubico's side of the contract in the workspace.

use fpr_domain::yubikey::{Product, product_by_id};
use fpr_jose::protocol::{CredentialRequest, CredentialResponse, PinRequest, PinResponse};
use fpr_jose::{Curve, Jwks, PrivateKey, PublicJwk, SigningKey};
use fpr_sandbox::yubico::{self as contract, Requests};
use fpr_softkey::AttestationCa;
use zeroize::Zeroizing;

/// Two transport keys and two signing keys, like Yubico's published sets, and an attestation
/// CA for the keys it programs.
///
/// # Example
///
/// ```
/// let yubico = fpr_tests::Yubico::new();
/// assert_eq!(yubico.signing_jwks().keys().len(), 2);
/// ```
pub struct Yubico {
    /// Transport (decryption) keys.
    pub transport: Vec<PrivateKey>,
    /// Signing keys; the first signs responses.
    pub signing: Vec<SigningKey>,
    /// The CA whose leaf attests the programmed credentials.
    pub ca: AttestationCa,
}

/// What one fulfilment produced: the requests as Yubico read them, the PIN it chose and the
/// two response JWEs.
pub struct Fulfilment {
    /// The decrypted credential request.
    pub credential_request: CredentialRequest,
    /// The decrypted PIN request.
    pub pin_request: PinRequest,
    /// The PIN programmed.
    pub pin: Zeroizing<String>,
    /// The serial number.
    pub serial: String,
    /// Credential response JWE.
    pub credential_response_jwe: String,
    /// PIN response JWE.
    pub pin_response_jwe: String,
}

impl Default for Yubico {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Yubico {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Yubico").finish_non_exhaustive()
    }
}

fn product() -> &'static Product {
    product_by_id(29).unwrap()
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
        Self {
            transport,
            signing,
            ca: AttestationCa::generate().unwrap(),
        }
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
    pub fn open_request(&self, token: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        contract::open_request(&self.transport, token)
    }

    /// Signs `payload` with `signer` and encrypts it to `response_key` (a public JWK object).
    pub fn respond(
        payload: &[u8],
        signer: &SigningKey,
        response_key: &serde_json::Value,
    ) -> String {
        contract::seal(
            payload,
            signer,
            &PublicJwk::from_json(response_key).unwrap(),
        )
        .unwrap()
    }

    /// Programs a key (a YubiKey 5C NFC) from the two sealed requests and returns the
    /// responses, signed with the first signing key.
    pub fn fulfil(
        &self,
        credential_request_jwe: &str,
        pin_request_jwe: &str,
        serial: &str,
    ) -> Fulfilment {
        let req = contract::open_requests(&self.transport, credential_request_jwe, pin_request_jwe)
            .unwrap();
        let out = contract::program(&self.ca, product(), &req, serial).unwrap();
        let pin: PinResponse = serde_json::from_slice(&out.pin).unwrap();
        let signer = &self.signing[0];
        Fulfilment {
            credential_response_jwe: contract::seal(&out.credential, signer, &req.response_key)
                .unwrap(),
            pin_response_jwe: contract::seal(&out.pin, signer, &req.response_key).unwrap(),
            pin: Zeroizing::new(pin.pin().to_owned()),
            serial: serial.to_owned(),
            credential_request: req.credential,
            pin_request: req.pin,
        }
    }

    /// The credential response Yubico would make for `req`, before it is signed and sealed.
    pub fn credential_response(&self, req: &CredentialRequest, serial: &str) -> CredentialResponse {
        let pin = PinRequest {
            typ: fpr_jose::protocol::PIN_REQUEST.into(),
            v: fpr_jose::protocol::VERSION,
            request_id: req.request_id.clone(),
            response_key: req.response_key.clone(),
            pin: fpr_jose::protocol::PinSpec {
                kind: "generate".into(),
                length: 8,
                force_change: false,
            },
        };
        let requests = Requests {
            credential: req.clone(),
            pin,
            response_key: PublicJwk::from_json(&req.response_key).unwrap(),
        };
        let out = contract::program(&self.ca, product(), &requests, serial).unwrap();
        serde_json::from_slice(&out.credential).unwrap()
    }
}
