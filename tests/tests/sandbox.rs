//! The sandbox over HTTP only: YubiEnterprise and fulfilment, Entra / Graph, Okta, mailbox,
//! admin API and faults, as a client of the real services would see them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_jose::jwe::Algorithms;
use fpr_jose::protocol::{CredentialResponse, PinResponse, PinSpec};
use fpr_jose::{Jwks, PrivateKey, jwe, jws};
use fpr_sandbox::{Clock, Config};
use fpr_tests::{SandboxFixture, fpr_shipment};
use reqwest::Method;
use serde_json::{Value, json};

const GET: Method = Method::GET;
const POST: Method = Method::POST;

async fn jwks(sb: &SandboxFixture, path: &str) -> Jwks {
    let text = sb
        .http
        .get(sb.url(path))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    Jwks::from_json(&text).unwrap()
}

/// Seals requests for `options` exactly as the vault does, to a transport key fetched over HTTP.
async fn seal(sb: &SandboxFixture, options: &Value) -> (PrivateKey, String, String) {
    let transport = jwks(sb, "/.well-known/yubico-transport-keys.jwks").await;
    let key = transport.choose_encryption_key().unwrap().unwrap().clone();
    let pin = PinSpec {
        kind: "generate".into(),
        length: 8,
        force_change: false,
    };
    fpr_vault::service::seal_requests(options, &pin, &key, Algorithms::default()).unwrap()
}

fn open(token: &str, key: &PrivateKey, signing: &Jwks) -> Result<Vec<u8>, fpr_jose::Error> {
    let inner = jwe::decrypt(token, key)?;
    jws::verify(std::str::from_utf8(&inner).unwrap(), signing).map(|v| v.payload.to_vec())
}

async fn creation_options(sb: &SandboxFixture, user_id: &str) -> Value {
    let (s, v, _) = sb.graph(GET, &format!("/beta/users/{user_id}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=20160)"), None).await;
    assert_eq!(s, 200, "{v}");
    v["publicKey"].clone()
}

