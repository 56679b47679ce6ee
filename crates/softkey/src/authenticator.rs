//! A software authenticator for the sandbox: an attestation CA (root and per-model attestation
//! certificates carrying the AAGUID extension) and packed-attestation credential creation.
//!
//! NO SECURITY: these keys are the sandbox's own; nothing real trusts them.

use std::collections::HashMap;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};

use crate::build;
use fpr_webauthn::{flags, sha256};

/// Errors of the software authenticator.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticatorError {
    /// Certificate or key generation or parsing failed.
    #[error("attestation CA: {0}")]
    Ca(String),
    /// The creation options ask for something this authenticator cannot do.
    #[error("unsupported creation options: {0}")]
    Unsupported(&'static str),
}

fn ca_err(e: impl std::fmt::Display) -> AuthenticatorError {
    AuthenticatorError::Ca(e.to_string())
}

struct Attestation {
    der: Vec<u8>,
    key: EcdsaKeyPair,
}

/// A root CA and one attestation certificate per AAGUID, made on demand.
pub struct AttestationCa {
    root_params: CertificateParams,
    root_key_pem: String,
    root_der: Vec<u8>,
    leaves: std::sync::Mutex<HashMap<[u8; 16], std::sync::Arc<Attestation>>>,
}

impl std::fmt::Debug for AttestationCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestationCa").finish_non_exhaustive()
    }
}

fn root_params() -> Result<CertificateParams, AuthenticatorError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(ca_err)?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "fpr sandbox");
    p.distinguished_name
        .push(DnType::CommonName, "fpr Sandbox FIDO Root CA");
    p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    Ok(p)
}

// === impl AttestationCa ===

impl AttestationCa {
    /// A new root CA.
    pub fn generate() -> Result<Self, AuthenticatorError> {
        let key = KeyPair::generate().map_err(ca_err)?;
        Self::from_key_pem(&key.serialize_pem())
    }

    /// Rebuilds the root from its private key PEM (as kept in the sandbox's data dir). The
    /// certificate is re-issued with the same key and name, so chains from older attestation
    /// certificates still verify.
    pub fn from_key_pem(pem: &str) -> Result<Self, AuthenticatorError> {
        let key = KeyPair::from_pem(pem).map_err(ca_err)?;
        let params = root_params()?;
        let cert = params.clone().self_signed(&key).map_err(ca_err)?;
        Ok(Self {
            root_params: params,
            root_key_pem: pem.to_owned(),
            root_der: cert.der().to_vec(),
            leaves: Default::default(),
        })
    }

