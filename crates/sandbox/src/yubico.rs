//! Yubico's side of the wire contract (docs/design/protocol.md), with no HTTP and no state:
//! open the two sealed requests, program the software key, seal the signed responses. The
//! sandbox's YubiEnterprise fulfils shipments with it, and `fpr bench` times it as part of the
//! floor. NO SECURITY: the keys are the sandbox's, the authenticator is software.

use fpr_domain::yubikey::Product;
use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::{
    self, AttestationResponseJson, CredentialRequest, CredentialResponse, PinRequest, PinResponse,
    RegistrationResponseJson,
};
use fpr_jose::{Jwks, PrivateKey, PublicJwk, SigningKey, jws};
use fpr_softkey::AttestationCa;
use serde_json::json;
use zeroize::Zeroizing;

use crate::state::ProductData;

/// The two requests of one shipment, opened and checked to belong together.
#[derive(Debug)]
pub struct Requests {
    /// The credential request.
    pub credential: CredentialRequest,
    /// The PIN request.
    pub pin: PinRequest,
    /// The response key both name.
    pub response_key: PublicJwk,
}

/// Opens one request with the transport key its header names.
pub fn open_request(transport: &[PrivateKey], token: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let info = jwe::inspect(token).map_err(|e| format!("request JWE: {e}"))?;
    let key = transport
        .iter()
        .find(|k| k.kid() == info.kid)
        .ok_or("request encrypted to an unknown transport key")?;
    jwe::decrypt(token, key).map_err(|e| format!("request JWE: {e}"))
}

/// Opens both requests with whichever transport key their headers name, and checks what
/// Yubico would: the protocol's `typ` and `v`, one request id and response key, a PIN it can
/// make.
pub fn open_requests(
    transport: &[PrivateKey],
    cred_jwe: &str,
    pin_jwe: &str,
) -> Result<Requests, String> {
    let open = |t: &str| open_request(transport, t);
    let credential: CredentialRequest = serde_json::from_slice(&open(cred_jwe)?)
        .map_err(|_| "credential request is not the protocol's JSON")?;
    let pin: PinRequest = serde_json::from_slice(&open(pin_jwe)?)
        .map_err(|_| "PIN request is not the protocol's JSON")?;
    if credential.typ != protocol::CREDENTIAL_REQUEST
        || pin.typ != protocol::PIN_REQUEST
        || credential.v != 1
        || pin.v != 1
    {
        return Err("wrong typ or v in a request".into());
    }
    if credential.request_id != pin.request_id || credential.response_key != pin.response_key {
        return Err("PIN and credential requests do not belong together".into());
    }
    if !protocol::PIN_LENGTH.contains(&pin.pin.length) || pin.pin.kind != "generate" {
        return Err("PIN request asks for an unsupported PIN".into());
    }
    let response_key =
        PublicJwk::from_json(&credential.response_key).map_err(|e| format!("response key: {e}"))?;
    Ok(Requests {
        credential,
        pin,
        response_key,
    })
}

/// The two responses' plaintexts (the JWS payloads), before they are signed and sealed.
#[derive(Debug)]
pub struct Programmed {
    /// The credential response's JSON.
    pub credential: Vec<u8>,
    /// The PIN response's JSON. Secret.
    pub pin: Zeroizing<Vec<u8>>,
}

/// Programs a key of `product` with serial `serial`: the credential (with packed attestation
/// under `ca`) and a random PIN of the requested length.
pub fn program(
    ca: &AttestationCa,
    product: &Product,
    req: &Requests,
    serial: &str,
) -> Result<Programmed, String> {
    let aaguid = fpr_webauthn::parse_aaguid(product.aaguid).ok_or("bad AAGUID")?;
    let cred = ca
        .make_credential(&req.credential.public_key, &aaguid, product.name)
        .map_err(|e| e.to_string())?;
    let cred_id = fpr_webauthn::b64e(&cred.credential_id);
    let mut ext = json!({"credProps": {"rk": true}});
    if cred.cred_protect {
        ext["credProtect"] = json!(1);
    }
    let response = CredentialResponse {
        typ: protocol::CREDENTIAL_RESPONSE.into(),
        v: protocol::VERSION,
        request_id: req.credential.request_id.clone(),
        serial_number: serial.to_owned(),
        firmware_version: product.firmware.into(),
        credential: RegistrationResponseJson {
            id: cred_id.clone(),
            raw_id: cred_id,
            kind: "public-key".into(),
            authenticator_attachment: Some("cross-platform".into()),
            response: AttestationResponseJson {
                client_data_json: fpr_webauthn::b64e(&cred.client_data_json),
                attestation_object: fpr_webauthn::b64e(&cred.attestation_object),
                transports: vec!["nfc".into(), "usb".into()],
            },
            client_extension_results: ext,
        },
    };
    let pin =
        fpr_jose::util::random_digits(req.pin.pin.length as usize).map_err(|e| e.to_string())?;
    let pin = PinResponse::new(req.pin.request_id.clone(), serial.to_owned(), pin);
    Ok(Programmed {
        credential: serde_json::to_vec(&response).map_err(|e| e.to_string())?,
        pin: pin.to_json().map_err(|e| e.to_string())?,
    })
}

/// Signs a response payload and encrypts it to the response key: a JWS inside a JWE.
pub fn seal(
    payload: &[u8],
    signer: &SigningKey,
    response_key: &PublicJwk,
) -> Result<String, String> {
    let signed = Zeroizing::new(jws::sign(payload, signer).map_err(|e| e.to_string())?);
    jwe::encrypt(signed.as_bytes(), response_key, Algorithms::default()).map_err(|e| e.to_string())
}

/// A Yubico of its own, for whoever needs the whole fulfilment without a sandbox server:
/// fresh transport and signing keys and an attestation CA.
pub struct Yubico {
    keys: crate::keys::YubicoKeys,
    ca: AttestationCa,
}

impl std::fmt::Debug for Yubico {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Yubico").finish_non_exhaustive()
    }
}

// === impl Yubico ===

impl Yubico {
    /// New keys and CA.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            keys: crate::keys::YubicoKeys::generate(0)?,
            ca: AttestationCa::generate()?,
        })
    }

    /// The transport key a requester seals to.
    pub fn transport_key(&self) -> Option<&PublicJwk> {
        self.keys.transport.first().map(PrivateKey::public)
    }

    /// The published signing set a requester pins.
    pub fn signing_jwks(&self) -> Jwks {
        self.keys.signing_jwks()
    }

    /// The attestation CA's root certificate (DER), which an IdP trusts.
    pub fn attestation_root(&self) -> &[u8] {
        self.ca.root_der()
    }

    /// Fulfils one shipment's requests as a key of `product` with serial `serial`.
    pub fn fulfil(
        &self,
        product: &Product,
        cred_jwe: &str,
        pin_jwe: &str,
        serial: &str,
    ) -> Result<ProductData, String> {
        let req = open_requests(&self.keys.transport, cred_jwe, pin_jwe)?;
        let out = program(&self.ca, product, &req, serial)?;
        let signer = self.keys.signing.first().ok_or("no signing key")?;
        Ok(ProductData {
            serial_number: serial.to_owned(),
            firmware_version: product.firmware.into(),
            fido_pin_response: seal(&out.pin, signer, &req.response_key)?,
            fido_credential_responses: vec![seal(&out.credential, signer, &req.response_key)?],
        })
    }
}
