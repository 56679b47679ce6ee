//! The orchestrator end to end for Okta (and a mixed batch): enroll → YubiEnterprise →
//! activate → send-pin, against the sandbox's Okta, over real sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_tests::{
    Stack, captured_logs, create_request, get_shipment as get, manual_sandbox as manual,
    okta_request, okta_users, read_tree, ship_at_yubico as advance, state_of as state,
};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;

async fn enrollments(stack: &Stack, user_id: &str) -> Vec<Value> {
    let (_, all, _) = stack
        .sandbox
        .admin(Method::GET, "/okta/enrollments", None)
        .await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["user_id"] == user_id)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_okta_shipments_and_a_mixed_batch_complete() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let users = okta_users(&stack, 20).await;
    assert_eq!(users.len(), 20);
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let r = client
            .create_shipment(okta_request(
                &format!("okta-{i}"),
                u["login"].as_str().unwrap(),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            !r.yubienterprise_shipment_id.is_empty(),
            "ordered with Okta's JWEs"
        );
        ids.push(r);
    }
    // A mixed batch: Entra users in the same run.
    let mut entra = Vec::new();
    for (i, login) in [
        "adele.vance@contoso.test",
        "alex.wilber@contoso.test",
        "diego.siciliani@contoso.test",
    ]
    .iter()
    .enumerate()
    {
        entra.push(
            client
                .create_shipment(create_request(&format!("mixed-{i}"), login))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    for r in ids.iter().chain(&entra) {
        advance(&stack, &r.yubienterprise_shipment_id).await;
    }
    let run = client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((run.completed, run.errored), (23, 0), "{run:?}");

    let mut serials = Vec::new();
    for (r, u) in ids.iter().zip(&users) {
        let s = get(&mut client, &r.shipment_id).await;
        assert_eq!(state(&s), pb::ShipmentState::Complete, "{s:?}");
        assert_eq!(s.pin_deliveries, 1);
        let e = enrollments(&stack, u["id"].as_str().unwrap()).await;
        assert_eq!(
            (e.len(), e[0]["status"].as_str()),
            (1, Some("ACTIVE")),
            "enrollment active at Okta"
        );
        let (_, mail, _) = stack
            .sandbox
            .admin(
                Method::GET,
                &format!("/mailbox?to={}", u["mail"].as_str().unwrap()),
                None,
            )
            .await;
        let m = mail["messages"].as_array().unwrap();
        assert_eq!(
            (m.len(), m[0]["via"].as_str()),
            (1, Some("okta")),
            "the PIN reached the mailbox through send-pin"
        );
        assert!(m[0]["body"].as_str().unwrap().contains(&s.serial_number));
        serials.push(s.serial_number);
    }
    for r in &entra {
        assert_eq!(
            state(&get(&mut client, &r.shipment_id).await),
            pb::ShipmentState::Complete
        );
    }
    // fpr never held an Okta PIN: none in its store, none in any log line.
    let (_, mail, _) = stack.sandbox.admin(Method::GET, "/mailbox", None).await;
    let pins: Vec<String> = mail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["via"] == "okta")
        .map(|m| {
            m["body"]
                .as_str()
                .unwrap()
                .split("Its PIN is: ")
                .nth(1)
                .unwrap()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect()
        })
        .collect();
    assert_eq!(pins.len(), 20);
    let files = read_tree(&stack.store);
    let logs = captured_logs();
    for pin in &pins {
        assert!(
            !files.windows(pin.len()).any(|w| w == pin.as_bytes()),
            "Okta PIN in the orchestrator store"
        );
        assert!(
            !logs.contains(&format!("PIN is: {pin}")),
            "Okta PIN in a log line"
        );
    }
    // ResendPin for Okta calls send-pin again.
    let resent = client
        .resend_pin(pb::ResendPinRequest {
            shipment_id: ids[0].shipment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resent.pin_deliveries, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_error_paths() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let sb = &stack.sandbox;

    // A missing profile field is INVALID_ARGUMENT naming the Okta attribute; nothing is ordered.
    let err = client
        .create_shipment(okta_request("o-1", "alan.turing@example.test"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let v = err.get_details_bad_request().unwrap().field_violations;
    let street = v
        .iter()
        .find(|f| f.field == "yubico_shipment_request.mailing_address.street_line1")
        .expect("street_line1 reported");
    assert!(
        street.description.contains("streetAddress"),
        "{}",
        street.description
    );
    assert!(sb.shipments().await.is_empty());
    // Set in the request, the same user ships.
    let mut fixed = okta_request("o-1b", "alan.turing@example.test");
    fixed
        .yubico_shipment_request
        .as_mut()
        .unwrap()
        .mailing_address = Some(pb::MailingAddress {
        street_line1: "2 Bletchley Park".into(),
        ..Default::default()
    });
    let ok = client.create_shipment(fixed).await.unwrap().into_inner();
    assert!(!ok.yubienterprise_shipment_id.is_empty());
    // An unknown Okta user.
    let err = client
        .create_shipment(okta_request("o-2", "nobody@example.test"))
        .await
        .unwrap_err();
    assert_eq!(
        err.get_details_bad_request().unwrap().field_violations[0].field,
        "user_id"
    );

    let users = okta_users(&stack, 3).await;
    let uid = |i: usize| users[i]["id"].as_str().unwrap().to_owned();
    let login = |i: usize| users[i]["login"].as_str().unwrap().to_owned();

    // A YubiEnterprise error state → error here and mark-error at Okta.
    let a = client
        .create_shipment(okta_request("o-3", &login(0)))
        .await
        .unwrap()
        .into_inner();
    sb.admin(
        Method::POST,
        &format!("/shipments/{}/error", a.yubienterprise_shipment_id),
        Some(json!({"state": 9})),
    )
    .await;
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    let s = get(&mut client, &a.shipment_id).await;
    assert_eq!(
        (state(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "yubienterprise_state_9")
    );
    assert_eq!(
        enrollments(&stack, &uid(0)).await[0]["status"],
        "FULFILLMENT_ERRORED"
    );

    // Cancel → the enrollment is deleted and the YubiEnterprise shipment is gone.
    let c = client
        .create_shipment(okta_request("o-4", &login(1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enrollments(&stack, &uid(1)).await.len(), 1);
    let canceled = client
        .cancel_shipment(pb::CancelShipmentRequest {
            shipment_id: c.shipment_id.clone(),
            reason: "duplicate".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&canceled), pb::ShipmentState::Canceled);
    assert!(enrollments(&stack, &uid(1)).await.is_empty());
    assert_eq!(
        sb.ye(
            Method::GET,
            &format!("/v1/fpr/shipments/{}", c.yubienterprise_shipment_id),
            None
        )
        .await
        .0,
        404
    );

    // An Okta 429 storm on activate: deferred, then complete.
    sb.admin(
        Method::PUT,
        "/faults/okta.activate",
        Some(json!({"error_rate": 1.0, "status": 429, "count": 3})),
    )
    .await;
    let t = client
        .create_shipment(okta_request("o-5", &login(2)))
        .await
        .unwrap()
        .into_inner();
    advance(&stack, &t.yubienterprise_shipment_id).await;
    let first = client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(first.deferred >= 1, "{first:?}");
    assert!(
        get(&mut client, &t.shipment_id)
            .await
            .last_error
            .contains("429")
    );
    let mut done = false;
    for _ in 0..40 {
        client
            .process_shipments(pb::ProcessShipmentsRequest {})
            .await
            .unwrap();
        if state(&get(&mut client, &t.shipment_id).await) == pb::ShipmentState::Complete {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(done, "completes after the storm");
    assert_eq!(enrollments(&stack, &uid(2)).await[0]["status"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_oauth_service_app_with_private_key_jwt() {
    let key = rcgen::KeyPair::generate().unwrap();
    let point = key.public_key_raw();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "fpr-key-1", "use": "sig",
        "x": fpr_jose::util::b64e(&point[1..33]), "y": fpr_jose::util::b64e(&point[33..])});
    let stack = Stack::start_with(
        manual(),
        Some(("fpr-okta-app", &key.serialize_pem(), "fpr-key-1")),
    )
    .await;
    let mut client = stack.client().await;
    let login = okta_users(&stack, 1).await[0]["login"]
        .as_str()
        .unwrap()
        .to_owned();

    // The app is not registered yet: Okta refuses the assertion, nothing is ordered.
    let err = client
        .create_shipment(okta_request("oauth-0", &login))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    assert!(err.message().contains("401"), "{}", err.message());

    assert_eq!(
        stack
            .sandbox
            .admin(
                Method::PUT,
                "/okta/apps/fpr-okta-app",
                Some(json!({"keys": [jwk]}))
            )
            .await
            .0,
        204
    );
    let r = client
        .create_shipment(okta_request("oauth-1", &login))
        .await
        .unwrap()
        .into_inner();
    advance(&stack, &r.yubienterprise_shipment_id).await;
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    assert_eq!(
        state(&get(&mut client, &r.shipment_id).await),
        pb::ShipmentState::Complete
    );
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.settings["OKTA_AUTH"], "oauth private_key_jwt");

    // A group order reads the group with a token of okta.groups.read, asked for apart (the
    // sandbox refuses the users token there, as Okta does).
    let other = okta_users(&stack, 2).await[1]["login"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, g, _) = stack
        .sandbox
        .admin(
            Method::POST,
            "/groups",
            Some(json!({"idp": "okta", "name": "OAuth pilot", "members": [login, other]})),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    let plan = client
        .plan_group_order(pb::GroupOrderRequest {
            idp: pb::Idp::Okta as i32,
            group: "OAuth pilot".into(),
            yubico_shipment_request: okta_request("oauth-g", &login).yubico_shipment_request,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((plan.to_order, plan.skipped), (1, 1), "{plan:#?}");
}

/// `fpr batch`'s checking pass, 32 rows at a time: Okta profile look-ups that arrive while one
/// is under way go out together as searches, so Okta's rate limit is spent a few times, not
/// once a row. Rows named by login (any case) or by id are found; an unknown login is still
/// refused for itself, and ordering afterwards reuses the profiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_share_okta_searches() {
    let stack = Stack::start(fpr_sandbox::Config {
        seed_users: 200,
        ..manual()
    })
    .await;
    let client = stack.client().await;
    let users = okta_users(&stack, 80).await;
    assert_eq!(users.len(), 80);
    let mut keys: Vec<String> = users
        .iter()
        .enumerate()
        .map(|(i, u)| match i % 3 {
            0 => u["id"].as_str().unwrap().to_owned(),
            1 => u["login"].as_str().unwrap().to_uppercase(),
            _ => u["login"].as_str().unwrap().to_owned(),
        })
        .collect();
    keys.push("nobody.at.all@example.com".into());
    // Each look-up takes a while, so that the calls surely meet one under way.
    for route in ["okta.users", "okta.users_search"] {
        stack
            .sandbox
            .admin(
                Method::PUT,
                &format!("/faults/{route}"),
                Some(json!({"latency_ms": 300})),
            )
            .await;
    }
    let check = |i: usize, key: String, validate_only: bool| {
        let mut client = client.clone();
        async move {
            let mut r = okta_request(&format!("search-{i}"), &key);
            r.validate_only = validate_only;
            client.create_shipment(r).await
        }
    };
    let checked = futures_util::future::join_all(
        keys.iter()
            .enumerate()
            .map(|(i, k)| check(i, k.clone(), true)),
    )
    .await;
    for (r, key) in checked.iter().zip(&keys).take(80) {
        assert!(r.is_ok(), "{key}: {r:?}");
    }
    let unknown = checked[80].as_ref().unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument, "{unknown:?}");
    assert!(unknown.message().contains("user_id"), "{unknown:?}");

    let (_, calls, _) = stack.sandbox.admin(Method::GET, "/calls", None).await;
    let count = |k: &str| calls[k].as_u64().unwrap_or(0);
    let (single, searches) = (count("okta.users"), count("okta.users_search"));
    assert!(searches >= 1, "{calls}");
    // The first look-up goes alone, the unknown login is asked alone after its search; the
    // rest are answered 50 a search.
    assert!(
        single + searches <= 6,
        "{single} single look-ups and {searches} searches for 81 rows: {calls}"
    );

    // Ordering the same rows asks Okta for no profile again.
    let ordered = futures_util::future::join_all(
        keys.iter()
            .take(80)
            .enumerate()
            .map(|(i, k)| check(i, k.clone(), false)),
    )
    .await;
    assert!(ordered.iter().all(Result::is_ok), "{ordered:?}");
    let (_, after, _) = stack.sandbox.admin(Method::GET, "/calls", None).await;
    assert_eq!(
        (
            after["okta.users"].as_u64().unwrap_or(0),
            after["okta.users_search"].as_u64().unwrap_or(0)
        ),
        (single, searches),
        "{after}"
    );
}
