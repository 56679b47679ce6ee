//! The sandbox's Okta over HTTP: preregistration end to end, the Users API, rate limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_sandbox::Config;
use fpr_tests::sandbox_calls::jwks;
use fpr_tests::{SandboxFixture, fpr_shipment};
use reqwest::Method;
use serde_json::{Value, json};

const GET: Method = Method::GET;
const POST: Method = Method::POST;

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

/// fpr's Okta client asks for many users in one search and looks up alone only what the
/// search does not answer: ids and logins (any case, quotes included) are found, an unknown
/// name is None, and the sandbox answers the search as Okta does (a bad expression is
/// E0000031).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_okta_client_finds_many_users_with_one_search() {
    let sb = SandboxFixture::start(Config {
        seed_users: 20,
        ..Config::default()
    })
    .await;
    let (_, users, _) = sb.admin(Method::GET, "/users?idp=okta", None).await;
    let users = users.as_array().unwrap();
    let (_, quoted, _) = sb
        .admin(
            Method::POST,
            "/users",
            Some(json!({"idp": "okta", "login": "o\"brien\\x@example.com", "given_name": "Pat", "surname": "O'Brien"})),
        )
        .await;
    let okta = fpr_okta::Client::new(
        sb.running.url().parse().unwrap(),
        fpr_upstream::SecretSource::Inline(std::sync::Arc::new(
            sb.config.okta_token.clone().into(),
        )),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let keys = vec![
        users[0]["id"].as_str().unwrap().to_owned(),
        users[1]["login"].as_str().unwrap().to_uppercase(),
        "nobody@example.com".to_owned(),
        "o\"brien\\x@example.com".to_owned(),
    ];
    let found = okta.users(&keys).await;
    let ids: Vec<Option<String>> = found
        .into_iter()
        .map(|r| r.unwrap().map(|u| u.id))
        .collect();
    assert_eq!(
        ids,
        vec![
            users[0]["id"].as_str().map(str::to_owned),
            users[1]["id"].as_str().map(str::to_owned),
            None,
            quoted["id"].as_str().map(str::to_owned),
        ],
        "{quoted}"
    );
    let (_, calls, _) = sb.admin(Method::GET, "/calls", None).await;
    assert_eq!(calls["okta.users_search"], 1, "{calls}");
    assert_eq!(
        calls["okta.users"], 1,
        "only the unknown name alone: {calls}"
    );

    let bad = sb
        .http
        .get(sb.url("/api/v1/users?search=profile.login%20sw%20%22a%22"))
        .header("authorization", format!("SSWS {}", sb.config.okta_token))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["errorCode"], "E0000031", "{body}");
}
