//! The vault end to end: a real server on a temporary Unix socket, called over gRPC.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_jose::protocol::{CredentialRequest, PinRequest, PinResponse};
use fpr_jose::util::{b64d, b64e};
use fpr_jose::{Curve, SigningKey};
use fpr_proto::vault::v1 as pb;
use fpr_tests::{Pins, SmtpVault, VaultFixture, captured_logs, jwks_server, publish, read_tree};
use fpr_tests::{Yubico, creation_options, http, smtp};
use serde_json::Value;
use tonic::Code;
use tonic_types::StatusExt as _;

fn seal_req(shipment: &str, user: &str, length: u32) -> pb::SealRequestsRequest {
    let mut r = fpr_tests::seal_request(shipment, user, length);
    r.pin_policy = Some(pb::PinPolicy {
        length,
        force_change: true,
    });
    r
}

fn deliver_req(shipment: &str, jwe: &str, serial: &str) -> pb::DeliverPinRequest {
    let mut r = fpr_tests::deliver_request(shipment, jwe, serial);
    r.recipients = vec!["manager@contoso.test".into()];
    r.context = Some(pb::MessageContext {
        user_display_name: "Ada Lovelace".into(),
        user_principal_name: "ada@contoso.test".into(),
        shipment_id: shipment.into(),
    });
    r
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

fn header(token: &str) -> Value {
    serde_json::from_slice(&b64d(token.split('.').next().unwrap()).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_open_deliver_purge_over_smtp() {
    let SmtpVault {
        yubico,
        jwks: _jwks,
        mail,
        mut vault,
    } = SmtpVault::start().await;
    let mut client = vault.client().await;

    // Seal: both JWEs decrypt with a Yubico transport key and hold docs/design/protocol.md's plaintexts.
    let options = creation_options("ada");
    let sealed = client
        .seal_requests(seal_req("shp-1", "ada", 12))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(sealed.request_id.len(), 22);
    for jwe in [&sealed.credential_request_jwe, &sealed.pin_request_jwe] {
        let h = header(jwe);
        assert_eq!(
            (h["alg"].as_str(), h["enc"].as_str(), h["cty"].as_str()),
            (Some("ECDH-ES+A256KW"), Some("A256GCM"), Some("JSON"))
        );
        assert_eq!(h["kid"], sealed.transport_kid.as_str());
    }
    let cred: CredentialRequest =
        serde_json::from_slice(&yubico.open_request(&sealed.credential_request_jwe).unwrap())
            .unwrap();
    let pin: PinRequest =
        serde_json::from_slice(&yubico.open_request(&sealed.pin_request_jwe).unwrap()).unwrap();
    assert_eq!((cred.typ.as_str(), cred.v), ("fido-credential-request", 1));
    assert_eq!((pin.typ.as_str(), pin.v), ("fido-pin-request", 1));
    assert_eq!(cred.request_id, sealed.request_id);
    assert_eq!(pin.request_id, sealed.request_id);
    assert_eq!(cred.public_key, options);
    assert_eq!(cred.response_key, pin.response_key);
    assert_eq!(cred.response_key["kid"], sealed.request_id.as_str());
    assert_eq!(
        (
            cred.response_key["crv"].as_str(),
            cred.response_key["use"].as_str()
        ),
        (Some("P-384"), Some("enc"))
    );
    assert!(cred.response_key.get("d").is_none());
    assert_eq!(
        (pin.pin.kind.as_str(), pin.pin.length, pin.pin.force_change),
        ("generate", 12, true)
    );

    // The same inputs give the same sealed requests; other inputs for the same shipment do not.
    let again = client
        .seal_requests(seal_req("shp-1", "ada", 12))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, sealed);
    let other = client
        .seal_requests(seal_req("shp-1", "ada", 8))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::AlreadyExists);

    // Yubico fulfils; the vault opens the credential response.
    let done = yubico.fulfil(
        &sealed.credential_request_jwe,
        &sealed.pin_request_jwe,
        "3632071",
    );
    let opened = client
        .open_credential_response(pb::OpenCredentialResponseRequest {
            shipment_ref: "shp-1".into(),
            credential_response_jwe: done.credential_response_jwe.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            opened.serial_number.as_str(),
            opened.firmware_version.as_str()
        ),
        ("3632071", "5.7.1")
    );
    assert_eq!(opened.request_id, sealed.request_id);
    assert_eq!(opened.signing_kid, yubico.signing[0].kid());
    let c = opened.credential.clone().unwrap();
    let client_data: Value = serde_json::from_slice(&b64d(&c.client_data_json).unwrap()).unwrap();
    assert_eq!(client_data["challenge"], options["challenge"]);
    assert_eq!(c.transports, vec!["nfc", "usb"]);

    // Deliver: exactly one message, to the recipient, holding the PIN.
    let receipt = client
        .deliver_pin(deliver_req("shp-1", &done.pin_response_jwe, "3632071"))
        .await
        .unwrap()
        .into_inner();
    assert!(!receipt.already_delivered);
    let r = receipt.receipt.clone().unwrap();
    assert_eq!((r.channel.as_str(), r.deliveries), ("smtp", 1));
    let mails = mail.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["manager@contoso.test"]);
    assert!(mails[0].body.contains(done.pin.as_str()));
    assert!(mails[0].body.contains("Ada Lovelace"));
    assert!(mails[0].body.contains(&r.message_id));

    // A second call does not send again; an explicit resend does.
    let twice = client
        .deliver_pin(deliver_req("shp-1", &done.pin_response_jwe, "3632071"))
        .await
        .unwrap()
        .into_inner();
    assert!(twice.already_delivered);
    assert_eq!(mail.mails().len(), 1);
    let mut resend = deliver_req("shp-1", &done.pin_response_jwe, "3632071");
    resend.resend = true;
    let resent = client.deliver_pin(resend).await.unwrap().into_inner();
    assert_eq!(resent.receipt.unwrap().deliveries, 2);
    assert_eq!(mail.mails().len(), 2);

    // Nothing the vault returned or logged holds the PIN.
    assert!(!format!("{sealed:?}{opened:?}{receipt:?}{twice:?}").contains(done.pin.as_str()));
    let logs = captured_logs();
    assert!(
        logs.contains("PIN delivered") && logs.contains("shp-1"),
        "the capture sees the vault's spans and events"
    );
    assert!(!logs.contains(done.pin.as_str()));

    // The store holds neither the PIN nor the response private scalar in the clear.
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.key_store.as_ref().unwrap().sealed_keys, 1);
    vault.stop().await;
    let master =
        fpr_jose::seal::MasterKey::from_encoded(&std::fs::read(&vault.master_key_file).unwrap())
            .unwrap();
    let store = fpr_vault::keystore::KeyStore::open(&vault.store, master).unwrap();
    let rec = store.get("shp-1").unwrap().unwrap();
    let scalar = store.response_key("shp-1", &rec).unwrap().scalar().unwrap();
    drop(store);
    let files = read_tree(&vault.store);
    assert!(!files.is_empty());
    let hex: String = scalar.iter().map(|b| format!("{b:02x}")).collect();
    for needle in [
        scalar.to_vec(),
        b64e(&scalar).into_bytes(),
        hex.into_bytes(),
        done.pin.as_bytes().to_vec(),
    ] {
        assert!(
            !files.windows(needle.len()).any(|w| w == needle.as_slice()),
            "secret found in the store"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_responses_send_nothing() {
    let SmtpVault {
        yubico,
        jwks: _jwks,
        mail,
        vault,
    } = SmtpVault::start().await;
    let mut client = vault.client().await;
    let a = client
        .seal_requests(seal_req("shp-a", "ada", 8))
        .await
        .unwrap()
        .into_inner();
    let b = client
        .seal_requests(seal_req("shp-b", "bob", 8))
        .await
        .unwrap()
        .into_inner();
    let a_done = yubico.fulfil(&a.credential_request_jwe, &a.pin_request_jwe, "1001");
    let b_done = yubico.fulfil(&b.credential_request_jwe, &b.pin_request_jwe, "1002");

    // Signed by a key Yubico never published.
    let rogue = SigningKey::generate(Curve::P384, "APCS-Tsgnkey-ROGUE").unwrap();
    let pin = PinResponse::new(a.request_id.clone(), "1001".into(), a_done.pin.clone());
    let unknown_signer = Yubico::respond(
        &pin.to_json().unwrap(),
        &rogue,
        &a_done.pin_request.response_key,
    );
    // Signed with a published kid by another key.
    let impostor = SigningKey::generate(Curve::P384, yubico.signing[0].kid()).unwrap();
    let forged = Yubico::respond(
        &pin.to_json().unwrap(),
        &impostor,
        &a_done.pin_request.response_key,
    );
    // Made for another shipment (encrypted to b's response key).
    let other_shipment = b_done.pin_response_jwe.clone();
    // Carrying another request id, properly signed and encrypted to a's key.
    let wrong_id = PinResponse::new(b.request_id.clone(), "1001".into(), a_done.pin.clone());
    let wrong_request = Yubico::respond(
        &wrong_id.to_json().unwrap(),
        &yubico.signing[0],
        &a_done.pin_request.response_key,
    );
    // Tampered ciphertext.
    let mut parts: Vec<String> = a_done
        .pin_response_jwe
        .split('.')
        .map(str::to_owned)
        .collect();
    let mut ct = b64d(&parts[3]).unwrap();
    ct[5] ^= 1;
    parts[3] = b64e(&ct);
    let tampered = parts.join(".");

    for (jwe, want) in [
        (unknown_signer, "unknown_signing_key"),
        (forged, "bad_signature"),
        (other_shipment, "wrong_response_key"),
        (wrong_request, "wrong_request_id"),
        (tampered, "decryption_failed"),
    ] {
        let err = client
            .deliver_pin(deliver_req("shp-a", &jwe, "1001"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), reason(&err).as_str()),
            (Code::InvalidArgument, want),
            "{}",
            err.message()
        );
        let violations = err.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "pin_response_jwe");
    }
    // Serial that differs from YubiEnterprise's.
    let err = client
        .deliver_pin(deliver_req("shp-a", &a_done.pin_response_jwe, "9999"))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "serial_mismatch");
    // A credential response for another shipment is refused too.
    let err = client
        .open_credential_response(pb::OpenCredentialResponseRequest {
            shipment_ref: "shp-a".into(),
            credential_response_jwe: b_done.credential_response_jwe.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "wrong_response_key");
    assert!(
        mail.mails().is_empty(),
        "nothing may be sent for a refused response"
    );
    assert!(!captured_logs().contains(a_done.pin.as_str()));

    // Purge: later opens and deliveries are NOT_FOUND; purging again is harmless.
    let purged = client
        .purge_shipment(pb::PurgeShipmentRequest {
            shipment_ref: "shp-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(purged.purged);
    let err = client
        .deliver_pin(deliver_req("shp-a", &a_done.pin_response_jwe, "1001"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .open_credential_response(pb::OpenCredentialResponseRequest {
            shipment_ref: "shp-a".into(),
            credential_response_jwe: a_done.credential_response_jwe.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let again = client
        .purge_shipment(pb::PurgeShipmentRequest {
            shipment_ref: "shp-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.purged);
    assert!(mail.mails().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivery_is_signed_and_sent_once() {
    let yubico = Yubico::new();
    let jwks = jwks_server(&yubico).await;
    let hook = http::Server::start().await;
    let vault = VaultFixture::builder(
        &jwks,
        Pins::Webhook(hook.url("/send-pin?sig=abc"), "hook-secret"),
    )
    .start()
    .await;
    let mut client = vault.client().await;
    let s = client
        .seal_requests(seal_req("shp-w", "wes", 6))
        .await
        .unwrap()
        .into_inner();
    let done = yubico.fulfil(&s.credential_request_jwe, &s.pin_request_jwe, "77");
    let r = client
        .deliver_pin(deliver_req("shp-w", &done.pin_response_jwe, "77"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receipt.as_ref().unwrap().channel, "webhook");
    client
        .deliver_pin(deliver_req("shp-w", &done.pin_response_jwe, "77"))
        .await
        .unwrap();
    let posts = hook.posts();
    assert_eq!(posts.len(), 1, "the PIN is sent once");
    let post = &posts[0];
    assert_eq!(post.path, "/send-pin?sig=abc");
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(body["pin"], done.pin.as_str());
    assert_eq!(body["emails_to"][0], "manager@contoso.test");
    assert_eq!(body["delivery_id"], r.receipt.unwrap().message_id.as_str());
    // X-Fpr-Signature: t=<ts>,v1=hex(HMAC-SHA256(secret, "<ts>.<body>")).
    let sig = &post.headers["x-fpr-signature"];
    let (t, v1) = sig.split_once(",v1=").unwrap();
    let ts = t.strip_prefix("t=").unwrap();
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&post.body);
    let mac: String = fpr_jose::util::hmac_sha256(b"hook-secret", &signed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, mac);

    // A failing webhook is UNAVAILABLE and records no delivery, so a retry sends.
    let s2 = client
        .seal_requests(seal_req("shp-w2", "wes2", 6))
        .await
        .unwrap()
        .into_inner();
    let done2 = yubico.fulfil(&s2.credential_request_jwe, &s2.pin_request_jwe, "78");
    hook.post_status(503);
    let err = client
        .deliver_pin(deliver_req("shp-w2", &done2.pin_response_jwe, "78"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(!err.message().contains(done2.pin.as_str()));
    hook.post_status(200);
    let ok = client
        .deliver_pin(deliver_req("shp-w2", &done2.pin_response_jwe, "78"))
        .await
        .unwrap()
        .into_inner();
    assert!(!ok.already_delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let SmtpVault {
        yubico,
        jwks: _jwks,
        mail,
        vault,
    } = SmtpVault::start().await;
    let mut client = vault.client().await;
    let mut cases: Vec<(pb::SealRequestsRequest, &str)> = Vec::new();
    let mut r = seal_req("bad ref!", "u", 8);
    cases.push((r.clone(), "shipment_ref"));
    r = seal_req("ok", "u", 3);
    cases.push((r.clone(), "pin_policy.length"));
    r = seal_req("ok", "u", 64);
    cases.push((r.clone(), "pin_policy.length"));
    r = seal_req("ok", "u", 8);
    r.pin_policy = None;
    cases.push((r.clone(), "pin_policy"));
    r = seal_req("ok", "u", 8);
    r.creation_options_json = "[1]".into();
    cases.push((r.clone(), "creation_options_json"));
    r.creation_options_json =
        r#"{"rp":{"id":"x"},"user":{"id":"y"},"pubKeyCredParams":[{}]}"#.into();
    cases.push((r.clone(), "creation_options_json"));
    r = seal_req("ok", "u", 8);
    r.recipients.clear();
    cases.push((r.clone(), "recipients"));
    r.recipients = vec!["not an address".into()];
    cases.push((r.clone(), "recipients[0]"));
    r.recipients = vec!["manager@contoso.test".into(), "eve@evil.example".into()];
    cases.push((r.clone(), "recipients[1]"));
    r.recipients = vec!["manager@contoso.test".into(); 11];
    cases.push((r.clone(), "recipients"));
    for (req, field) in cases {
        let err = client.seal_requests(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(
            err.get_details_bad_request().unwrap().field_violations[0].field,
            field
        );
    }
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.key_store.unwrap().sealed_keys,
        0,
        "bad input changes nothing"
    );

    let s = client
        .seal_requests(seal_req("shp-1", "u", 8))
        .await
        .unwrap()
        .into_inner();
    let done = yubico.fulfil(&s.credential_request_jwe, &s.pin_request_jwe, "5");
    // Only the recipients bound at SealRequests.
    for other in ["not an address", "eve@contoso.test", "eve@evil.example"] {
        let mut d = deliver_req("shp-1", &done.pin_response_jwe, "5");
        d.recipients = vec![other.into()];
        let err = client.deliver_pin(d).await.unwrap_err();
        assert_eq!(
            (err.code(), reason(&err).as_str()),
            (Code::PermissionDenied, "recipient_not_bound"),
            "{other}"
        );
    }
    let d = deliver_req("shp-1", &done.pin_response_jwe, "12a");
    assert_eq!(
        client
            .deliver_pin(d)
            .await
            .unwrap_err()
            .get_details_bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "expected_serial"
    );
    let d = deliver_req("shp-1", &"a".repeat(64 * 1024 + 1), "5");
    assert_eq!(
        client
            .deliver_pin(d)
            .await
            .unwrap_err()
            .get_details_bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "pin_response_jwe"
    );
    assert!(mail.mails().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_keys_and_unknown_kid_refresh() {
    let SmtpVault {
        mut yubico,
        jwks,
        mail: _mail,
        vault,
    } = SmtpVault::start().await;
    let mut client = vault.client().await;

    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert!(status.key_store.as_ref().unwrap().healthy);
    assert_eq!(status.key_store.unwrap().master_key_check.len(), 6);
    let signing = status.signing_jwks.unwrap();
    assert_eq!(signing.kids.len(), 2);
    assert!(signing.fetched_at.is_some());
    assert_eq!(signing.source, jwks.url("/sign"));
    assert_eq!(status.settings["FPR_VAULT_MASTER_KEY"], "[redacted]");
    assert!(status.settings.contains_key("YE_JWKS_SIGN_ENDPOINT"));

    let keys = client
        .get_yubico_keys(pb::GetYubicoKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    let t = fpr_jose::Jwks::from_json(keys.transport_jwks_json.as_bytes()).unwrap();
    assert_eq!(t, yubico.transport_jwks());
    assert!(!keys.signing_jwks_json.contains("\"d\""));

    // Yubico rotates its signing key: a response signed with the new kid makes the vault
    // refresh its pinned set and accept it.
    let s = client
        .seal_requests(seal_req("shp-r", "rot", 8))
        .await
        .unwrap()
        .into_inner();
    yubico.signing.insert(
        0,
        SigningKey::generate(Curve::P384, "APCS-Tsgnkey-TEST-NEW").unwrap(),
    );
    publish(&jwks, &yubico);
    let done = yubico.fulfil(&s.credential_request_jwe, &s.pin_request_jwe, "42");
    let opened = client
        .open_credential_response(pb::OpenCredentialResponseRequest {
            shipment_ref: "shp-r".into(),
            credential_response_jwe: done.credential_response_jwe,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opened.signing_kid, "APCS-Tsgnkey-TEST-NEW");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_uid_check_health_and_reflection() {
    let yubico = Yubico::new();
    let jwks = jwks_server(&yubico).await;
    let mail = smtp::Receiver::start().await;
    // Only a uid that is not ours may call: we are refused, but health and reflection answer.
    let vault = VaultFixture::builder(&jwks, Pins::Smtp(mail.addr))
        .allowed_uids(vec![4_000_000])
        .start()
        .await;
    let mut client = vault.client().await;
    let err = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let channel = fpr_tests::uds_channel(&vault.socket).await;
    assert!(fpr_tests::serving(channel.clone(), "fpr.vault.v1.VaultService").await);

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
    };
    let mut refl = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let msg = stream.message().await.unwrap().unwrap();
    let listed = format!("{msg:?}");
    assert!(listed.contains("fpr.vault.v1.VaultService"));
    assert!(listed.contains("grpc.health.v1.Health"));
    assert!(
        !listed.contains("fpr.v1.ShipmentService"),
        "only what this server serves"
    );

    // The socket's directory is private to the vault's user.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(vault.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}
