//! The order path when upstreams fail after doing the work, answer slowly, or refuse: each
//! test here failed on the workflow before "The order path, proven" and passes after. The
//! crash cases (a process killed between a side effect and its record) are in
//! `crates/chaos/tests/crash.rs`, where the services run as processes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::time::Duration;

use fpr_proto::v1 as pb;
use fpr_tests::{
    ShipmentClient, Stack, create_request, get_shipment as get, manual_sandbox as manual,
    okta_request, okta_users, ship_at_yubico as advance, state_of as state,
};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::Code;

async fn process(client: &mut ShipmentClient) -> pb::ProcessShipmentsResponse {
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// YubiEnterprise orders placed for `email`.
async fn orders_for(stack: &Stack, email: &str) -> Vec<Value> {
    stack
        .sandbox
        .shipments()
        .await
        .into_iter()
        .filter(|s| s["recipient"]["recipient_email"] == email)
        .collect()
}

async fn mails_to(stack: &Stack, to: &str) -> usize {
    stack
        .sandbox
        .admin(Method::GET, &format!("/mailbox?to={to}"), None)
        .await
        .1["messages"]
        .as_array()
        .unwrap()
        .len()
}

/// Orders for the Okta user `u`, ships it at YubiEnterprise and processes, with `fault` on
/// `okta.send_pin`; the shipment as it then is.
async fn okta_shipped_with_send_pin_fault(
    stack: &Stack,
    client: &mut ShipmentClient,
    key: &str,
    u: &Value,
    send_pin_fault: Value,
) -> pb::Shipment {
    fault(stack, "okta.send_pin", send_pin_fault).await;
    let r = client
        .create_shipment(okta_request(key, u["login"].as_str().unwrap()))
        .await
        .unwrap()
        .into_inner();
    advance(stack, &r.yubienterprise_shipment_id).await;
    process(client).await;
    get(client, &r.shipment_id).await
}

async fn fault(stack: &Stack, route: &str, f: Value) {
    let (status, _, _) = stack
        .sandbox
        .admin(Method::PUT, &format!("/faults/{route}"), Some(f))
        .await;
    assert_eq!(status, 204, "fault on {route}");
}

/// Defect 1: an order whose answer is lost after YubiEnterprise made it (an unreadable 2xx,
/// a 500, a connection that breaks off, a hang past fpr's timeout) is adopted, never placed
/// again; two matching orders are left to a person with both ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_answer_is_lost_is_adopted_not_repeated() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let modes = [
        ("malformed", "adele.vance@contoso.test"),
        ("500", "alex.wilber@contoso.test"),
        ("drop", "diego.siciliani@contoso.test"),
        ("timeout", "sofia.johansson6@contoso.test"),
    ];
    let mut ids = Vec::new();
    for (i, (kind, user)) in modes.iter().enumerate() {
        fault(
            &stack,
            "ye.create",
            json!({"error_rate": 1.0, "mix": [kind], "after_work": 1.0, "count": 1, "hang_ms": 2500}),
        )
        .await;
        let r = client
            .create_shipment(create_request(&format!("lost-{i}"), user))
            .await
            .unwrap()
            .into_inner();
        let s = get(&mut client, &r.shipment_id).await;
        assert_eq!(
            (
                state(&s),
                s.step.as_str(),
                s.yubienterprise_shipment_id.as_str()
            ),
            (pb::ShipmentState::Ongoing, "ordering", ""),
            "{kind}: waits to be reconciled"
        );
        assert_eq!(
            orders_for(&stack, user).await.len(),
            1,
            "{kind}: YubiEnterprise made it"
        );
        ids.push((kind, user, r.shipment_id));
    }
    // Processing before the reconcile delay changes nothing.
    process(&mut client).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..3 {
        process(&mut client).await;
    }
    for (kind, user, id) in &ids {
        let s = get(&mut client, id).await;
        let made = orders_for(&stack, user).await;
        assert_eq!(made.len(), 1, "{kind}: one order, never a second");
        assert_eq!(
            (s.step.as_str(), s.yubienterprise_shipment_id.as_str()),
            ("ordered", made[0]["shipment_id"].as_str().unwrap()),
            "{kind}: the order YubiEnterprise made is adopted"
        );
        advance(&stack, &s.yubienterprise_shipment_id).await;
    }
    process(&mut client).await;
    for (kind, _, id) in &ids {
        let s = get(&mut client, id).await;
        assert_eq!(state(&s), pb::ShipmentState::Complete, "{kind}: {s:?}");
    }

    // Two orders that both match (one placed by hand in the console meanwhile): a person
    // decides, with both ids in the message; nothing is ordered.
    let user = "amara.johansson8@contoso.test";
    fault(
        &stack,
        "ye.create",
        json!({"error_rate": 1.0, "mix": ["500"], "after_work": 1.0, "count": 1}),
    )
    .await;
    let r = client
        .create_shipment(create_request("lost-twin", user))
        .await
        .unwrap()
        .into_inner();
    let mut body = fpr_tests::fpr_shipment("pin-request", "credential-request");
    body["recipient"]["recipient_email"] = json!(user);
    body["recipient"]["recipient_firstname"] = json!("Pat");
    body["recipient"]["recipient_lastname"] = json!("User");
    body["recipient"]["recipient_company"] = json!("Contoso");
    assert_eq!(
        stack
            .sandbox
            .ye(Method::POST, "/v1/fpr/shipments", Some(body))
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    process(&mut client).await;
    let s = get(&mut client, &r.shipment_id).await;
    assert_eq!(
        (state(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "order_ambiguous")
    );
    for o in orders_for(&stack, user).await {
        assert!(
            s.error_message.contains(o["shipment_id"].as_str().unwrap()),
            "{}",
            s.error_message
        );
    }
    assert_eq!(orders_for(&stack, user).await.len(), 2);
}

/// Defect 3: a PIN response that fails the vault's checks stops the shipment before the IdP
/// holds the credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_pin_response_stops_the_shipment_before_registration() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let login = "priya.johansson10@contoso.test";
    let user_id = stack.sandbox.user(login).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fault(
        &stack,
        "yubico.fulfilment",
        json!({"bad_pin_signature": true}),
    )
    .await;
    let r = client
        .create_shipment(create_request("bad-pin", login))
        .await
        .unwrap()
        .into_inner();
    advance(&stack, &r.yubienterprise_shipment_id).await;
    process(&mut client).await;
    let s = get(&mut client, &r.shipment_id).await;
    assert_eq!(
        (state(&s), s.error_kind.as_str(), s.step.as_str()),
        (pb::ShipmentState::Error, "pin_response_rejected", "shipped")
    );
    assert!(
        s.error_message.contains("bad_signature"),
        "{}",
        s.error_message
    );
    let creds = stack
        .sandbox
        .admin(Method::GET, "/credentials", None)
        .await
        .1;
    assert!(
        !creds
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["user_id"] == user_id.as_str()),
        "nothing registered in Entra ID"
    );
    assert_eq!(s.pin_deliveries, 0);
}

