//! The floor: the CPU time the unavoidable cryptography of one shipment costs on this machine,
//! run single-threaded, so that an end-to-end time reads as a multiple of it.
//!
//! One shipment's unavoidable work, by whoever does it in life:
//! - the vault seals the two requests to Yubico (SealRequests: a P-384 response key, two
//!   JWEs);
//! - Yubico programs the key: opens both requests, makes the credential (a P-256 key and its
//!   packed attestation), signs and encrypts both responses;
//! - the vault opens both responses (two JWE decryptions, two ES384 verifications);
//! - the IdP verifies the registration (client data, authenticator data, the attestation's
//!   signature and its certificate chain).
//!
//! fpr's own cost (gRPC, the store, HTTP to the upstreams, JSON) is what the bench measures
//! against it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::{
    self, AttestationResponseJson, CredentialRequest, CredentialResponse, PinRequest, PinResponse,
    RegistrationResponseJson,
};
use fpr_jose::{Curve, PrivateKey, jws};
use fpr_softkey::AttestationCa;
use fpr_testkit::{Yubico, creation_options};
use fpr_webauthn::{AttestationPolicy, Expected};
use serde_json::json;

/// The parties' keys, made once.
pub struct Parties {
    yubico: Yubico,
    ca: AttestationCa,
    aaguid: [u8; 16],
}

impl Parties {
    /// New keys for every party.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            yubico: Yubico::new(),
            ca: AttestationCa::generate().context("attestation CA")?,
            aaguid: fpr_webauthn::parse_aaguid("ee882879-721c-4913-9775-3dfcce97072a")
                .context("AAGUID")?,
        })
    }

    /// One shipment's unavoidable cryptography, end to end; fails if any party refuses.
    pub fn one_shipment(&self, n: usize) -> anyhow::Result<()> {
        let user = format!("floor-{n}");
        let options = creation_options(&user);
        let pin = protocol::PinSpec {
            kind: "generate".into(),
            length: 8,
            force_change: false,
        };
        let transport = self.yubico.transport[0].public().clone();
        // The vault seals.
        let (key, cred_jwe, pin_jwe) =
            fpr_vault::service::seal_requests(&options, &pin, &transport, Algorithms::default())
                .context("seal")?;
        // Yubico programs the key.
        let cred_req: CredentialRequest =
            serde_json::from_slice(&self.yubico.open_request(&cred_jwe)?)?;
        let pin_req: PinRequest = serde_json::from_slice(&self.yubico.open_request(&pin_jwe)?)?;
        let cred = self
            .ca
            .make_credential(&cred_req.public_key, &self.aaguid, "YubiKey 5 NFC")
            .context("make credential")?;
        let id = fpr_webauthn::b64e(&cred.credential_id);
        let response = CredentialResponse {
            typ: protocol::CREDENTIAL_RESPONSE.into(),
            v: protocol::VERSION,
            request_id: cred_req.request_id.clone(),
            serial_number: "1".into(),
            firmware_version: "5.7.1".into(),
            credential: RegistrationResponseJson {
                id: id.clone(),
                raw_id: id,
                kind: "public-key".into(),
                authenticator_attachment: Some("cross-platform".into()),
                response: AttestationResponseJson {
                    client_data_json: fpr_webauthn::b64e(&cred.client_data_json),
                    attestation_object: fpr_webauthn::b64e(&cred.attestation_object),
                    transports: vec!["usb".into()],
                },
                client_extension_results: json!({}),
            },
        };
        let signer = &self.yubico.signing[0];
        let cred_resp = Yubico::respond(
            &serde_json::to_vec(&response)?,
            signer,
            &cred_req.response_key,
        );
        let digits = fpr_jose::util::random_digits(8)?;
        let pin_resp = PinResponse::new(pin_req.request_id.clone(), "1".into(), digits);
        let pin_resp = Yubico::respond(&pin_resp.to_json()?, signer, &pin_req.response_key);
        // The vault opens both responses.
        let key = PrivateKey::from_scalar(Curve::P384, key.kid(), &key.scalar()?)?;
        let signing = self.yubico.signing_jwks();
        let mut opened = Vec::with_capacity(2);
        for token in [&cred_resp, &pin_resp] {
            let inner = jwe::decrypt(token, &key)?;
            let v = jws::verify(std::str::from_utf8(&inner)?, &signing)?;
            opened.push(v.payload);
        }
        let back: CredentialResponse = serde_json::from_slice(&opened[0])?;
        let _: PinResponse = serde_json::from_slice(&opened[1])?;
        // The IdP verifies the registration.
        let client_data = fpr_webauthn::b64d_any(&back.credential.response.client_data_json)
            .context("clientDataJSON")?;
        let att = fpr_webauthn::b64d_any(&back.credential.response.attestation_object)
            .context("attestationObject")?;
        let challenge = options["challenge"].as_str().unwrap_or_default();
        let challenge = fpr_webauthn::b64e(&fpr_webauthn::b64d_any(challenge).unwrap_or_default());
        let origins = ["https://login.microsoft.com".to_owned()];
        fpr_webauthn::check_registration(
            &client_data,
            &att,
            &Expected {
                challenge: &challenge,
                rp_id: "login.microsoft.com",
                origins: &origins,
                require_uv: true,
            },
            &AttestationPolicy {
                enforce: true,
                trust_roots: vec![self.ca.root_der().to_vec()],
                allowed_aaguids: None,
            },
        )
        .context("the IdP's verification")?;
        Ok(())
    }
}

/// The floor of `n` shipments: `n` shipments' cryptography run one after the other on one
/// thread, divided by `cores`. Returns (floor, single-thread time).
pub fn measure(n: usize, cores: usize) -> anyhow::Result<(Duration, Duration)> {
    let parties = Parties::new()?;
    // Warm up (allocator, caches, CPU frequency) before the clock starts.
    for i in 0..n.min(50) {
        parties.one_shipment(i)?;
    }
    let start = Instant::now();
    for i in 0..n {
        parties.one_shipment(i)?;
    }
    let single = start.elapsed();
    Ok((single / cores.max(1) as u32, single))
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_shipment_passes_every_party() {
        let p = super::Parties::new().unwrap();
        p.one_shipment(0).unwrap();
    }
}
