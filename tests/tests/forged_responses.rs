//! The forged-response catalogue: Yubico responses forged, replayed, swapped or tampered with,
//! each refused by the vault over its socket with a precise reason, nothing sent and nothing
//! opened. Each case names what an attacker did.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::PinResponse;
use fpr_jose::util::{b64d, b64e, hmac_sha256};
use fpr_jose::{Curve, PublicJwk, SigningKey, jws};
use fpr_proto::vault::v1 as pb;
use fpr_tests::Yubico;
use fpr_tests::{SmtpVault, captured_logs, deliver_request, seal_request};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;

fn seal(shipment: &str) -> pb::SealRequestsRequest {
    seal_request(shipment, shipment, 8)
}

/// The refusal's reason: ErrorInfo's, else the code's name.
fn reason(s: &tonic::Status) -> String {
    s.get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_else(|| format!("{:?}", s.code()))
}

/// Encrypts an arbitrary inner token to the response key.
fn wrap(inner: &str, response_key: &Value) -> String {
    let to = PublicJwk::from_json(response_key).unwrap();
    jwe::encrypt(inner.as_bytes(), &to, Algorithms::default()).unwrap()
}

/// A JWS with a chosen header and signature bytes.
fn raw_jws(header: &Value, payload: &[u8], sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64e(header.to_string().as_bytes()),
        b64e(payload),
        b64e(sig)
    )
}

