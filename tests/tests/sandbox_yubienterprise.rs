//! The sandbox's YubiEnterprise over HTTP: the FIDO Pre-reg loop and Yubico's fulfilment,
//! every validation rule, the Delivery API, inventory, the admin error states and the faults.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_jose::protocol::{CredentialResponse, PinResponse};
use fpr_sandbox::{Clock, Config};
use fpr_tests::sandbox_calls::{creation_options, jwks, open, ship};
use fpr_tests::{SandboxFixture, fpr_shipment};
use reqwest::Method;
use serde_json::{Value, json};

const GET: Method = Method::GET;
const POST: Method = Method::POST;

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
    let options = fpr_tests::creation_options("err-user");
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
    let (_, key, s) = ship(&sb, &fpr_tests::creation_options("f1")).await;
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
    let (_, key, s) = ship(&sb, &fpr_tests::creation_options("f2")).await;
    assert!(matches!(
        open(&response(&s), &key, &signing),
        Err(fpr_jose::Error::UnknownKid(_))
    ));
    // replayed_response: an earlier shipment's responses (made for another key).
    sb.admin(Method::DELETE, "/faults/yubico.fulfilment", None)
        .await;
    let (_, first_key, first) = ship(&sb, &fpr_tests::creation_options("f3")).await;
    assert!(open(&response(&first), &first_key, &signing).is_ok());
    sb.admin(
        Method::PUT,
        "/faults/yubico.fulfilment",
        Some(json!({"replayed_response": true})),
    )
    .await;
    let (_, key, replayed) = ship(&sb, &fpr_tests::creation_options("f4")).await;
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
