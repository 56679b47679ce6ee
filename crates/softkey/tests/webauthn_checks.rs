//! fpr-webauthn's checks against credentials this crate builds: every check refuses what it
//! should, and the software key's attestations verify.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair,
};

use fpr_softkey::{authenticator, build};
use fpr_webauthn::*;

const AAGUID: [u8; 16] = [
    0xa2, 0x53, 0x42, 0xc0, 0x3c, 0xdc, 0x44, 0x14, 0x8e, 0x46, 0xf4, 0x80, 0x7f, 0xca, 0x51, 0x1c,
];

struct Fixture {
    root_der: Vec<u8>,
    leaf_der: Vec<u8>,
    leaf_key: EcdsaKeyPair,
}

fn fixture(ou: &str, ext_aaguid: [u8; 16]) -> Fixture {
    let root_key = KeyPair::generate().unwrap();
    let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.distinguished_name = DistinguishedName::new();
    root.distinguished_name
        .push(DnType::CommonName, "Test Root");
    let root_cert = root.self_signed(&root_key).unwrap();
    let issuer = Issuer::new(root, root_key);
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
        .unwrap();
    let leaf_rc = KeyPair::try_from(pkcs8.as_ref()).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name.push(DnType::CountryName, "SE");
    leaf.distinguished_name
        .push(DnType::OrganizationName, "Test");
    leaf.distinguished_name
        .push(DnType::OrganizationalUnitName, ou);
    leaf.distinguished_name
        .push(DnType::CommonName, "Test Attestation");
    let mut value = vec![0x04, 16];
    value.extend_from_slice(&ext_aaguid);
    leaf.custom_extensions
        .push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 45724, 1, 1, 4],
            value,
        ));
    let leaf_cert = leaf.signed_by(&leaf_rc, &issuer).unwrap();
    let leaf_key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    Fixture {
        root_der: root_cert.der().to_vec(),
        leaf_der: leaf_cert.der().to_vec(),
        leaf_key,
    }
}

/// Builds client data and a packed attestation object as an authenticator would.
fn register(fx: &Fixture, rp_id: &str, challenge: &str, flag_bits: u8) -> (Vec<u8>, Vec<u8>) {
    let client = serde_json::json!({"type": "webauthn.create", "challenge": challenge, "origin": format!("https://{rp_id}"), "crossOrigin": false});
    let client = client.to_string().into_bytes();
    let cred = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
    let cose = build::cose_es256(cred.public_key().as_ref());
    let ad = build::authenticator_data(
        &sha256(rp_id.as_bytes()),
        flag_bits,
        0,
        Some((&AAGUID, b"credential-id-1", &cose)),
        None,
    );
    let mut signed = ad.clone();
    signed.extend_from_slice(&sha256(&client));
    let sig = fx.leaf_key.sign(&SystemRandom::new(), &signed).unwrap();
    let obj =
        build::packed_attestation_object(&ad, -7, sig.as_ref(), std::slice::from_ref(&fx.leaf_der));
    (client, obj)
}

fn expected<'a>(origins: &'a [String]) -> Expected<'a> {
    Expected {
        challenge: "Y2hhbGxlbmdl",
        rp_id: "login.microsoft.com",
        origins,
        require_uv: true,
    }
}

#[test]
fn packed_attestation_chains_to_the_root() {
    let fx = fixture("Authenticator Attestation", AAGUID);
    let (client, obj) = register(
        &fx,
        "login.microsoft.com",
        "Y2hhbGxlbmdl",
        flags::UP | flags::UV,
    );
    let origins = vec!["https://login.microsoft.com".to_owned()];
    let policy = AttestationPolicy {
        enforce: true,
        trust_roots: vec![fx.root_der.clone()],
        allowed_aaguids: Some(vec![AAGUID]),
    };
    let reg = check_registration(&client, &obj, &expected(&origins), &policy).unwrap();
    assert_eq!(reg.aaguid, AAGUID);
    assert_eq!(reg.credential_id, b"credential-id-1");
    assert!(reg.attestation.trusted);
    assert_eq!(
        aaguid_string(&reg.aaguid),
        "a25342c0-3cdc-4414-8e46-f4807fca511c"
    );
    assert_eq!(
        parse_aaguid("a25342c0-3cdc-4414-8e46-f4807fca511c"),
        Some(AAGUID)
    );
}

