use proptest::prelude::*;
use serde_json::{Value, json};

use crate::jwe::{Algorithms, ContentEncryption, KeyManagement};
use crate::seal::MasterKey;
use crate::util::{b64d, b64e, random_digits};
use crate::*;

fn vector(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn p384(kid: &str) -> PrivateKey {
    PrivateKey::generate(Curve::P384, kid).unwrap()
}

/// A valid token to tamper with.
fn token(key: &PrivateKey) -> String {
    jwe::encrypt(
        b"{\"hello\":\"world\"}",
        key.public(),
        Algorithms::default(),
    )
    .unwrap()
}

/// Replaces the protected header of a compact token.
fn with_header(token: &str, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut h: Value = serde_json::from_slice(&b64d(&parts[0]).unwrap()).unwrap();
    f(h.as_object_mut().unwrap());
    parts[0] = b64e(h.to_string().as_bytes());
    parts.join(".")
}

#[test]
fn rfc7520_5_4_ecdh_es_a128kw_a128gcm_p384() {
    let v = vector("rfc7520-5.4.json");
    let key = PrivateKey::from_private_jwk(&v["key"].to_string()).unwrap();
    let plain = jwe::decrypt(v["compact"].as_str().unwrap(), &key).unwrap();
    assert_eq!(
        std::str::from_utf8(&plain).unwrap(),
        v["plaintext"].as_str().unwrap()
    );
}

#[test]
fn rfc7520_5_5_ecdh_es_a128cbc_hs256_p256() {
    let v = vector("rfc7520-5.5.json");
    let key = PrivateKey::from_private_jwk(&v["key"].to_string()).unwrap();
    let plain = jwe::decrypt(v["compact"].as_str().unwrap(), &key).unwrap();
    assert_eq!(
        std::str::from_utf8(&plain).unwrap(),
        v["plaintext"].as_str().unwrap()
    );
}

#[test]
fn rfc7520_4_3_es512_verifies() {
    let v = vector("rfc7520-4.3.json");
    let set = Jwks::try_new(vec![PublicJwk::from_json(&v["key"]).unwrap()]).unwrap();
    let verified = jws::verify(v["compact"].as_str().unwrap(), &set).unwrap();
    assert_eq!(
        std::str::from_utf8(&verified.payload).unwrap(),
        v["payload"].as_str().unwrap()
    );
    assert_eq!(verified.kid, "bilbo.baggins@hobbiton.example");
}

#[test]
fn round_trip_every_alg_and_enc_on_p384() {
    let key = p384("resp-1");
    for alg in KeyManagement::ALL {
        for enc in ContentEncryption::ALL {
            let t = jwe::encrypt(b"payload", key.public(), Algorithms { alg, enc }).unwrap();
            let info = jwe::inspect(&t).unwrap();
            assert_eq!(
                (info.alg, info.enc, info.kid.as_str()),
                (alg, enc, "resp-1")
            );
            let header: Value =
                serde_json::from_slice(&b64d(t.split('.').next().unwrap()).unwrap()).unwrap();
            assert_eq!(header["cty"], "JSON");
            assert_eq!(&*jwe::decrypt(&t, &key).unwrap(), b"payload", "{alg} {enc}");
        }
    }
}

#[test]
fn sign_and_verify_on_every_curve() {
    for curve in [Curve::P256, Curve::P384, Curve::P521] {
        let k = SigningKey::generate(curve, "s").unwrap();
        let set = Jwks::try_new(vec![k.public().clone()]).unwrap();
        let t = jws::sign(b"data", &k).unwrap();
        let header: Value =
            serde_json::from_slice(&b64d(t.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], curve.jws_alg());
        assert_eq!(&*jws::verify(&t, &set).unwrap().payload, b"data");
    }
}

#[test]
fn private_jwk_round_trip() {
    let k = p384("k1");
    let again = PrivateKey::from_private_jwk(&k.to_private_jwk().unwrap()).unwrap();
    assert_eq!(again.public(), k.public());
    let s = SigningKey::generate(Curve::P384, "s1").unwrap();
    let again = SigningKey::from_private_jwk(&s.to_private_jwk().unwrap()).unwrap();
    assert_eq!(again.public(), s.public());
    assert!(!format!("{k:?}{s:?}").contains(&b64e(&k.scalar().unwrap())));
}

#[test]
fn refuses_alg_none_rsa_pbes2_dir() {
    let key = p384("k");
    let t = token(&key);
    for alg in [
        "none",
        "RSA1_5",
        "RSA-OAEP",
        "PBES2-HS256+A128KW",
        "dir",
        "A128KW",
    ] {
        let bad = with_header(&t, |h| {
            h.insert("alg".into(), alg.into());
        });
        match jwe::decrypt(&bad, &key) {
            Err(Error::ForbiddenAlgorithm {
                header: "alg",
                value,
            }) => assert_eq!(value, alg),
            other => panic!("{alg}: {other:?}"),
        }
    }
    let bad = with_header(&t, |h| {
        h.insert("enc".into(), "A128CTR".into());
    });
    assert!(matches!(
        jwe::decrypt(&bad, &key),
        Err(Error::ForbiddenAlgorithm { header: "enc", .. })
    ));
}

#[test]
fn refuses_zip_and_key_naming_headers() {
    let key = p384("k");
    let t = token(&key);
    for name in ["zip", "jwk", "jku", "x5u", "x5c", "crit"] {
        let bad = with_header(&t, |h| {
            h.insert(name.into(), json!("x"));
        });
        match jwe::decrypt(&bad, &key) {
            Err(Error::ForbiddenHeader(n)) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn refuses_off_curve_and_wrong_curve_epk() {
    let key = p384("k");
    let t = token(&key);
    let off = with_header(&t, |h| {
        let x = h["epk"]["x"].as_str().unwrap().to_owned();
        let mut raw = b64d(&x).unwrap();
        raw[47] ^= 1;
        h.get_mut("epk").unwrap()["x"] = b64e(&raw).into();
    });
    assert!(matches!(
        jwe::decrypt(&off, &key),
        Err(Error::InvalidEphemeralKey(_))
    ));
    let other = PrivateKey::generate(Curve::P256, "e")
        .unwrap()
        .public()
        .to_json();
    let wrong = with_header(&t, |h| {
        h.insert(
            "epk".into(),
            json!({"kty": "EC", "crv": "P-256", "x": other["x"], "y": other["y"]}),
        );
    });
    assert!(matches!(
        jwe::decrypt(&wrong, &key),
        Err(Error::InvalidEphemeralKey(_))
    ));
    let missing = with_header(&t, |h| {
        h.remove("epk");
    });
    assert!(matches!(
        jwe::decrypt(&missing, &key),
        Err(Error::InvalidEphemeralKey(_))
    ));
}

#[test]
fn refuses_unknown_kid() {
    let key = p384("mine");
    let t = jwe::encrypt(b"x", p384("theirs").public(), Algorithms::default()).unwrap();
    assert!(matches!(
        jwe::decrypt(&t, &key),
        Err(Error::KidMismatch { .. })
    ));
    let signer = SigningKey::generate(Curve::P384, "unpinned").unwrap();
    let pinned = Jwks::try_new(vec![
        SigningKey::generate(Curve::P384, "pinned")
            .unwrap()
            .public()
            .clone(),
    ])
    .unwrap();
    let s = jws::sign(b"x", &signer).unwrap();
    assert!(matches!(jws::verify(&s, &pinned), Err(Error::UnknownKid(k)) if k == "unpinned"));
}

#[test]
fn jws_by_an_impostor_with_a_pinned_kid_is_a_bad_signature() {
    let real = SigningKey::generate(Curve::P384, "yubico").unwrap();
    let impostor = SigningKey::generate(Curve::P384, "yubico").unwrap();
    let pinned = Jwks::try_new(vec![real.public().clone()]).unwrap();
    let s = jws::sign(b"x", &impostor).unwrap();
    assert!(matches!(
        jws::verify(&s, &pinned),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn refuses_jws_alg_outside_the_profile() {
    let k = SigningKey::generate(Curve::P384, "s").unwrap();
    let set = Jwks::try_new(vec![k.public().clone()]).unwrap();
    let t = jws::sign(b"x", &k).unwrap();
    for alg in ["none", "HS256", "RS256", "PS384", "EdDSA"] {
        let bad = with_header(&t, |h| {
            h.insert("alg".into(), alg.into());
        });
        assert!(
            matches!(
                jws::verify(&bad, &set),
                Err(Error::ForbiddenAlgorithm { .. })
            ),
            "{alg}"
        );
    }
    // ES256 claimed with a P-384 key.
    let bad = with_header(&t, |h| {
        h.insert("alg".into(), "ES256".into());
    });
    assert!(matches!(
        jws::verify(&bad, &set),
        Err(Error::KeyAlgorithmMismatch { .. })
    ));
    for name in ["jwk", "jku", "x5u"] {
        let bad = with_header(&t, |h| {
            h.insert(name.into(), json!("https://evil.example/"));
        });
        assert!(
            matches!(jws::verify(&bad, &set), Err(Error::ForbiddenHeader(_))),
            "{name}"
        );
    }
}

#[test]
fn tampered_tag_ciphertext_and_header_fail() {
    let key = p384("k");
    let t = token(&key);
    let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
    let flip = |s: &str| {
        let mut b = b64d(s).unwrap();
        b[0] ^= 0x80;
        b64e(&b)
    };
    let mut tag = parts.clone();
    tag[4] = flip(&parts[4]);
    assert!(matches!(
        jwe::decrypt(&tag.join("."), &key),
        Err(Error::DecryptionFailed)
    ));
    let mut ct = parts.clone();
    ct[3] = flip(&parts[3]);
    assert!(matches!(
        jwe::decrypt(&ct.join("."), &key),
        Err(Error::DecryptionFailed)
    ));
    let header = with_header(&t, |h| {
        h.insert("x-note".into(), "added".into());
    });
    assert!(matches!(
        jwe::decrypt(&header, &key),
        Err(Error::DecryptionFailed)
    ));
    parts[1] = flip(&parts[1]);
    assert!(matches!(
        jwe::decrypt(&parts.join("."), &key),
        Err(Error::KeyUnwrapFailed)
    ));

    let k = SigningKey::generate(Curve::P384, "s").unwrap();
    let set = Jwks::try_new(vec![k.public().clone()]).unwrap();
    let s = jws::sign(b"{\"a\":1}", &k).unwrap();
    let mut p: Vec<&str> = s.split('.').collect();
    let other = b64e(b"{\"a\":2}");
    p[1] = &other;
    assert!(matches!(
        jws::verify(&p.join("."), &set),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn truncated_and_oversized_tokens_fail() {
    let key = p384("k");
    let t = token(&key);
    let cut = &t[..t.rfind('.').unwrap()];
    assert!(matches!(jwe::decrypt(cut, &key), Err(Error::Malformed(_))));
    let short = &t[..t.len() - 5];
    assert!(jwe::decrypt(short, &key).is_err());
    let big = "a".repeat(MAX_TOKEN_LEN + 1);
    assert!(
        matches!(jwe::decrypt(&big, &key), Err(Error::TooLarge { len, limit }) if len == MAX_TOKEN_LEN + 1 && limit == MAX_TOKEN_LEN)
    );
    assert!(matches!(
        jws::verify(&big, &Jwks::default()),
        Err(Error::TooLarge { .. })
    ));
    // Exactly at the limit is not refused for size.
    let at = "a".repeat(MAX_TOKEN_LEN);
    assert!(matches!(jwe::decrypt(&at, &key), Err(Error::Malformed(_))));
}

#[test]
fn jwks_parsing_rules() {
    let a = SigningKey::generate(Curve::P384, "a")
        .unwrap()
        .public()
        .to_json();
    let doc = json!({"keys": [a, {"kty": "RSA", "kid": "r", "n": "x", "e": "AQAB"}]});
    let set = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.kids(), vec!["a"]);
    let dup = json!({"keys": [a, a]});
    assert!(matches!(
        Jwks::from_json(dup.to_string().as_bytes()),
        Err(Error::InvalidJwks(_))
    ));
    let mut off = a.clone();
    let mut x = b64d(off["x"].as_str().unwrap()).unwrap();
    x[10] ^= 1;
    off["x"] = b64e(&x).into();
    assert!(matches!(
        PublicJwk::from_json(&off),
        Err(Error::InvalidKey { .. })
    ));
    let mut private = a.clone();
    private["d"] = "AAAA".into();
    assert!(matches!(
        PublicJwk::from_json(&private),
        Err(Error::InvalidKey { .. })
    ));
    assert!(Jwks::from_json(b"[]").is_err());
}

#[test]
fn seal_round_trip_binds_aad_and_key() {
    let mk = MasterKey::from_encoded(MasterKey::generate_hex().unwrap().as_bytes()).unwrap();
    let sealed = mk.seal(b"kid-1", b"secret scalar").unwrap();
    assert_eq!(&*mk.open(b"kid-1", &sealed).unwrap(), b"secret scalar");
    assert!(matches!(
        mk.open(b"kid-2", &sealed),
        Err(Error::SealOpenFailed)
    ));
    let other = MasterKey::from_bytes(&[7u8; 32]).unwrap();
    assert!(matches!(
        other.open(b"kid-1", &sealed),
        Err(Error::SealOpenFailed)
    ));
    assert_ne!(mk.check_value(), other.check_value());
    assert_eq!(
        other.check_value(),
        MasterKey::from_bytes(&[7u8; 32]).unwrap().check_value()
    );
    assert!(!format!("{mk:?}").contains("secret"));
    assert!(matches!(
        MasterKey::from_encoded(b"short"),
        Err(Error::InvalidMasterKey(_))
    ));
}

#[test]
fn master_key_encodings() {
    let hex = "00".repeat(31) + "01";
    let a = MasterKey::from_encoded(hex.as_bytes()).unwrap();
    let mut raw = [0u8; 32];
    raw[31] = 1;
    let b = MasterKey::from_encoded(
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw).as_bytes(),
    )
    .unwrap();
    assert_eq!(a.check_value(), b.check_value());
}

#[test]
fn random_digits_are_digits_of_the_length() {
    for len in [4, 8, 63] {
        let pin = random_digits(len).unwrap();
        assert_eq!(pin.len(), len);
        assert!(pin.bytes().all(|b| b.is_ascii_digit()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn jwe_round_trips_any_payload(payload in proptest::collection::vec(any::<u8>(), 0..2048), a in 0usize..4, e in 0usize..6) {
        let key = p384("k");
        let algs = Algorithms { alg: KeyManagement::ALL[a], enc: ContentEncryption::ALL[e] };
        let t = jwe::encrypt(&payload, key.public(), algs).unwrap();
        prop_assert_eq!(&*jwe::decrypt(&t, &key).unwrap(), &payload[..]);
    }

    #[test]
    fn decrypt_never_panics_on_garbage(s in "[A-Za-z0-9_.-]{0,400}") {
        let key = p384("k");
        prop_assert!(jwe::decrypt(&s, &key).is_err());
        prop_assert!(jws::verify(&s, &Jwks::default()).is_err());
    }
}
