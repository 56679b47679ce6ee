//! Packed attestation (WebAuthn §8.2): signature, certificate requirements, chain, AAGUID.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use ciborium::Value;
use x509_parser::prelude::*;

use crate::{AAGUID_EXTENSION_OID, AttestationObject, Error, aaguid_string};

/// What an IdP requires of attestation.
#[derive(Debug, Clone, Default)]
pub struct AttestationPolicy {
    /// Require a chain to one of `trust_roots` (Entra's "enforce attestation").
    pub enforce: bool,
    /// Trusted root certificates, DER.
    pub trust_roots: Vec<Vec<u8>>,
    /// When set, only these AAGUIDs are accepted (key restrictions).
    pub allowed_aaguids: Option<Vec<[u8; 16]>>,
}

/// The attestation result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `packed` or `none`.
    pub fmt: String,
    /// True when the certificate chain led to a trusted root.
    pub trusted: bool,
}

const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

fn spki_alg(
    spki: &SubjectPublicKeyInfo<'_>,
    sig_oid: &str,
) -> Option<&'static dyn VerificationAlgorithm> {
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    match (sig_oid, curve.as_deref()) {
        (OID_ECDSA_SHA256, Some(OID_P256)) => Some(&signature::ECDSA_P256_SHA256_ASN1),
        (OID_ECDSA_SHA256, Some(OID_P384)) => Some(&signature::ECDSA_P384_SHA256_ASN1),
        (OID_ECDSA_SHA384, Some(OID_P256)) => Some(&signature::ECDSA_P256_SHA384_ASN1),
        (OID_ECDSA_SHA384, Some(OID_P384)) => Some(&signature::ECDSA_P384_SHA384_ASN1),
        (OID_RSA_SHA256, _) => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
        _ => None,
    }
}

/// Verifies that `cert` was signed by `issuer`'s key.
fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let Some(alg) = spki_alg(issuer.public_key(), &oid) else {
        return false;
    };
    UnparsedPublicKey::new(alg, &issuer.public_key().subject_public_key.data)
        .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
        .is_ok()
}

fn int(v: &Value) -> Option<i64> {
    v.as_integer().and_then(|i| i64::try_from(i).ok())
}

