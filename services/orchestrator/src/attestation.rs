//! Attestation before registration: the full WebAuthn §7.1 registration checks on a credential
//! Yubico programmed, before Entra ID holds it. The packed attestation's signature over the
//! authenticator data and client data, its certificate chain to a pinned trust anchor
//! (Yubico's published FIDO roots by default, each pinned by its SHA-256), the AAGUID allowed
//! for the ordered product, user presence and verification, the origin, and the credential id
//! in the authenticator data equal to the response's `id`. A credential that fails is never
//! registered.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use crate::Error;

/// Yubico's FIDO attestation roots as published (developers.yubico.com/PKI).
pub const YUBICO_ROOTS_PEM: &str = include_str!("../attestation/yubico-fido-roots.pem");

/// SHA-256 of each root in [`YUBICO_ROOTS_PEM`] (DER): Yubico U2F Root CA Serial 457200631,
/// Yubico FIDO Root CA Serial 450203556, Yubico Attestation Root 1.
pub const YUBICO_ROOT_SHA256: [&str; 3] = [
    "0fa1386f80eb8713263ae5c1d84deb455bdf08aea50ab05503cefee82b092d42",
    "35f1a54b353bfb711e6d42adbeb76c0e9dead095018e6a94783ba2192fd6faad",
    "62760c6a6ef91679f454c8902b80fd009825b3f25da90f1fbace2ec6586cd5a8",
];

/// `[attestation]` in the orchestrator's config.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationConfig {
    /// Trust Yubico's FIDO roots shipped with fpr (pinned by fingerprint in the code).
    #[serde(default = "yes")]
    pub builtin_yubico_roots: bool,
    /// More trust anchors: PEM files (each certificate must be pinned below).
    #[serde(default)]
    pub trust_anchor_files: Vec<PathBuf>,
    /// More trust anchors as PEM text (each certificate must be pinned below).
    #[serde(default)]
    pub trust_anchors_pem: Vec<String>,
    /// SHA-256 (hex, of the DER) of every configured trust anchor.
    #[serde(default)]
    pub pinned_root_sha256: Vec<String>,
    /// AAGUIDs allowed per YubiEnterprise product id (`"*"`: every product). A product with no
    /// entry (and no `"*"`) accepts any AAGUID whose certificate chains to a trusted root.
    #[serde(default)]
    pub allowed_aaguids: BTreeMap<String, Vec<String>>,
    /// Require the UV flag (the key was programmed with a PIN, so it always has it).
    #[serde(default = "yes")]
    pub require_user_verification: bool,
    /// Trust configured anchors without a pinned fingerprint (the sandbox's root, which is
    /// re-issued at each start). Warns at start; never for production.
    #[serde(default)]
    pub danger_unpinned_trust_anchors: bool,
}

fn yes() -> bool {
    true
}

impl Default for AttestationConfig {
    fn default() -> Self {
        Self {
            builtin_yubico_roots: true,
            trust_anchor_files: Vec::new(),
            trust_anchors_pem: Vec::new(),
            pinned_root_sha256: Vec::new(),
            allowed_aaguids: BTreeMap::new(),
            require_user_verification: true,
            danger_unpinned_trust_anchors: false,
        }
    }
}

/// The certificates (DER) in PEM text.
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after.find(END).ok_or("a certificate has no END line")?;
        let b64: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "a certificate is not base64".to_owned())?;
        out.push(der);
        rest = &after[end + END.len()..];
    }
    Ok(out)
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(der: &[u8]) -> String {
    fpr_webauthn::sha256(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The loaded rules: the attestation policy of each product with an AAGUID list, and of the
/// rest (`"*"`'s list, or any AAGUID).
#[derive(Debug, Clone)]
pub struct Policy {
    default: fpr_webauthn::AttestationPolicy,
    per_product: BTreeMap<String, fpr_webauthn::AttestationPolicy>,
    require_uv: bool,
}

/// Why a credential was refused: the check's name and what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// `client_data`, `origin`, `attestation_object`, `user_present`, `user_verified`,
    /// `credential_id`, `aaguid`, `format`, `signature`, `chain`.
    pub check: &'static str,
    /// What failed.
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} check failed: {}", self.check, self.message)
    }
}

fn refused(check: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        check,
        message: message.into(),
    }
}

impl Policy {
    /// Loads and pins the trust anchors; every error names the setting.
    pub fn load(c: &AttestationConfig) -> Result<Self, Error> {
        Self::load_from(c, true)
    }

    /// Checks the settings without reading `trust_anchor_files` (config validation: the files
    /// are read when the service starts, like secrets).
    pub fn check_config(c: &AttestationConfig) -> Result<(), Error> {
        Self::load_from(c, false).map(drop)
    }