#[test]
fn each_check_refuses() {
    let fx = fixture("Authenticator Attestation", AAGUID);
    let origins = vec!["https://login.microsoft.com".to_owned()];
    let trusted = AttestationPolicy {
        enforce: true,
        trust_roots: vec![fx.root_der.clone()],
        allowed_aaguids: None,
    };
    let check = |client: &[u8], obj: &[u8], policy: &AttestationPolicy| {
        check_registration(client, obj, &expected(&origins), policy)
    };

    let (client, obj) = register(&fx, "login.microsoft.com", "other", flags::UP | flags::UV);
    assert_eq!(
        check(&client, &obj, &trusted).unwrap_err(),
        Error::ChallengeMismatch
    );
    let (client, obj) = register(&fx, "evil.example", "Y2hhbGxlbmdl", flags::UP | flags::UV);
    assert!(matches!(
        check(&client, &obj, &trusted).unwrap_err(),
        Error::OriginMismatch(_)
    ));
    let (client, obj) = register(&fx, "login.microsoft.com", "Y2hhbGxlbmdl", flags::UP);
    assert_eq!(
        check(&client, &obj, &trusted).unwrap_err(),
        Error::UserNotVerified
    );
    let (client, obj) = register(&fx, "login.microsoft.com", "Y2hhbGxlbmdl", flags::UV);
    assert_eq!(
        check(&client, &obj, &trusted).unwrap_err(),
        Error::UserNotPresent
    );

    let (client, mut obj) = register(
        &fx,
        "login.microsoft.com",
        "Y2hhbGxlbmdl",
        flags::UP | flags::UV,
    );
    let other_client = client
        .clone()
        .into_iter()
        .map(|b| if b == b'{' { b'{' } else { b })
        .collect::<Vec<u8>>();
    assert!(check(&other_client, &obj, &trusted).is_ok());
    // Tamper with the signature (last bytes of the object are inside authData; the sig sits before it).
    let n = obj.len();
    obj[n - 40] ^= 1;
    assert!(check(&client, &obj, &trusted).is_err());

    let stranger = fixture("Authenticator Attestation", AAGUID);
    let untrusted = AttestationPolicy {
        enforce: true,
        trust_roots: vec![stranger.root_der.clone()],
        allowed_aaguids: None,
    };
    let (client, obj) = register(
        &fx,
        "login.microsoft.com",
        "Y2hhbGxlbmdl",
        flags::UP | flags::UV,
    );
    assert!(matches!(
        check(&client, &obj, &untrusted).unwrap_err(),
        Error::UntrustedChain(_)
    ));
    let lenient = AttestationPolicy {
        enforce: false,
        ..untrusted
    };
    assert!(!check(&client, &obj, &lenient).unwrap().attestation.trusted);

    let restricted = AttestationPolicy {
        allowed_aaguids: Some(vec![[0u8; 16]]),
        ..trusted.clone()
    };
    assert!(matches!(
        check(&client, &obj, &restricted).unwrap_err(),
        Error::AaguidNotAllowed(_)
    ));

    let wrong_ext = fixture("Authenticator Attestation", [7u8; 16]);
    let policy = AttestationPolicy {
        enforce: true,
        trust_roots: vec![wrong_ext.root_der.clone()],
        allowed_aaguids: None,
    };
    let (client, obj) = register(
        &wrong_ext,
        "login.microsoft.com",
        "Y2hhbGxlbmdl",
        flags::UP | flags::UV,
    );
    assert_eq!(
        check(&client, &obj, &policy).unwrap_err(),
        Error::AaguidMismatch
    );

    let bad_ou = fixture("Engineering", AAGUID);
    let policy = AttestationPolicy {
        enforce: true,
        trust_roots: vec![bad_ou.root_der.clone()],
        allowed_aaguids: None,
    };
    let (client, obj) = register(
        &bad_ou,
        "login.microsoft.com",
        "Y2hhbGxlbmdl",
        flags::UP | flags::UV,
    );
    assert!(matches!(
        check(&client, &obj, &policy).unwrap_err(),
        Error::BadCertificate(_)
    ));
}

#[test]
fn malformed_inputs_are_errors_not_panics() {
    let origins = vec!["https://x".to_owned()];
    let e = expected(&origins);
    let p = AttestationPolicy::default();
    assert!(check_registration(b"not json", b"", &e, &p).is_err());
    for junk in [&b""[..], b"\xa0", b"\xa1\x63fmt\x66packed", &[0xffu8; 64]] {
        assert!(AttestationObject::parse(junk).is_err());
        assert!(AuthenticatorData::parse(junk).is_err());
    }
}

#[test]
fn software_authenticator_makes_trusted_packed_attestations() {
    let ca = authenticator::AttestationCa::generate().unwrap();
    let options = serde_json::json!({
        "challenge": "TZ2KrDEawbrIGQsnheGZ/BG9Nfnb7blSGwQYMGyJIhM=",
        "rp": {"id": "login.microsoft.com"},
        "user": {"id": "dXNlcg", "name": "u"},
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        "extensions": {"credentialProtectionPolicy": "userVerificationOptional"}
    });
    let cred = ca
        .make_credential(&options, &AAGUID, "YubiKey 5 NFC")
        .unwrap();
    let origins = vec!["https://login.microsoft.com".to_owned()];
    // The standard-base64 challenge is re-encoded as unpadded base64url in clientDataJSON.
    let challenge = b64e(&b64d_any("TZ2KrDEawbrIGQsnheGZ/BG9Nfnb7blSGwQYMGyJIhM=").unwrap());
    let e = Expected {
        challenge: &challenge,
        rp_id: "login.microsoft.com",
        origins: &origins,
        require_uv: true,
    };
    let policy = AttestationPolicy {
        enforce: true,
        trust_roots: vec![ca.root_der().to_vec()],
        allowed_aaguids: Some(vec![AAGUID]),
    };
    let reg = check_registration(
        &cred.client_data_json,
        &cred.attestation_object,
        &e,
        &policy,
    )
    .unwrap();
    assert!(reg.attestation.trusted);
    assert_eq!(reg.credential_id, cred.credential_id);
    let obj = AttestationObject::parse(&cred.attestation_object).unwrap();
    assert!(obj.auth_data.extensions.is_some() && obj.auth_data.flags & flags::ED != 0);
    // The same root, rebuilt from its key, still anchors the chain.
    let again = authenticator::AttestationCa::from_key_pem(ca.key_pem()).unwrap();
    let policy = AttestationPolicy {
        enforce: true,
        trust_roots: vec![again.root_der().to_vec()],
        allowed_aaguids: None,
    };
    assert!(
        check_registration(
            &cred.client_data_json,
            &cred.attestation_object,
            &e,
            &policy
        )
        .is_ok()
    );
}