/// Verifies a packed (or, when not enforced, `none`) attestation over `client_data_hash`.
pub fn verify_packed(
    obj: &AttestationObject,
    client_data_hash: &[u8; 32],
    policy: &AttestationPolicy,
) -> Result<Verified, Error> {
    let cred = obj
        .auth_data
        .attested
        .as_ref()
        .ok_or(Error::NoAttestedCredential)?;
    if let Some(allowed) = &policy.allowed_aaguids
        && !allowed.contains(&cred.aaguid)
    {
        return Err(Error::AaguidNotAllowed(aaguid_string(&cred.aaguid)));
    }
    match obj.fmt.as_str() {
        "packed" => {}
        "none" if !policy.enforce => {
            return Ok(Verified {
                fmt: "none".into(),
                trusted: false,
            });
        }
        other => return Err(Error::UnsupportedFormat(other.chars().take(32).collect())),
    }
    let alg = obj
        .stmt("alg")
        .and_then(int)
        .ok_or(Error::MalformedAttestation("attStmt.alg missing"))?;
    let sig = obj
        .stmt("sig")
        .and_then(Value::as_bytes)
        .ok_or(Error::MalformedAttestation("attStmt.sig missing"))?;
    let mut signed = obj.auth_data.raw.clone();
    signed.extend_from_slice(client_data_hash);

    let Some(x5c) = obj.stmt("x5c") else {
        // Self attestation: signed by the credential key itself; never trusted.
        if policy.enforce {
            return Err(Error::UntrustedChain("self attestation has no certificate"));
        }
        if alg != cred.public_key.alg || alg != -7 {
            return Err(Error::BadAttestationSignature);
        }
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &cred.public_key.point)
            .verify(&signed, sig)
            .map_err(|_| Error::BadAttestationSignature)?;
        return Ok(Verified {
            fmt: "packed".into(),
            trusted: false,
        });
    };
    let ders: Vec<&[u8]> = x5c
        .as_array()
        .ok_or(Error::MalformedAttestation("x5c is not an array"))?
        .iter()
        .map(|v| {
            v.as_bytes()
                .map(Vec::as_slice)
                .ok_or(Error::MalformedAttestation("x5c entry is not bytes"))
        })
        .collect::<Result<_, _>>()?;
    if ders.is_empty() || ders.len() > 5 {
        return Err(Error::MalformedAttestation("x5c needs 1 to 5 certificates"));
    }
    let certs: Vec<X509Certificate<'_>> = ders
        .iter()
        .map(|d| {
            X509Certificate::from_der(d)
                .map(|(_, c)| c)
                .map_err(|_| Error::BadCertificate("not DER X.509"))
        })
        .collect::<Result<_, _>>()?;
    let leaf = &certs[0];

    // The signature, with the leaf's key.
    let sig_alg: &'static dyn VerificationAlgorithm = match alg {
        -7 => &signature::ECDSA_P256_SHA256_ASN1,
        -35 => &signature::ECDSA_P384_SHA384_ASN1,
        -257 => &signature::RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(Error::MalformedAttestation("attStmt.alg unsupported")),
    };
    UnparsedPublicKey::new(sig_alg, &leaf.public_key().subject_public_key.data)
        .verify(&signed, sig)
        .map_err(|_| Error::BadAttestationSignature)?;

    // Leaf requirements of §8.2.1.
    if leaf.version() != X509Version::V3 {
        return Err(Error::BadCertificate("version must be 3"));
    }
    let subject = leaf.subject();
    let ou_ok = subject
        .iter_organizational_unit()
        .any(|ou| ou.as_str() == Ok("Authenticator Attestation"));
    let has = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue<'_>>| it.next().is_some();
    if !ou_ok
        || !has(&mut subject.iter_country())
        || !has(&mut subject.iter_organization())
        || !has(&mut subject.iter_common_name())
    {
        return Err(Error::BadCertificate(
            "subject needs C, O, OU=Authenticator Attestation and CN",
        ));
    }
    if leaf
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca)
    {
        return Err(Error::BadCertificate("basic constraints must say CA:false"));
    }
    for ext in leaf.extensions() {
        if ext.oid.to_id_string() == AAGUID_EXTENSION_OID {
            if ext.critical {
                return Err(Error::BadCertificate(
                    "AAGUID extension must not be critical",
                ));
            }
            // The extension value is an OCTET STRING holding the 16 AAGUID bytes.
            let inner = ext.value;
            let aaguid = if inner.len() == 18 && inner[0] == 0x04 && inner[1] == 16 {
                &inner[2..]
            } else {
                inner
            };
            if aaguid != cred.aaguid {
                return Err(Error::AaguidMismatch);
            }
        }
    }

    let trusted = chain_trusted(&certs, &policy.trust_roots);
    if policy.enforce {
        trusted?;
        Ok(Verified {
            fmt: "packed".into(),
            trusted: true,
        })
    } else {
        Ok(Verified {
            fmt: "packed".into(),
            trusted: trusted.is_ok(),
        })
    }
}

fn chain_trusted(certs: &[X509Certificate<'_>], roots: &[Vec<u8>]) -> Result<(), Error> {
    let now = ASN1Time::now();
    for c in certs {
        if !c.validity().is_valid_at(now) {
            return Err(Error::UntrustedChain(
                "a certificate is outside its validity period",
            ));
        }
    }
    for pair in certs.windows(2) {
        if !signed_by(&pair[0], &pair[1]) {
            return Err(Error::UntrustedChain(
                "a certificate is not signed by the next one in x5c",
            ));
        }
    }
    let Some(last) = certs.last() else {
        return Err(Error::UntrustedChain("empty chain"));
    };
    for root in roots {
        if let Ok((_, r)) = X509Certificate::from_der(root)
            && r.validity().is_valid_at(now)
            && r.subject() == last.issuer()
            && signed_by(last, &r)
        {
            return Ok(());
        }
    }
    Err(Error::UntrustedChain("no trusted root signed the chain"))
}