/// Defect 4: concurrent creates with one idempotency key make one shipment, and every caller
/// gets it (none a NOT_FOUND).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_key_make_one_shipment() {
    let stack = Stack::start(manual()).await;
    let client = stack.client().await;
    let calls = (0..16).map(|_| {
        let mut c = client.clone();
        async move {
            c.create_shipment(create_request("same-key", "ines.johansson12@contoso.test"))
                .await
                .map(|r| r.into_inner().shipment_id)
        }
    });
    let ids: Vec<String> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(
        orders_for(&stack, "ines.johansson12@contoso.test")
            .await
            .len(),
        1
    );
}

/// Defect 6: Okta's activate that worked but answered 500 is not repeated (Okta would refuse
/// it as already active); the key goes on to its PIN. Okta's own 429 (no Retry-After, only
/// `X-Rate-Limit-Reset`) is waited out. A send-pin whose answer is lost is reported, not
/// repeated, until an admin asks with ResendPin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_answers_lost_after_the_work_are_found_out() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let users = okta_users(&stack, 3).await;
    let (a, b, c) = (&users[0], &users[1], &users[2]);

    // 429 as Okta sends it: the enroll waits for the window's end, then goes through.
    fault(
        &stack,
        "okta.enroll",
        json!({"error_rate": 1.0, "status": 429, "count": 1}),
    )
    .await;
    let r = client
        .create_shipment(okta_request("okta-a", a["login"].as_str().unwrap()))
        .await
        .unwrap()
        .into_inner();
    let s = get(&mut client, &r.shipment_id).await;
    assert_eq!(
        (s.step.as_str(), state(&s)),
        ("accepted", pb::ShipmentState::Ongoing)
    );
    assert!(s.last_error.contains("HTTP 429"), "{}", s.last_error);
    assert_eq!(
        process(&mut client).await.examined,
        0,
        "not due before X-Rate-Limit-Reset"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    process(&mut client).await;
    let s = get(&mut client, &r.shipment_id).await;
    assert_eq!(s.step, "ordered", "{s:?}");

    // activate works, then answers 500: fpr reads the enrollment, finds it active, goes on.
    fault(
        &stack,
        "okta.activate",
        json!({"error_rate": 1.0, "mix": ["500"], "after_work": 1.0, "count": 1}),
    )
    .await;
    advance(&stack, &s.yubienterprise_shipment_id).await;
    process(&mut client).await;
    let s = get(&mut client, &r.shipment_id).await;
    assert_eq!(state(&s), pb::ShipmentState::Complete, "{s:?}");
    assert_eq!(mails_to(&stack, a["mail"].as_str().unwrap()).await, 1);

    // enroll works, then answers 500: the enrollment it made is useless (its requests were
    // only in the lost answer), so it is deleted and the user enrolled again; one remains.
    fault(
        &stack,
        "okta.enroll",
        json!({"error_rate": 1.0, "mix": ["500"], "after_work": 1.0, "count": 1}),
    )
    .await;
    let rc = client
        .create_shipment(okta_request("okta-c", c["login"].as_str().unwrap()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(get(&mut client, &rc.shipment_id).await.step, "accepted");
    process(&mut client).await;
    let s = get(&mut client, &rc.shipment_id).await;
    advance(&stack, &s.yubienterprise_shipment_id).await;
    process(&mut client).await;
    let s = get(&mut client, &rc.shipment_id).await;
    assert_eq!(state(&s), pb::ShipmentState::Complete, "{s:?}");
    let (_, all, _) = stack
        .sandbox
        .admin(Method::GET, "/okta/enrollments", None)
        .await;
    let mine: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["user_id"] == c["id"])
        .collect();
    assert_eq!(mine.len(), 1, "the orphan was deleted: {mine:?}");
    assert_eq!(mine[0]["status"], "ACTIVE");

    // send-pin works, then the connection breaks off: reported, one mail; ResendPin sends
    // the second on request and completes the shipment.
    let s = okta_shipped_with_send_pin_fault(
        &stack,
        &mut client,
        "okta-b",
        b,
        json!({"error_rate": 1.0, "mix": ["drop"], "after_work": 1.0, "count": 1}),
    )
    .await;
    assert_eq!(
        (state(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "pin_delivery_unknown")
    );
    let mail = b["mail"].as_str().unwrap();
    assert_eq!(mails_to(&stack, mail).await, 1);
    process(&mut client).await;
    assert_eq!(mails_to(&stack, mail).await, 1, "never repeated unasked");
    let s = client
        .resend_pin(pb::ResendPinRequest {
            shipment_id: s.shipment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&s), pb::ShipmentState::Complete, "{s:?}");
    assert_eq!(mails_to(&stack, mail).await, 2);
}

/// Defect 7: a cancel whose vault purge fails says so and leaves the shipment as it was (so
/// it can be called again); an unbounded reason is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reports_a_failed_purge_and_bounds_its_reason() {
    let mut stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let r = client
        .create_shipment(create_request("cancel-1", "yara.johansson14@contoso.test"))
        .await
        .unwrap()
        .into_inner();
    let long = client
        .cancel_shipment(pb::CancelShipmentRequest {
            shipment_id: r.shipment_id.clone(),
            reason: "x".repeat(501),
        })
        .await
        .unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
    stack.vault.stop().await;
    let down = client
        .cancel_shipment(pb::CancelShipmentRequest {
            shipment_id: r.shipment_id.clone(),
            reason: "left the company".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    let s = get(&mut client, &r.shipment_id).await;
    assert_eq!(state(&s), pb::ShipmentState::Ongoing, "not canceled");
}

/// Defect 8: a vault that never answers costs each call its deadline; CreateShipment and
/// ProcessShipments return, and the shipment waits to be retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_vault_never_stalls_the_orchestrator() {
    let sb = fpr_tests::SandboxFixture::start(manual()).await;
    let dir = tempfile::tempdir().unwrap();
    // A socket that accepts and never says a word.
    let socket = dir.path().join("hung.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut cfg = fpr::sandboxed::orchestrator_config(
        &sb.config,
        &sb.running.url(),
        &sb.running.attestation_root_pem(),
    )
    .unwrap();
    cfg.listen = "127.0.0.1:0".into();
    cfg.store_path = dir.path().join("store");
    cfg.vault_socket = socket.clone();
    cfg.vault_timeout = std::time::Duration::from_secs(1);
    cfg.validate().unwrap();
    let built = fpr_orchestrator::server::build(
        &cfg,
        fpr_orchestrator::server::vault_channel(&socket).unwrap(),
    )
    .await
    .unwrap();
    let service = built.service.clone();
    let (r, took) = {
        let t = std::time::Instant::now();
        let req = tonic::Request::new(create_request("hung-1", "adele.vance@contoso.test"));
        let r = tokio::time::timeout(
            Duration::from_secs(15),
            <fpr_orchestrator::service::ShipmentService as pb::shipment_service_server::ShipmentService>::create_shipment(&service, req),
        )
        .await
        .expect("CreateShipment hung on the vault")
        .unwrap()
        .into_inner();
        (r, t.elapsed())
    };
    assert!(took < Duration::from_secs(10), "{took:?}");
    let s = service
        .workflow()
        .store()
        .get(&r.shipment_id)
        .unwrap()
        .unwrap();
    assert_eq!(s.step, fpr_domain::model::Step::Accepted);
    assert!(
        s.last_error.contains("DeadlineExceeded"),
        "{}",
        s.last_error
    );
    let run = tokio::time::timeout(Duration::from_secs(15), service.process())
        .await
        .expect("ProcessShipments hung on the vault")
        .unwrap();
    assert_eq!(run.errored, 0);
}

/// With `okta.resend_pin_when_unknown`, an Okta send-pin whose answer was lost is asked once
/// more (a second identical mail at worst) and the shipment completes without a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_send_pin_asked_again_when_the_operator_chose_so() {
    let stack = Stack::start_tweaked(manual(), |c| {
        c.okta.as_mut().unwrap().resend_pin_when_unknown = true;
    })
    .await;
    let mut client = stack.client().await;
    let u = &okta_users(&stack, 1).await[0];
    let s = okta_shipped_with_send_pin_fault(
        &stack,
        &mut client,
        "okta-again",
        u,
        json!({"error_rate": 1.0, "mix": ["500"], "after_work": 1.0, "count": 1}),
    )
    .await;
    assert_eq!(state(&s), pb::ShipmentState::Complete, "{s:?}");
    assert!(s.step_times.contains_key("pin_resent_after_unknown"));
    assert_eq!(
        mails_to(&stack, u["mail"].as_str().unwrap()).await,
        2,
        "the 500 came after Okta sent it: the price is a second mail"
    );
}