    fn load_from(c: &AttestationConfig, read_files: bool) -> Result<Self, Error> {
        let bad = |key: &str, reason: String| Error::Config {
            key: format!("attestation.{key}"),
            reason,
        };
        let mut roots = Vec::new();
        if c.builtin_yubico_roots {
            let builtin = pem_certificates(YUBICO_ROOTS_PEM).map_err(|e| bad("builtin", e))?;
            for der in builtin {
                if !YUBICO_ROOT_SHA256.contains(&sha256_hex(&der).as_str()) {
                    return Err(bad(
                        "builtin",
                        "a shipped Yubico root does not match its pinned fingerprint".into(),
                    ));
                }
                roots.push(der);
            }
        }
        let pins: Vec<String> = c
            .pinned_root_sha256
            .iter()
            .map(|p| p.to_ascii_lowercase().replace(':', ""))
            .collect();
        let mut configured = Vec::new();
        for path in c.trust_anchor_files.iter().filter(|_| read_files) {
            let text = std::fs::read_to_string(path).map_err(|e| {
                bad(
                    "trust_anchor_files",
                    format!("{}: {}", path.display(), e.kind()),
                )
            })?;
            configured.extend(pem_certificates(&text).map_err(|e| bad("trust_anchor_files", e))?);
        }
        for text in &c.trust_anchors_pem {
            configured.extend(pem_certificates(text).map_err(|e| bad("trust_anchors_pem", e))?);
        }
        for der in configured {
            let fp = sha256_hex(&der);
            if !pins.contains(&fp) && !c.danger_unpinned_trust_anchors {
                return Err(bad(
                    "pinned_root_sha256",
                    format!("trust anchor sha256 {fp} is not pinned"),
                ));
            }
            roots.push(der);
        }
        if roots.is_empty() && (read_files || c.trust_anchor_files.is_empty()) {
            return Err(bad(
                "trust_anchor_files",
                "no trust anchor: keep builtin_yubico_roots or configure one".into(),
            ));
        }
        let policy = |allowed| fpr_webauthn::AttestationPolicy {
            enforce: true,
            trust_roots: roots.clone(),
            allowed_aaguids: allowed,
        };
        let mut default = policy(None);
        let mut per_product = BTreeMap::new();
        for (product, list) in &c.allowed_aaguids {
            let parsed = list
                .iter()
                .map(|a| fpr_webauthn::parse_aaguid(a))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    bad(
                        "allowed_aaguids",
                        format!("product {product}: an AAGUID is not 8-4-4-4-12 hex"),
                    )
                })?;
            if product == "*" {
                default = policy(Some(parsed));
            } else {
                per_product.insert(product.clone(), policy(Some(parsed)));
            }
        }
        Ok(Self {
            default,
            per_product,
            require_uv: c.require_user_verification,
        })
    }

    /// How many trust anchors are in force.
    pub fn anchors(&self) -> usize {
        self.default.trust_roots.len()
    }

    /// Runs every registration check on `cred` for a key of `product_id` created from
    /// creation options for `rp_id`.
    pub fn check(
        &self,
        rp_id: &str,
        product_id: Option<u64>,
        cred_id_b64: &str,
        client_data_b64: &str,
        attestation_object_b64: &str,
    ) -> Result<(), Refused> {
        let client_data = fpr_webauthn::b64d_any(client_data_b64)
            .ok_or_else(|| refused("client_data", "clientDataJSON is not base64url"))?;
        let cd = fpr_webauthn::ClientData::parse(&client_data)
            .map_err(|e| refused("client_data", e.to_string()))?;
        if cd.origin != format!("https://{rp_id}") {
            return Err(refused("origin", format!("origin is not https://{rp_id}")));
        }
        let att = fpr_webauthn::b64d_any(attestation_object_b64)
            .ok_or_else(|| refused("attestation_object", "not base64url"))?;
        let obj = fpr_webauthn::AttestationObject::parse(&att)
            .map_err(|e| refused("attestation_object", e.to_string()))?;
        let ad = &obj.auth_data;
        if !ad.user_present() {
            return Err(refused("user_present", "the UP flag is not set"));
        }
        if self.require_uv && !ad.user_verified() {
            return Err(refused("user_verified", "the UV flag is not set"));
        }
        let attested = ad
            .attested
            .as_ref()
            .ok_or_else(|| refused("attestation_object", "no attested credential data"))?;
        let id = fpr_webauthn::b64d_any(cred_id_b64)
            .ok_or_else(|| refused("credential_id", "id is not base64url"))?;
        if attested.credential_id != id {
            return Err(refused(
                "credential_id",
                "the credential id in the authenticator data differs from the response's id",
            ));
        }
        let policy = product_id
            .and_then(|p| self.per_product.get(&p.to_string()))
            .unwrap_or(&self.default);
        match fpr_webauthn::verify_packed(&obj, &fpr_webauthn::sha256(&client_data), policy) {
            Ok(v) if v.trusted => Ok(()),
            Ok(_) => Err(refused(
                "chain",
                "the attestation is not from a trusted root",
            )),
            Err(e) => {
                use fpr_webauthn::Error as W;
                let check = match &e {
                    W::AaguidNotAllowed(_) => "aaguid",
                    W::UnsupportedFormat(_) => "format",
                    W::BadAttestationSignature => "signature",
                    W::UntrustedChain(_) => "chain",
                    _ => "attestation_object",
                };
                Err(refused(check, e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn shipped_roots_match_their_pins_and_configured_roots_must_be_pinned() {
        let p = Policy::load(&AttestationConfig::default()).unwrap();
        assert_eq!(p.anchors(), 3);
        let ca = fpr_softkey::AttestationCa::generate().unwrap();
        let mut c = AttestationConfig {
            trust_anchors_pem: vec![ca.root_pem()],
            ..Default::default()
        };
        match Policy::load(&c) {
            Err(Error::Config { key, .. }) => assert_eq!(key, "attestation.pinned_root_sha256"),
            other => panic!("{other:?}"),
        }
        c.pinned_root_sha256 = vec![sha256_hex(ca.root_der())];
        assert_eq!(Policy::load(&c).unwrap().anchors(), 4);
        c.builtin_yubico_roots = false;
        c.trust_anchors_pem.clear();
        assert!(Policy::load(&c).is_err(), "no anchor at all");
    }
}