/// The JWE's parts with one of them changed by `f`.
fn edit_part(token: &str, i: usize, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = b64d(&parts[i]).unwrap();
    f(&mut bytes);
    parts[i] = b64e(&bytes);
    parts.join(".")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_swapped_and_tampered_responses_are_refused() {
    let SmtpVault {
        yubico,
        jwks: _jwks,
        mail,
        vault,
    } = SmtpVault::start().await;
    let mut client = vault.client().await;
    let a = client
        .seal_requests(seal("shp-a"))
        .await
        .unwrap()
        .into_inner();
    let b = client
        .seal_requests(seal("shp-b"))
        .await
        .unwrap()
        .into_inner();
    let a_done = yubico.fulfil(&a.credential_request_jwe, &a.pin_request_jwe, "1001");
    let b_done = yubico.fulfil(&b.credential_request_jwe, &b.pin_request_jwe, "1002");
    let key_a = a_done.pin_request.response_key.clone();
    let good_pin = PinResponse::new(a.request_id.clone(), "1001".into(), a_done.pin.clone())
        .to_json()
        .unwrap();
    let pin_json: Value = serde_json::from_slice(&good_pin).unwrap();
    let signer = &yubico.signing[0];
    let signed = |payload: &[u8]| Yubico::respond(payload, signer, &key_a);
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = pin_json.clone();
        edit(&mut v);
        signed(v.to_string().as_bytes())
    };
    let kid = signer.kid().to_owned();
    let rogue = SigningKey::generate(Curve::P384, "APCS-Tsgnkey-ROGUE").unwrap();
    let impostor = SigningKey::generate(Curve::P384, &kid).unwrap();
    let p256 = SigningKey::generate(Curve::P256, &kid).unwrap();
    let transport_signer = SigningKey::generate(Curve::P384, yubico.transport[0].kid()).unwrap();
    let good_jws = jws::sign(&good_pin, signer).unwrap();
    let jws_parts: Vec<&str> = good_jws.split('.').collect();
    let header_with = |extra: Value| {
        let mut h: Value = serde_json::from_slice(&b64d(jws_parts[0]).unwrap()).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        h
    };
    let sig = b64d(jws_parts[2]).unwrap();

    // (what the attacker did, the token, the field it goes to, the reason expected)
    let mut cases: Vec<(&str, String, &str)> = vec![
        (
            "signed by a key Yubico never published",
            Yubico::respond(&good_pin, &rogue, &key_a),
            "unknown_signing_key",
        ),
        (
            "signed by another key under a published kid",
            Yubico::respond(&good_pin, &impostor, &key_a),
            "bad_signature",
        ),
        (
            "signed with a P-256 key under the P-384 kid (ES256)",
            Yubico::respond(&good_pin, &p256, &key_a),
            "key_algorithm_mismatch",
        ),
        (
            "signed by a key of the transport set",
            Yubico::respond(&good_pin, &transport_signer, &key_a),
            "unknown_signing_key",
        ),
        (
            "made for another shipment (encrypted to its key)",
            b_done.pin_response_jwe.clone(),
            "wrong_response_key",
        ),
        (
            "another request id, signed and encrypted properly",
            with(&|v| v["request_id"] = json!(b.request_id)),
            "wrong_request_id",
        ),
        (
            "a credential response presented as a PIN response",
            a_done.credential_response_jwe.clone(),
            "wrong_type",
        ),
        (
            "typ of a PIN request",
            with(&|v| v["typ"] = json!(fpr_jose::protocol::PIN_REQUEST)),
            "wrong_type",
        ),
        ("wrong v", with(&|v| v["v"] = json!(2)), "wrong_version"),
        (
            "serial of another key",
            with(&|v| v["serial_number"] = json!("2002")),
            "serial_mismatch",
        ),
        (
            "an unsigned payload inside a valid JWE",
            wrap(std::str::from_utf8(&good_pin).unwrap(), &key_a),
            "malformed",
        ),
        (
            "JWS alg none",
            wrap(
                &raw_jws(&json!({"alg": "none", "kid": kid}), &good_pin, &[]),
                &key_a,
            ),
            "forbidden_algorithm",
        ),
        (
            "JWS HS256 keyed with Yubico's public key",
            wrap(
                &{
                    let h = json!({"alg": "HS256", "kid": kid});
                    let input = format!(
                        "{}.{}",
                        b64e(h.to_string().as_bytes()),
                        b64e(&good_pin)
                    );
                    let mac = hmac_sha256(
                        yubico.signing_jwks().to_json().to_string().as_bytes(),
                        input.as_bytes(),
                    );
                    format!("{input}.{}", b64e(&mac))
                },
                &key_a,
            ),
            "forbidden_algorithm",
        ),
        (
            "JWS RS256",
            wrap(
                &raw_jws(&json!({"alg": "RS256", "kid": kid}), &good_pin, &[7; 256]),
                &key_a,
            ),
            "forbidden_algorithm",
        ),
        (
            "JWS naming its own key (jwk header)",
            wrap(
                &raw_jws(
                    &header_with(json!({"jwk": rogue.public().to_json()})),
                    &good_pin,
                    &sig,
                ),
                &key_a,
            ),
            "forbidden_header",
        ),
        (
            "JWS fetching its key (jku header)",
            wrap(
                &raw_jws(
                    &header_with(json!({"jku": "https://evil.example/keys"})),
                    &good_pin,
                    &sig,
                ),
                &key_a,
            ),
            "forbidden_header",
        ),
        (
            "JWS payload swapped under a valid signature",
            wrap(
                &format!(
                    "{}.{}.{}",
                    jws_parts[0],
                    b64e(
                        with_field(&pin_json, "serial_number", json!("9999"))
                            .to_string()
                            .as_bytes()
                    ),
                    jws_parts[2]
                ),
                &key_a,
            ),
            "bad_signature",
        ),
        (
            "JWE ciphertext flipped",
            edit_part(&a_done.pin_response_jwe, 3, |c| c[5] ^= 1),
            "decryption_failed",
        ),
        (
            "JWE tag flipped",
            edit_part(&a_done.pin_response_jwe, 4, |t| t[0] ^= 1),
            "decryption_failed",
        ),
        (
            "JWE wrapped key flipped",
            edit_part(&a_done.pin_response_jwe, 1, |k| k[3] ^= 1),
            "decryption_failed",
        ),
        (
            "JWE header with compression (zip)",
            edit_part(&a_done.pin_response_jwe, 0, |h| {
                let mut v: Value = serde_json::from_slice(h).unwrap();
                v["zip"] = json!("DEF");
                *h = v.to_string().into_bytes();
            }),
            "forbidden_header",
        ),
        (
            "JWE key management alg RSA-OAEP",
            edit_part(&a_done.pin_response_jwe, 0, |h| {
                let mut v: Value = serde_json::from_slice(h).unwrap();
                v["alg"] = json!("RSA-OAEP");
                *h = v.to_string().into_bytes();
            }),
            "forbidden_algorithm",
        ),
        (
            "JWE alg dir",
            edit_part(&a_done.pin_response_jwe, 0, |h| {
                let mut v: Value = serde_json::from_slice(h).unwrap();
                v["alg"] = json!("dir");
                *h = v.to_string().into_bytes();
            }),
            "forbidden_algorithm",
        ),
        (
            "truncated token",
            a_done.pin_response_jwe[..a_done.pin_response_jwe.len() / 2].to_owned(),
            "malformed",
        ),
        (
            "four parts instead of five",
            a_done.pin_response_jwe.rsplit_once('.').unwrap().0.to_owned(),
            "malformed",
        ),
        (
            "duplicate JSON keys (two request ids)",
            signed(
                format!(
                    r#"{{"typ":"{}","v":1,"request_id":"{}","request_id":"{}","serial_number":"1001","pin":"12345678"}}"#,
                    fpr_jose::protocol::PIN_RESPONSE,
                    a.request_id,
                    b.request_id
                )
                .as_bytes(),
            ),
            "bad_payload",
        ),
        (
            "a PIN of letters",
            with(&|v| v["pin"] = json!("abcdefgh")),
            "bad_payload",
        ),
        ("a PIN of 3 digits", with(&|v| v["pin"] = json!("123")), "bad_payload"),
    ];

    let mut seen = Vec::new();
    for (name, token, want) in &cases {
        let err = client
            .deliver_pin(deliver_request("shp-a", token, "1001"))
            .await
            .expect_err(name);
        assert_eq!(
            (err.code(), reason(&err).as_str()),
            (Code::InvalidArgument, *want),
            "{name}: {}",
            err.message()
        );
        let field = &err.get_details_bad_request().unwrap().field_violations[0].field;
        assert_eq!(field, "pin_response_jwe", "{name}");
        seen.push(*want);
    }
    // Oversized: refused before any work, naming the field.
    let huge = "a".repeat(64 * 1024 + 1);
    let err = client
        .deliver_pin(deliver_request("shp-a", &huge, "1001"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    cases.push(("oversized token", huge, "invalid_argument"));
    // The same forgeries through OpenCredentialResponse: a PIN response as a credential.
    let err = client
        .open_credential_response(pb::OpenCredentialResponseRequest {
            shipment_ref: "shp-a".into(),
            credential_response_jwe: a_done.pin_response_jwe.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "wrong_type", "{}", err.message());
    cases.push((
        "a PIN response presented as a credential response",
        String::new(),
        "wrong_type",
    ));
    // Replay after purge: nothing is held any more.
    client
        .purge_shipment(pb::PurgeShipmentRequest {
            shipment_ref: "shp-a".into(),
        })
        .await
        .unwrap();
    let err = client
        .deliver_pin(deliver_request("shp-a", &a_done.pin_response_jwe, "1001"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    cases.push(("replay after purge", String::new(), "not_found"));

    assert!(
        mail.mails().is_empty(),
        "nothing sent for a refused response"
    );
    let logs = captured_logs();
    assert!(!logs.contains(a_done.pin.as_str()), "no PIN in the logs");
    assert!(
        logs.contains("Yubico response refused"),
        "refusals logged at WARN"
    );
    let audit = std::fs::read_to_string(vault.audit_log()).unwrap();
    assert!(!audit.contains(a_done.pin.as_str()));
    let distinct: std::collections::BTreeSet<&str> = seen.iter().copied().collect();
    println!(
        "forged-response catalogue: {} kinds refused, {} distinct reasons",
        cases.len(),
        distinct.len()
    );
    assert!(cases.len() >= 20);
}

fn with_field(v: &Value, k: &str, val: Value) -> Value {
    let mut v = v.clone();
    v[k] = val;
    v
}