/// Creates a shipment for `options` and reads it back; returns (shipment id, response key, body).
async fn ship(sb: &SandboxFixture, options: &Value) -> (String, PrivateKey, Value) {
    let (key, cred, pin) = seal(sb, options).await;
    let (s, created, _) = sb
        .ye(POST, "/v1/fpr/shipments", Some(fpr_shipment(&pin, &cred)))
        .await;
    assert_eq!(s, 200, "{created}");
    let id = created["shipment_id"].as_str().unwrap().to_owned();
    let (s, got, _) = sb.ye(GET, &format!("/v1/fpr/shipments/{id}"), None).await;
    assert_eq!(s, 200);
    (id, key, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_loop_over_http() {
    let sb = SandboxFixture::start(Config::default()).await;
    let adele = sb.user("adele.vance@contoso.test").await;
    let uid = adele["id"].as_str().unwrap();
    let options = creation_options(&sb, uid).await;
    let (_, key, shipment) = ship(&sb, &options).await;
    assert_eq!(shipment["shipment_state"]["shipment_state_id"], 103);
    let pd = &shipment["shipment_items"][0]["product_data"][0];
    let signing = jwks(&sb, "/.well-known/yubico-sign.jwks").await;

    let cred: CredentialResponse = serde_json::from_slice(
        &open(
            pd["fido_credential_responses"][0].as_str().unwrap(),
            &key,
            &signing,
        )
        .unwrap(),
    )
    .unwrap();
    let pin: PinResponse = serde_json::from_slice(
        &open(pd["fido_pin_response"].as_str().unwrap(), &key, &signing).unwrap(),
    )
    .unwrap();
    assert_eq!(cred.request_id, key.kid());
    assert_eq!(pin.request_id, key.kid());
    assert_eq!(cred.serial_number, pd["serial_number"].as_str().unwrap());
    assert_eq!(pin.serial_number, cred.serial_number);
    assert_eq!(
        cred.firmware_version,
        pd["firmware_version"].as_str().unwrap()
    );
    assert!(pin.pin().len() == 8 && pin.pin().bytes().all(|b| b.is_ascii_digit()));

    // Register the credential in Graph, as fpr will, and see it listed.
    let body = json!({
        "displayName": format!("YubiKey 5C NFC {}", cred.serial_number),
        "publicKeyCredential": {"id": cred.credential.id, "response": {
            "clientDataJSON": cred.credential.response.client_data_json,
            "attestationObject": cred.credential.response.attestation_object}, "clientExtensionResults": {}}
    });
    let (s, method, _) = sb
        .graph(
            POST,
            &format!("/v1.0/users/{uid}/authentication/fido2Methods"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 201, "{method}");
    assert_eq!(method["attestationLevel"], "attested");
    assert_eq!(method["model"], "YubiKey 5 Series with NFC");
    assert_eq!(method["aaGuid"], "a25342c0-3cdc-4414-8e46-f4807fca511c");
    // Method id = base64url(credential id) + the count of '=' removed (32 bytes -> "1").
    assert_eq!(
        method["id"].as_str().unwrap(),
        format!("{}1", cred.credential.id)
    );
    let (_, list, _) = sb
        .graph(
            GET,
            &format!(
                "/beta/users/{}/authentication/fido2Methods",
                adele["login"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    // The challenge is single-use.
    let (s, again, _) = sb
        .graph(
            POST,
            &format!("/v1.0/users/{uid}/authentication/fido2Methods"),
            Some(body),
        )
        .await;
    assert_eq!(s, 400, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_verifies_with_webauthn_rs_core() {
    use webauthn_rs_core::WebauthnCore;
    use webauthn_rs_core::proto::{
        AttestationConveyancePreference, COSEAlgorithm, RegisterPublicKeyCredential,
        UserVerificationPolicy,
    };
    let sb = SandboxFixture::start(Config::default()).await;
    let core = WebauthnCore::new_unsafe_experts_only(
        "Microsoft",
        "login.microsoft.com",
        vec![url::Url::parse("https://login.microsoft.com").unwrap()],
        std::time::Duration::from_secs(600),
        None,
        None,
    );
    let builder = core
        .new_challenge_register_builder(b"user-1", "ada@contoso.test", "Ada")
        .unwrap()
        .attestation(AttestationConveyancePreference::Direct)
        .user_verification_policy(UserVerificationPolicy::Required)
        .credential_algorithms(vec![COSEAlgorithm::ES256]);
    let (ccr, state) = core.generate_challenge_register(builder).unwrap();
    let options = serde_json::to_value(&ccr).unwrap()["publicKey"].clone();
    let (_, key, shipment) = ship(&sb, &options).await;
    let pd = &shipment["shipment_items"][0]["product_data"][0];
    let signing = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    let cred: CredentialResponse = serde_json::from_slice(
        &open(
            pd["fido_credential_responses"][0].as_str().unwrap(),
            &key,
            &signing,
        )
        .unwrap(),
    )
    .unwrap();
    let reg: RegisterPublicKeyCredential =
        serde_json::from_value(serde_json::to_value(&cred.credential).unwrap()).unwrap();

    let (_, cfg, _) = sb.admin(GET, "/config", None).await;
    let root_pem = cfg["attestation_root_pem"].as_str().unwrap();
    let mut cas = webauthn_attestation_ca::AttestationCaListBuilder::new();
    cas.insert_device_pem(
        root_pem.as_bytes(),
        uuid::Uuid::parse_str("a25342c0-3cdc-4414-8e46-f4807fca511c").unwrap(),
        "YubiKey 5C NFC".into(),
        Default::default(),
    )
    .unwrap();
    let cas = cas.build();
    let registered = core.register_credential(&reg, &state, Some(&cas)).unwrap();
    assert_eq!(
        registered.cred_id.as_ref() as &[u8],
        fpr_webauthn::b64d_any(&cred.credential.id)
            .unwrap()
            .as_slice()
    );

    // Against another root, webauthn-rs refuses the same registration.
    let stranger = fpr_softkey::AttestationCa::generate().unwrap();
    let mut other = webauthn_attestation_ca::AttestationCaListBuilder::new();
    other
        .insert_device_pem(
            stranger.root_pem().as_bytes(),
            uuid::Uuid::parse_str("a25342c0-3cdc-4414-8e46-f4807fca511c").unwrap(),
            "x".into(),
            Default::default(),
        )
        .unwrap();
    assert!(
        core.register_credential(&reg, &state, Some(&other.build()))
            .is_err()
    );
}

fn set(body: &mut Value, ptr: &str, v: Value) {
    let (parent, leaf) = ptr.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        body
    } else {
        body.pointer_mut(parent).unwrap()
    };
    match target {
        Value::Object(m) => {
            if v.is_null() {
                m.remove(leaf);
            } else {
                m.insert(leaf.to_owned(), v);
            }
        }
        Value::Array(a) => a[leaf.parse::<usize>().unwrap()] = v,
        _ => panic!("{ptr}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_yubienterprise_validation_rule() {
    let sb = SandboxFixture::start(Config::default()).await;
    let valid = fpr_shipment("pin.jwe", "cred.jwe");
    let long = |n: usize| json!("x".repeat(n));
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/delivery_type", json!(3), "delivery_type"),
        (
            "/recipient/recipient_firstname",
            long(16),
            "recipient.recipient_firstname",
        ),
        (
            "/recipient/recipient_firstname",
            json!(""),
            "recipient.recipient_firstname",
        ),
        (
            "/recipient/recipient_lastname",
            long(21),
            "recipient.recipient_lastname",
        ),
        (
            "/recipient/recipient_company",
            long(21),
            "recipient.recipient_company",
        ),
        (
            "/recipient/recipient_email",
            json!("not-an-email"),
            "recipient.recipient_email",
        ),
        (
            "/recipient/recipient_email",
            json!(format!("{}@x.com", "a".repeat(80))),
            "recipient.recipient_email",
        ),
        (
            "/recipient/recipient_telephone",
            json!("555-CALL-NOW"),
            "recipient.recipient_telephone",
        ),
        (
            "/recipient/recipient_telephone",
            json!("5".repeat(41)),
            "recipient.recipient_telephone",
        ),
        (
            "/mailing_address/street_line1",
            long(61),
            "mailing_address.street_line1",
        ),
        (
            "/mailing_address/street_line1",
            json!(""),
            "mailing_address.street_line1",
        ),
        (
            "/mailing_address/street_line2",
            long(61),
            "mailing_address.street_line2",
        ),
        ("/mailing_address/city", long(61), "mailing_address.city"),
        (
            "/mailing_address/region",
            json!(""),
            "mailing_address.region",
        ),
        (
            "/mailing_address/region",
            json!("Massachusetts"),
            "mailing_address.region",
        ),
        (
            "/mailing_address/postal_code",
            json!(""),
            "mailing_address.postal_code",
        ),
        (
            "/mailing_address/country_code_2",
            json!("USA"),
            "mailing_address.country_code_2",
        ),
        (
            "/shipment_items/0/product_quantity",
            json!(2),
            "shipment_items[0].product_quantity",
        ),
        (
            "/shipment_items/0/product_id",
            json!(999),
            "shipment_items[0].product_id",
        ),
        (
            "/shipment_items/0/product_id",
            json!(3),
            "shipment_items[0].product_id",
        ),
        (
            "/shipment_items/0/inventory_product_id",
            json!(15),
            "shipment_items[0].inventory_product_id",
        ),
        (
            "/shipment_items/0/inventory_product_id",
            json!(999),
            "shipment_items[0].inventory_product_id",
        ),
        (
            "/shipment_items/0/customization_id",
            json!("NOPE"),
            "shipment_items[0].customization_id",
        ),
        (
            "/shipment_items/0/product_customizations/0/fido_pin_request",
            Value::Null,
            "shipment_items[0].product_customizations[0].fido_pin_request",
        ),
        (
            "/shipment_items/0/product_customizations/0/fido_credential_requests",
            json!([]),
            "shipment_items[0].product_customizations[0].fido_credential_requests",
        ),
        ("/recipient", Value::Null, "recipient"),
        ("/mailing_address", Value::Null, "mailing_address"),
    ];
    for (ptr, value, field) in cases {
        let mut body = valid.clone();
        set(&mut body, ptr, value.clone());
        let (s, v, _) = sb.ye(POST, "/v1/fpr/shipments", Some(body)).await;
        assert_eq!(
            (s, v["field"].as_str().unwrap_or_default()),
            (400, field),
            "{ptr} = {value}: {v}"
        );
    }
    // Two items, and the rules that depend on the country.
    let mut two = valid.clone();
    let item = two["shipment_items"][0].clone();
    two["shipment_items"].as_array_mut().unwrap().push(item);
    assert_eq!(
        sb.ye(POST, "/v1/fpr/shipments", Some(two)).await.1["field"],
        "shipment_items"
    );
    let mut gb = valid.clone();
    set(&mut gb, "/mailing_address/country_code_2", json!("GB"));
    set(&mut gb, "/mailing_address/region", json!(""));
    assert_eq!(
        sb.ye(POST, "/v1/fpr/shipments", Some(gb)).await.0,
        200,
        "region is optional outside US and CA"
    );
    let mut india = valid.clone();
    set(&mut india, "/mailing_address/country_code_2", json!("IN"));
    set(
        &mut india,
        "/recipient/recipient_telephone",
        json!("9".repeat(200)),
    );
    assert_eq!(
        sb.ye(POST, "/v1/fpr/shipments", Some(india)).await.0,
        200,
        "255 characters for IN"
    );
    let mut both = valid.clone();
    set(&mut both, "/mailing_address/street_line1", long(60));
    set(&mut both, "/mailing_address/street_line2", long(60));
    assert_eq!(
        sb.ye(POST, "/v1/fpr/shipments", Some(both)).await.0,
        200,
        "60 + 60 is allowed"
    );
    let (_, list, _) = sb.admin(GET, "/shipments", None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        3,
        "only the valid requests created shipments"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_catalogue_edit_cancel_and_inventory() {
    let sb = SandboxFixture::start(Config {
        clock: Clock::Manual,
        inventory_credits: 2,
        ..Config::default()
    })
    .await;
    let unauth = sb.http.get(sb.url("/v1/products")).send().await.unwrap();
    assert_eq!(unauth.status().as_u16(), 401);
    let wrong = sb
        .http
        .get(sb.url("/v1/products"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let (_, products, _) = sb.ye(GET, "/v1/products", None).await;
    assert!(
        products["products"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["product_id"] == 29)
    );

    let (s, a, _) = sb
        .ye(POST, "/v1/fpr/shipments", Some(fpr_shipment("p", "c")))
        .await;
    assert_eq!(s, 200);
    let a = a["shipment_id"].as_str().unwrap().to_owned();
    let (_, inv, _) = sb.ye(GET, "/v1/inventory", None).await;
    let qty = |inv: &Value| {
        inv["organization_product_inventory"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["product_id"] == 106)
            .unwrap()["organization_product_quantity"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(qty(&inv), 1);

    // Editable below state 10.
    let (s, exact, _) = sb.ye(GET, &format!("/v1/shipments_exact/{a}"), None).await;
    assert_eq!((s, exact["shipment_state_id"].as_u64()), (200, Some(2)));
    let edit = json!({"delivery_type": 2, "country_code_2": "US", "recipient": "Example", "recipient_email": "new@example.com",
        "recipient_firstname": "Ny", "recipient_lastname": "Namn", "recipient_telephone": "555", "street_line1": "1 New Road",
        "street_line2": "", "city": "Boston", "region": "MA", "postal_code": "02108"});
    let (s, edited, _) = sb
        .ye(
            Method::PUT,
            &format!("/v1/shipments_exact/{a}"),
            Some(edit.clone()),
        )
        .await;
    assert_eq!(
        (s, edited["recipient_email"].as_str()),
        (200, Some("new@example.com"))
    );
    let mut bad_edit = edit.clone();
    bad_edit["recipient_firstname"] = json!("x".repeat(16));
    assert_eq!(
        sb.ye(
            Method::PUT,
            &format!("/v1/shipments_exact/{a}"),
            Some(bad_edit)
        )
        .await
        .1["field"],
        "recipient_firstname"
    );
    // Locked at 10: no edit, no delete.
    sb.admin(
        POST,
        &format!("/shipments/{a}/advance"),
        Some(json!({"to": 10})),
    )
    .await;
    assert_eq!(
        sb.ye(Method::PUT, &format!("/v1/shipments_exact/{a}"), Some(edit))
            .await
            .0,
        400
    );
    assert_eq!(
        sb.ye(Method::DELETE, &format!("/v1/shipments_exact/{a}"), None)
            .await
            .0,
        400
    );

    // The second uses the last credit; a third is refused; a delete gives the credit back.
    let (_, b, _) = sb
        .ye(POST, "/v1/fpr/shipments", Some(fpr_shipment("p", "c")))
        .await;
    let b = b["shipment_id"].as_str().unwrap().to_owned();
    let (s, exhausted, _) = sb
        .ye(POST, "/v1/fpr/shipments", Some(fpr_shipment("p", "c")))
        .await;
    assert_eq!(
        (s, exhausted["field"].as_str()),
        (400, Some("shipment_items[0].inventory_product_id"))
    );
    assert_eq!(
        sb.ye(Method::DELETE, &format!("/v1/shipments_exact/{b}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        sb.ye(GET, &format!("/v1/fpr/shipments/{b}"), None).await.0,
        404
    );
    assert_eq!(qty(&sb.ye(GET, "/v1/inventory", None).await.1), 1);
    assert_eq!(sb.ye(GET, "/v1/fpr/shipments/unknown", None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_error_states_and_clear() {
    let sb = SandboxFixture::start(Config::default()).await;
    let options = fpr_testkit::creation_options("err-user");
    let (id, _, _) = ship(&sb, &options).await;
    for state in [1, 6, 7, 8, 9, 99, 105, 106] {
        let (s, _, _) = sb
            .admin(
                POST,
                &format!("/shipments/{id}/error"),
                Some(json!({"state": state})),
            )
            .await;
        assert_eq!(s, 200);
        let (_, v, _) = sb.ye(GET, &format!("/v1/fpr/shipments/{id}"), None).await;
        assert_eq!(v["shipment_state"]["shipment_state_id"], state);
        assert!(
            !v["shipment_state"]["shipment_state_message"]
                .as_str()
                .unwrap()
                .is_empty()
        );
        assert!(
            v["shipment_items"][0].get("product_data").is_none(),
            "no responses in an error state"
        );
    }
    assert_eq!(
        sb.admin(
            POST,
            &format!("/shipments/{id}/error"),
            Some(json!({"state": 103}))
        )
        .await
        .0,
        400
    );
    sb.admin(
        POST,
        &format!("/shipments/{id}/error"),
        Some(json!({"state": 7, "message": "Address is undeliverable: no such street"})),
    )
    .await;
    assert_eq!(
        sb.ye(GET, &format!("/v1/fpr/shipments/{id}"), None).await.1["shipment_state"]["shipment_state_message"],
        "Address is undeliverable: no such street"
    );
    sb.admin(POST, &format!("/shipments/{id}/clear"), None)
        .await;
    let (_, v, _) = sb.ye(GET, &format!("/v1/fpr/shipments/{id}"), None).await;
    assert_eq!(v["shipment_state"]["shipment_state_id"], 103);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_kind() {
    let sb = SandboxFixture::start(Config::default()).await;
    // error_rate + status, limited by count.
    sb.admin(
        Method::PUT,
        "/faults/ye.products",
        Some(json!({"error_rate": 1.0, "status": 503, "count": 2})),
    )
    .await;
    assert_eq!(sb.ye(GET, "/v1/products", None).await.0, 503);
    assert_eq!(sb.ye(GET, "/v1/products", None).await.0, 503);
    assert_eq!(
        sb.ye(GET, "/v1/products", None).await.0,
        200,
        "count exhausted"
    );
    // 429 carries Retry-After.
    sb.admin(
        Method::PUT,
        "/faults/ye.inventory",
        Some(json!({"error_rate": 1.0, "status": 429})),
    )
    .await;
    let (s, _, h) = sb.ye(GET, "/v1/inventory", None).await;
    assert_eq!((s, h.get("retry-after").is_some()), (429, true));
    // Malformed body.
    sb.admin(
        Method::PUT,
        "/faults/ye.get",
        Some(json!({"malformed_body": true})),
    )
    .await;
    let raw = sb
        .http
        .get(sb.url("/v1/fpr/shipments/x"))
        .bearer_auth(&sb.config.ye_token)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 200);
    assert!(serde_json::from_slice::<Value>(&raw.bytes().await.unwrap()).is_err());
    sb.admin(Method::DELETE, "/faults/ye.get", None).await;
    // Latency: the call still answers.
    sb.admin(
        Method::PUT,
        "/faults/ye.products",
        Some(json!({"latency_ms": 50})),
    )
    .await;
    assert_eq!(sb.ye(GET, "/v1/products", None).await.0, 200);
    let (_, listed, _) = sb.admin(GET, "/faults", None).await;
    assert_eq!(listed["ye.products"]["latency_ms"], 50);
    // Bad fault definitions are refused.
    assert_eq!(
        sb.admin(Method::PUT, "/faults/x", Some(json!({"error_rate": 2.0})))
            .await
            .0,
        400
    );
    assert_eq!(
        sb.admin(Method::PUT, "/faults/x", Some(json!({"nonsense": 1})))
            .await
            .0,
        400
    );
    sb.admin(Method::DELETE, "/faults", None).await;

    let signing = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    let response = |shipment: &Value| {
        shipment["shipment_items"][0]["product_data"][0]["fido_pin_response"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // bad_signature: a published kid, another key.
    sb.admin(
        Method::PUT,
        "/faults/yubico.fulfilment",
        Some(json!({"bad_signature": true})),
    )
    .await;
    let (_, key, s) = ship(&sb, &fpr_testkit::creation_options("f1")).await;
    assert!(matches!(
        open(&response(&s), &key, &signing),
        Err(fpr_jose::Error::BadSignature { .. })
    ));
    // wrong_kid: a kid that is not published.
    sb.admin(
        Method::PUT,
        "/faults/yubico.fulfilment",
        Some(json!({"wrong_kid": true})),
    )
    .await;
    let (_, key, s) = ship(&sb, &fpr_testkit::creation_options("f2")).await;
    assert!(matches!(
        open(&response(&s), &key, &signing),
        Err(fpr_jose::Error::UnknownKid(_))
    ));
    // replayed_response: an earlier shipment's responses (made for another key).
    sb.admin(Method::DELETE, "/faults/yubico.fulfilment", None)
        .await;
    let (_, first_key, first) = ship(&sb, &fpr_testkit::creation_options("f3")).await;
    assert!(open(&response(&first), &first_key, &signing).is_ok());
    sb.admin(
        Method::PUT,
        "/faults/yubico.fulfilment",
        Some(json!({"replayed_response": true})),
    )
    .await;
    let (_, key, replayed) = ship(&sb, &fpr_testkit::creation_options("f4")).await;
    assert_eq!(response(&replayed), response(&first));
    assert!(matches!(
        open(&response(&replayed), &key, &signing),
        Err(fpr_jose::Error::KidMismatch { .. })
    ));
    // A request the sandbox Yubico cannot decrypt ends in state 8 with a message.
    sb.admin(Method::DELETE, "/faults", None).await;
    let (s, bad, _) = sb
        .ye(
            POST,
            "/v1/fpr/shipments",
            Some(fpr_shipment("not-a-jwe", "not-a-jwe")),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v, _) = sb
        .ye(
            GET,
            &format!("/v1/fpr/shipments/{}", bad["shipment_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(v["shipment_state"]["shipment_state_id"], 8);
}

async fn token_reply(sb: &SandboxFixture, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = sb
        .http
        .post(sb.url(&format!("/{}/oauth2/v2.0/token", sb.config.tenant)))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_tokens_users_and_registration_rules() {
    let sb = SandboxFixture::start(Config {
        graph_rate_per_s: Some(1000),
        ..Config::default()
    })
    .await;
    let c = &sb.config;
    // Token endpoint errors, as Entra words them.
    let (s, v) = token_reply(
        &sb,
        &[
            ("client_id", &c.graph_client_id),
            ("client_secret", "wrong"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215")
    );
    let (s, v) = token_reply(
        &sb,
        &[
            ("client_id", "nobody"),
            ("client_secret", "x"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((s, v["error_codes"][0].as_u64()), (400, Some(700016)));
    let (s, v) = token_reply(
        &sb,
        &[
            ("client_id", &c.graph_client_id),
            ("client_secret", &c.graph_client_secret),
            ("scope", "api://other/.default"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_scope")));
    // A caller token for fpr's own API verifies with the tenant's published keys.
    let scope = format!("{}/.default", c.api_audience);
    let (s, v) = token_reply(
        &sb,
        &[
            ("client_id", &c.caller_client_id),
            ("client_secret", &c.caller_client_secret),
            ("scope", &scope),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let keys: Value = sb
        .http
        .get(sb.url(&format!("/{}/discovery/v2.0/keys", c.tenant)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = fpr_sandbox::tokens::verify(
        v["access_token"].as_str().unwrap(),
        keys["keys"].as_array().unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            claims["aud"].as_str(),
            claims["azp"].as_str(),
            claims["idtyp"].as_str()
        ),
        (
            Some(c.api_audience.as_str()),
            Some(c.caller_client_id.as_str()),
            Some("app")
        )
    );
    // The caller token does not open Graph.
    let (s, _, _) = sb
        .send_with(
            GET,
            "/v1.0/users/megan.bowen@contoso.test",
            v["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(
        sb.http
            .get(sb.url("/v1.0/users/x"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    // Users by UPN and id, $select, manager.
    let (s, u, _) = sb
        .graph(
            GET,
            "/v1.0/users/adele.vance@contoso.test?$select=id,mail,userPrincipalName,otherMails",
            None,
        )
        .await;
    assert_eq!(
        (s, u["mail"].as_str()),
        (200, Some("adele.vance@contoso.test"))
    );
    assert!(u["otherMails"].is_array() && u.get("givenName").is_none());
    let (_, by_id, _) = sb
        .graph(
            GET,
            &format!("/beta/users/{}", u["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(by_id["userPrincipalName"], "adele.vance@contoso.test");
    let (s, m, _) = sb
        .graph(GET, "/v1.0/users/adele.vance@contoso.test/manager", None)
        .await;
    assert_eq!(
        (s, m["mail"].as_str(), m["@odata.type"].as_str()),
        (
            200,
            Some("megan.bowen@contoso.test"),
            Some("#microsoft.graph.user")
        )
    );
    assert_eq!(
        sb.graph(GET, "/v1.0/users/lee.gu@contoso.test/manager", None)
            .await
            .0,
        404,
        "no manager"
    );
    let (_, nomail, _) = sb
        .graph(GET, "/v1.0/users/johanna.lorenz@contoso.test/manager", None)
        .await;
    assert!(nomail["mail"].is_null(), "a manager without mail");
    let (s, e, _) = sb.graph(GET, "/v1.0/users/ghost@contoso.test", None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("Request_ResourceNotFound"))
    );

    // creationOptions: the function form on beta (5 to 43,200), v1.0 without a parameter.
    let base = "/users/alex.wilber@contoso.test/authentication/fido2Methods";
    assert_eq!(
        sb.graph(
            GET,
            &format!("/beta{base}/creationOptions?challengeTimeoutInMinutes=60"),
            None
        )
        .await
        .0,
        405
    );
    assert_eq!(
        sb.graph(
            GET,
            &format!("/beta{base}/creationOptions(challengeTimeoutInMinutes=4)"),
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        sb.graph(
            GET,
            &format!("/beta{base}/creationOptions(challengeTimeoutInMinutes=43201)"),
            None
        )
        .await
        .0,
        400
    );
    let (s, beta, _) = sb
        .graph(
            GET,
            &format!("/beta{base}/creationOptions(challengeTimeoutInMinutes=43200)"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        beta["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .ends_with('='),
        "beta: padded standard base64"
    );
    let (s, v1, _) = sb
        .graph(GET, &format!("/v1.0{base}/creationOptions"), None)
        .await;
    assert_eq!(s, 200);
    let ch = v1["publicKey"]["challenge"].as_str().unwrap();
    assert!(!ch.contains(['=', '+', '/']), "v1.0: unpadded base64url");
    assert_eq!(v1["publicKey"]["rp"]["id"], "login.microsoft.com");

    // Registration rules: a challenge issued to someone else, displayName, forbidden fields.
    let diego = sb.user("diego.siciliani@contoso.test").await;
    let options = creation_options(&sb, diego["id"].as_str().unwrap()).await;
    let (_, key, shipment) = ship(&sb, &options).await;
    let signing = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    let pd = &shipment["shipment_items"][0]["product_data"][0];
    let cred: CredentialResponse = serde_json::from_slice(
        &open(
            pd["fido_credential_responses"][0].as_str().unwrap(),
            &key,
            &signing,
        )
        .unwrap(),
    )
    .unwrap();
    let body = |name: &str| {
        json!({"displayName": name, "publicKeyCredential": {"id": cred.credential.id, "response": {
            "clientDataJSON": cred.credential.response.client_data_json, "attestationObject": cred.credential.response.attestation_object}}})
    };
    let (s, e, _) = sb
        .graph(POST, &format!("/v1.0{base}"), Some(body("key")))
        .await;
    assert_eq!(
        (s, e["error"]["message"].as_str()),
        (400, Some("The challenge was not issued to this user."))
    );
    let diego_path = format!(
        "/v1.0/users/{}/authentication/fido2Methods",
        diego["id"].as_str().unwrap()
    );
    assert_eq!(
        sb.graph(POST, &diego_path, Some(body(&"x".repeat(31))))
            .await
            .0,
        400
    );
    let mut with_raw = body("key");
    with_raw["publicKeyCredential"]["rawId"] = json!("abc");
    assert_eq!(sb.graph(POST, &diego_path, Some(with_raw)).await.0, 400);
    assert_eq!(
        sb.graph(POST, &diego_path, Some(json!("a string"))).await.1["error"]["message"],
        "The request is missing a fido2AuthenticationMethod entity"
    );
    let (s, m, _) = sb.graph(POST, &diego_path, Some(body("Diego's key"))).await;
    assert_eq!(s, 201);
    let mid = m["id"].as_str().unwrap();
    assert_eq!(
        sb.graph(GET, &format!("{diego_path}/{mid}"), None).await.0,
        200
    );
    assert_eq!(
        sb.graph(Method::DELETE, &format!("{diego_path}/{mid}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        sb.graph(Method::DELETE, &format!("{diego_path}/{mid}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        sb.admin(GET, "/credentials", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_throttles_with_retry_after() {
    let sb = SandboxFixture::start(Config {
        graph_rate_per_s: Some(2),
        ..Config::default()
    })
    .await;
    let token = sb.graph_token().await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (s, _, h) = sb
            .send_with(GET, "/v1.0/users/megan.bowen@contoso.test", &token)
            .await;
        if s == 429 {
            assert!(h.get("retry-after").is_some());
        }
        statuses.push(s);
    }
    assert!(
        statuses.contains(&429) && statuses.contains(&200),
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_preregistration_end_to_end() {
    let sb = SandboxFixture::start(Config::default()).await;
    let transport = jwks(&sb, "/.well-known/yubico-transport-keys.jwks").await;
    let signing = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    let ada = sb.user("ada.lovelace@example.test").await;
    let uid = ada["id"].as_str().unwrap();
    let p = "/webauthn-registration/api/v1";
    // Users API.
    let (s, profile, h) = sb
        .okta(
            GET,
            &format!("/api/v1/users/{}", ada["login"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (s, profile["profile"]["countryCode"].as_str()),
        (200, Some("US"))
    );
    assert!(h.get("etag").is_some() && h.get("x-rate-limit-remaining").is_some());
    // Bad input.
    let t = transport.keys()[0].to_json();
    let bad = sb.okta(POST, &format!("{p}/enroll"), Some(json!({"enrollmentRpIds": ["https://x/"], "fulfillmentProvider": "yubico", "userId": uid, "yubicoTransportKeyJWK": t}))).await;
    assert_eq!(
        (bad.0, bad.1["errorCode"].as_str()),
        (400, Some("E0000001"))
    );
    let ghost = sb.okta(POST, &format!("{p}/enroll"), Some(json!({"enrollmentRpIds": ["example.okta.com"], "fulfillmentProvider": "yubico", "userId": "00unobody", "yubicoTransportKeyJWK": t}))).await;
    assert_eq!(
        (ghost.0, ghost.1["errorCode"].as_str()),
        (404, Some("E0000007"))
    );
    assert_eq!(
        sb.http
            .post(sb.url(&format!("{p}/enroll")))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    // enroll -> YubiEnterprise -> activate -> send-pin.
    let (s, enrolled, _) = sb.okta(POST, &format!("{p}/enroll"), Some(json!({"enrollmentRpIds": ["example.okta.com"], "fulfillmentProvider": "yubico", "userId": uid, "yubicoTransportKeyJWK": t}))).await;
    assert_eq!(s, 200, "{enrolled}");
    let eid = enrolled["credRequests"][0]["authenticatorEnrollmentId"]
        .as_str()
        .unwrap();
    let body = fpr_shipment(
        enrolled["pinRequestJwe"].as_str().unwrap(),
        enrolled["credRequests"][0]["credRequestJwe"]
            .as_str()
            .unwrap(),
    );
    let (_, created, _) = sb.ye(POST, "/v1/fpr/shipments", Some(body)).await;
    let (_, shipped, _) = sb
        .ye(
            GET,
            &format!(
                "/v1/fpr/shipments/{}",
                created["shipment_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    let pd = &shipped["shipment_items"][0]["product_data"][0];
    let signing_array: Vec<Value> = signing.keys().iter().map(|k| k.to_json()).collect();
    let activate = |pin_jwe: &str| {
        json!({"credResponses": [{"authenticatorEnrollmentId": eid, "credResponseJwe": pd["fido_credential_responses"][0]}],
               "fulfillmentProvider": "yubico", "pinResponseJwe": pin_jwe, "serial": pd["serial_number"], "userId": uid,
               "version": pd["firmware_version"], "yubicoSigningJwks": signing_array})
    };
    let tampered = format!("{}x", pd["fido_pin_response"].as_str().unwrap());
    let (s, refused, _) = sb
        .okta(POST, &format!("{p}/activate"), Some(activate(&tampered)))
        .await;
    assert_eq!(
        (s, refused["errorSummary"].as_str()),
        (
            400,
            Some("Api validation failed: pinResponseJwe|webAuthnCredResponse")
        )
    );
    assert!(refused["errorCauses"].is_object());
    assert_eq!(sb.okta(POST, &format!("{p}/send-pin"), Some(json!({"authenticatorEnrollmentId": eid, "fulfillmentProvider": "yubico", "userId": uid}))).await.0, 400, "not active yet");
    let (s, activated, _) = sb
        .okta(
            POST,
            &format!("{p}/activate"),
            Some(activate(pd["fido_pin_response"].as_str().unwrap())),
        )
        .await;
    assert_eq!(
        (s, activated["authenticatorEnrollmentIds"][0].as_str()),
        (200, Some(eid)),
        "{activated}"
    );
    let (_, list, _) = sb
        .okta(GET, &format!("{p}/users/{uid}/enrollments"), None)
        .await;
    assert_eq!(
        (
            list[0]["status"].as_str(),
            list[0]["profile"]["presetPinAvailable"].as_bool()
        ),
        (Some("ACTIVE"), Some(true))
    );
    let send =
        json!({"authenticatorEnrollmentId": eid, "fulfillmentProvider": "yubico", "userId": uid});
    assert_eq!(
        sb.okta(POST, &format!("{p}/send-pin"), Some(send.clone()))
            .await
            .0,
        204
    );
    let (_, mail, _) = sb
        .admin(GET, "/mailbox?to=ada.lovelace@example.test", None)
        .await;
    let messages = mail["messages"].as_array().unwrap();
    assert_eq!(
        (messages.len(), messages[0]["via"].as_str()),
        (1, Some("okta"))
    );
    assert!(
        messages[0]["body"]
            .as_str()
            .unwrap()
            .contains("Its PIN is: ")
    );
    assert_eq!(
        sb.okta(POST, &format!("{p}/send-pin"), Some(send)).await.0,
        204,
        "send-pin resends"
    );
    assert_eq!(
        sb.admin(GET, "/mailbox?to=ada.lovelace@example.test", None)
            .await
            .1["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The admin view never shows Okta's PIN.
    assert!(
        !sb.admin(GET, "/okta/enrollments", None)
            .await
            .1
            .to_string()
            .contains("Its PIN")
    );

    // mark-error and delete.
    assert_eq!(
        sb.okta(
            POST,
            &format!("{p}/users/{uid}/enrollments/{eid}/mark-error"),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        sb.okta(GET, &format!("{p}/users/{uid}/enrollments"), None)
            .await
            .1[0]["status"],
        "FULFILLMENT_ERRORED"
    );
    assert_eq!(
        sb.okta(
            Method::DELETE,
            &format!("{p}/users/{uid}/enrollments/{eid}"),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        sb.okta(GET, &format!("{p}/users/{uid}/enrollments"), None)
            .await
            .1,
        json!([])
    );
    assert_eq!(
        sb.okta(
            Method::DELETE,
            &format!("{p}/users/{uid}/enrollments/{eid}"),
            None
        )
        .await
        .0,
        404
    );
    // initiate-fulfillment-request.
    let init = json!({"userId": uid, "fulfillmentProvider": "yubico", "fulfillmentData": [{"productId": "29", "customizationId": "RXJN83", "inventoryProductId": "106"}]});
    assert_eq!(
        sb.okta(
            POST,
            &format!("{p}/initiate-fulfillment-request"),
            Some(init)
        )
        .await
        .0,
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_rate_limit_is_429_e0000047() {
    let sb = SandboxFixture::start(Config {
        okta_rate_per_s: 2,
        ..Config::default()
    })
    .await;
    let mut seen = None;
    for _ in 0..20 {
        let (s, v, h) = sb
            .okta(GET, "/api/v1/users/ada.lovelace@example.test", None)
            .await;
        if s == 429 {
            assert_eq!(h["x-rate-limit-remaining"], "0");
            seen = Some(v["errorCode"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen.as_deref(), Some("E0000047"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_over_smtp_and_webhook() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let sb = SandboxFixture::start(Config::default()).await;
    let stream = tokio::net::TcpStream::connect(sb.running.smtp_addr.unwrap())
        .await
        .unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = tokio::io::BufReader::new(r);
    let mut line = String::new();
    for cmd in [
        "",
        "EHLO test\r\n",
        "MAIL FROM:<vault@fpr.test>\r\n",
        "RCPT TO:<boss@contoso.test>\r\n",
        "DATA\r\n",
        "Subject: PIN\r\n\r\nPIN 12345678\r\n.\r\n",
        "QUIT\r\n",
    ] {
        w.write_all(cmd.as_bytes()).await.unwrap();
        loop {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        assert!(!line.starts_with('5'), "{cmd}: {line}");
    }
    let hook = sb
        .http
        .post(sb.url("/_sandbox/mailbox/webhook"))
        .header("x-fpr-signature", "t=1,v1=00")
        .json(&json!({"emails_to": ["boss@contoso.test"], "subject": "PIN", "pin": "87654321"}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 200);
    let (_, mail, _) = sb.admin(GET, "/mailbox?to=boss@contoso.test", None).await;
    let m = mail["messages"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0]["via"].as_str(), m[0]["subject"].as_str()),
        (Some("smtp"), Some("PIN"))
    );
    assert!(m[0]["body"].as_str().unwrap().contains("12345678"));
    assert_eq!(m[1]["via"], "webhook");
    sb.admin(Method::DELETE, "/mailbox", None).await;
    assert!(
        sb.admin(GET, "/mailbox", None).await.1["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_users_and_snapshot_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: Some(dir.path().to_owned()),
        seed_users: 10,
        ..Config::default()
    };
    let sb = SandboxFixture::start(config.clone()).await;
    let before = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    assert_eq!(before.keys().len(), 2);
    let (_, rotated, _) = sb.admin(POST, "/yubico/rotate/signing", None).await;
    let after = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    assert_eq!(
        after.kids(),
        rotated["kids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(after.keys().len(), 2);
    assert_eq!(
        after.kids()[1],
        before.kids()[0],
        "the newest old key stays published"
    );
    let (s, _, _) = sb.admin(POST, "/users", Some(json!({"idp": "entra", "login": "new.hire@contoso.test", "given_name": "New", "surname": "Hire", "manager": "megan.bowen@contoso.test",
        "address": {"street": "1 Road", "city": "Boston", "region": "MA", "postal_code": "02108", "country": "US"}}))).await;
    assert_eq!(s, 201);
    assert_eq!(sb.admin(POST, "/users", Some(json!({"idp": "entra", "login": "new.hire@contoso.test", "given_name": "A", "surname": "B"}))).await.0, 409);
    let (_, all, _) = sb.admin(GET, "/users", None).await;
    assert_eq!(all.as_array().unwrap().len(), 10 + 11);
    sb.running.stop().await;

    let again = SandboxFixture::start(config).await;
    assert_eq!(
        jwks(&again, "/.well-known/yubico-sign.jwks").await,
        after,
        "keys persist"
    );
    let (_, u, _) = again
        .graph(GET, "/v1.0/users/new.hire@contoso.test/manager", None)
        .await;
    assert_eq!(u["mail"], "megan.bowen@contoso.test", "state persists");
}