    /// The root's private key PEM. Secret (sandbox data only).
    pub fn key_pem(&self) -> &str {
        &self.root_key_pem
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> String {
        let b64 =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &self.root_der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    fn leaf(
        &self,
        aaguid: &[u8; 16],
        model: &str,
    ) -> Result<std::sync::Arc<Attestation>, AuthenticatorError> {
        let mut leaves = self
            .leaves
            .lock()
            .map_err(|_| AuthenticatorError::Ca("lock poisoned".into()))?;
        if let Some(a) = leaves.get(aaguid) {
            return Ok(a.clone());
        }
        let root_key = KeyPair::from_pem(&self.root_key_pem).map_err(ca_err)?;
        let issuer = Issuer::new(self.root_params.clone(), root_key);
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(ca_err)?;
        let leaf_key = KeyPair::try_from(pkcs8.as_ref()).map_err(ca_err)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(ca_err)?;
        p.is_ca = IsCa::ExplicitNoCa;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "SE");
        p.distinguished_name
            .push(DnType::OrganizationName, "fpr sandbox");
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, "Authenticator Attestation");
        p.distinguished_name.push(
            DnType::CommonName,
            format!("fpr Sandbox {model} attestation"),
        );
        p.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3000);
        let mut value = vec![0x04, 16];
        value.extend_from_slice(aaguid);
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4],
            value,
        ));
        let cert = p.signed_by(&leaf_key, &issuer).map_err(ca_err)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .map_err(ca_err)?;
        let a = std::sync::Arc::new(Attestation {
            der: cert.der().to_vec(),
            key,
        });
        leaves.insert(*aaguid, a.clone());
        Ok(a)
    }

    /// Makes a credential for `options` (PublicKeyCredentialCreationOptions JSON) the way a
    /// security key of model `aaguid` would: a new P-256 key, authenticator data with UP|UV|AT
    /// (and ED with credProtect when asked), sign count 0, clientDataJSON with origin
    /// `https://<rp.id>`, and a packed attestation signed by the model's attestation key.
    pub fn make_credential(
        &self,
        options: &serde_json::Value,
        aaguid: &[u8; 16],
        model: &str,
    ) -> Result<Credential, AuthenticatorError> {
        let rp_id = options
            .pointer("/rp/id")
            .and_then(|v| v.as_str())
            .ok_or(AuthenticatorError::Unsupported("rp.id missing"))?;
        let challenge = options
            .get("challenge")
            .and_then(|v| v.as_str())
            .ok_or(AuthenticatorError::Unsupported("challenge missing"))?;
        let es256 = options
            .get("pubKeyCredParams")
            .and_then(|v| v.as_array())
            .is_some_and(|a| {
                a.iter()
                    .any(|p| p.get("alg").and_then(|a| a.as_i64()) == Some(-7))
            });
        if !es256 {
            return Err(AuthenticatorError::Unsupported(
                "pubKeyCredParams does not allow ES256 (-7)",
            ));
        }
        // The challenge goes into clientDataJSON as unpadded base64url of its bytes, whatever
        // encoding the IdP used (Graph mixes three).
        let challenge_bytes = fpr_webauthn::b64d_any(challenge)
            .ok_or(AuthenticatorError::Unsupported("challenge is not base64"))?;
        let client_data = format!(
            r#"{{"type":"webauthn.create","challenge":"{}","origin":"https://{}","crossOrigin":false}}"#,
            fpr_webauthn::b64e(&challenge_bytes),
            rp_id
        );
        let rng = SystemRandom::new();
        let cred_key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).map_err(ca_err)?;
        let mut cred_id = [0u8; 32];
        aws_lc_rs::rand::fill(&mut cred_id).map_err(ca_err)?;
        let cose = build::cose_es256(cred_key.public_key().as_ref());
        let wants_cred_protect = options
            .pointer("/extensions/credentialProtectionPolicy")
            .is_some()
            || options.pointer("/extensions/credProtect").is_some()
            || options
                .pointer("/extensions/enforceCredentialProtectionPolicy")
                .is_some();
        let ext = wants_cred_protect.then(|| build::cred_protect_extension(1));
        let auth_data = build::authenticator_data(
            &sha256(rp_id.as_bytes()),
            flags::UP | flags::UV,
            0,
            Some((aaguid, &cred_id, &cose)),
            ext.as_deref(),
        );
        let leaf = self.leaf(aaguid, model)?;
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(client_data.as_bytes()));
        let sig = leaf.key.sign(&rng, &signed).map_err(ca_err)?;
        let attestation_object = build::packed_attestation_object(
            &auth_data,
            -7,
            sig.as_ref(),
            std::slice::from_ref(&leaf.der),
        );
        Ok(Credential {
            credential_id: cred_id.to_vec(),
            client_data_json: client_data.into_bytes(),
            attestation_object,
            cred_protect: wants_cred_protect,
        })
    }
}

/// A created credential (public parts; the credential private key is discarded, as it would
/// stay inside a real key).
#[derive(Debug, Clone)]
pub struct Credential {
    /// Credential id.
    pub credential_id: Vec<u8>,
    /// clientDataJSON bytes.
    pub client_data_json: Vec<u8>,
    /// attestationObject bytes.
    pub attestation_object: Vec<u8>,
    /// Whether a credProtect extension output was included.
    pub cred_protect: bool,
}
