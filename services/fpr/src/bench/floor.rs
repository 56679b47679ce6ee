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
use fpr_sandbox::yubico::Yubico;
use fpr_vault::service::{PinSpec, open_response, seal_requests};
use fpr_webauthn::{AttestationPolicy, Expected};

/// The parties' keys, made once.
pub struct Parties {
    yubico: Yubico,
    product: &'static fpr_domain::yubikey::Product,
}

impl Parties {
    /// New keys for every party.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            yubico: Yubico::new()?,
            product: fpr_domain::yubikey::product_by_id(29).context("product 29")?,
        })
    }

    /// One shipment's unavoidable cryptography, end to end; fails if any party refuses.
    pub fn one_shipment(&self, n: usize) -> anyhow::Result<()> {
        let user = format!("floor-{n}");
        let options = fpr_sandbox::public_key_options(
            "v1.0",
            &user,
            &user,
            &user,
            &n.to_be_bytes(),
            Vec::new(),
        );
        let pin = PinSpec {
            kind: "generate".into(),
            length: 8,
            force_change: false,
        };
        let transport = self.yubico.transport_key().context("transport key")?;
        // The vault seals.
        let (key, cred_jwe, pin_jwe) =
            seal_requests(&options, &pin, transport, Default::default()).context("seal")?;
        // Yubico programs the key.
        let data = self
            .yubico
            .fulfil(self.product, &cred_jwe, &pin_jwe, "1")
            .map_err(anyhow::Error::msg)?;
        // The vault opens both responses.
        let signing = self.yubico.signing_jwks();
        let cred = open_response(&data.fido_credential_responses[0], &key, &signing)?;
        open_response(&data.fido_pin_response, &key, &signing)?;
        let back: serde_json::Value = serde_json::from_slice(&cred.payload)?;
        // The IdP verifies the registration.
        let field = |name: &str| {
            back["credential"]["response"][name]
                .as_str()
                .and_then(fpr_webauthn::b64d_any)
                .with_context(|| name.to_owned())
        };
        let challenge = options["challenge"].as_str().unwrap_or_default();
        let challenge = fpr_webauthn::b64e(&fpr_webauthn::b64d_any(challenge).unwrap_or_default());
        let origins = ["https://login.microsoft.com".to_owned()];
        fpr_webauthn::check_registration(
            &field("clientDataJSON")?,
            &field("attestationObject")?,
            &Expected {
                challenge: &challenge,
                rp_id: "login.microsoft.com",
                origins: &origins,
                require_uv: true,
            },
            &AttestationPolicy {
                enforce: true,
                trust_roots: vec![self.yubico.attestation_root().to_vec()],
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
