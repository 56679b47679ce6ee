//! The orchestrator's refusals and error paths for Entra ID, end to end: upstream errors and
//! their kinds, retry, cancel and complete by hand; invalid fields and missing authorization.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_tests::{
    Stack, create_request, create_shipment as create, get_shipment as get,
    manual_sandbox as manual, process_shipments as process, ship_at_yubico as advance,
    state_of as state,
};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_paths() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let sb = &stack.sandbox;

    // A YubiEnterprise error state ends the shipment with its message; after the admin clears it
    // at YubiEnterprise, RetryShipment resumes it to completion.
    let a = create(&mut client, "err-1", "adele.vance@contoso.test").await;
    sb.admin(
        Method::POST,
        &format!("/shipments/{}/error", a.yubienterprise_shipment_id),
        Some(json!({"state": 7, "message": "Address is undeliverable: no such street"})),
    )
    .await;
    process(&mut client).await;
    let s = get(&mut client, &a.shipment_id).await;
    assert_eq!(
        (state(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "yubienterprise_state_7")
    );
    assert!(s.error_message.contains("no such street"));
    assert_eq!(
        process(&mut client).await.examined,
        0,
        "errors are not processed again"
    );
    sb.admin(
        Method::POST,
        &format!("/shipments/{}/clear", a.yubienterprise_shipment_id),
        None,
    )
    .await;
    advance(&stack, &a.yubienterprise_shipment_id).await;
    let retried = client
        .retry_shipment(pb::RetryShipmentRequest {
            shipment_id: a.shipment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&retried), pb::ShipmentState::Complete, "{retried:?}");

    // A forged response (bad signature) is an error: nothing registered, no PIN sent.
    let creds_before = sb
        .admin(Method::GET, "/credentials", None)
        .await
        .1
        .as_array()
        .unwrap()
        .len();
    let mails_before = sb.admin(Method::GET, "/mailbox", None).await.1["messages"]
        .as_array()
        .unwrap()
        .len();
    sb.admin(
        Method::PUT,
        "/faults/yubico.fulfilment",
        Some(json!({"bad_signature": true})),
    )
    .await;
    let f = create(&mut client, "err-2", "alex.wilber@contoso.test").await;
    advance(&stack, &f.yubienterprise_shipment_id).await;
    process(&mut client).await;
    let s = get(&mut client, &f.shipment_id).await;
    assert_eq!(
        (state(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "response_rejected")
    );
    assert!(
        s.error_message.contains("bad_signature"),
        "{}",
        s.error_message
    );
    assert_eq!(
        sb.admin(Method::GET, "/credentials", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        creds_before
    );
    assert_eq!(
        sb.admin(Method::GET, "/mailbox", None).await.1["messages"]
            .as_array()
            .unwrap()
            .len(),
        mails_before
    );
    sb.admin(Method::DELETE, "/faults", None).await;

    // A Graph 429 storm defers the shipment; it completes later.
    sb.admin(
        Method::PUT,
        "/faults/graph.fido2_post",
        Some(json!({"error_rate": 1.0, "status": 429, "count": 3})),
    )
    .await;
    let t = create(&mut client, "err-3", "diego.siciliani@contoso.test").await;
    advance(&stack, &t.yubienterprise_shipment_id).await;
    let first = process(&mut client).await;
    assert_eq!(first.deferred, 1);
    let s = get(&mut client, &t.shipment_id).await;
    assert_eq!(state(&s), pb::ShipmentState::Ongoing);
    assert!(s.last_error.contains("429"), "{}", s.last_error);
    // Bounded wait for the retries (3 throttled attempts, Retry-After 1 s each).
    let mut done = false;
    for _ in 0..40 {
        process(&mut client).await;
        if state(&get(&mut client, &t.shipment_id).await) == pb::ShipmentState::Complete {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(done, "the shipment completes after the storm");

    // Cancel while editable: gone at YubiEnterprise, canceled here; not after.
    let c = create(&mut client, "err-4", "olivia.johansson0@contoso.test").await;
    assert!(!c.yubienterprise_shipment_id.is_empty());
    let canceled = client
        .cancel_shipment(pb::CancelShipmentRequest {
            shipment_id: c.shipment_id.clone(),
            reason: "left the company".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state(&canceled), pb::ShipmentState::Canceled);
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

    // Update while editable reaches YubiEnterprise.
    let u = create(&mut client, "err-6", "emma.johansson2@contoso.test").await;
    assert!(!u.yubienterprise_shipment_id.is_empty());
    let mut addr = create_request("x", "y")
        .yubico_shipment_request
        .unwrap()
        .mailing_address
        .unwrap();
    addr.street_line1 = "1 New Street".into();
    client
        .update_shipment(pb::UpdateShipmentRequest {
            shipment_id: u.shipment_id.clone(),
            mailing_address: Some(addr.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, ye, _) = sb
        .ye(
            Method::GET,
            &format!("/v1/shipments_exact/{}", u.yubienterprise_shipment_id),
            None,
        )
        .await;
    assert_eq!(ye["street_line1"], "1 New Street");
    sb.admin(
        Method::POST,
        &format!("/shipments/{}/advance", u.yubienterprise_shipment_id),
        Some(json!({"to": 10})),
    )
    .await;
    let err = client
        .update_shipment(pb::UpdateShipmentRequest {
            shipment_id: u.shipment_id.clone(),
            mailing_address: Some(addr),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = client
        .cancel_shipment(pb::CancelShipmentRequest {
            shipment_id: u.shipment_id.clone(),
            reason: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // No manager, or a manager without mail: an error on that shipment, never a crash.
    let n = create(&mut client, "err-7", "lee.gu@contoso.test").await;
    let s = get(&mut client, &n.shipment_id).await;
    assert_eq!(
        (state(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "no_pin_recipient")
    );
    assert!(
        s.yubienterprise_shipment_id.is_empty(),
        "nothing ordered for a PIN nobody can receive"
    );
    let m = create(&mut client, "err-8", "johanna.lorenz@contoso.test").await;
    assert!(
        get(&mut client, &m.shipment_id)
            .await
            .error_message
            .contains("no mail address")
    );
    // Unknown user.
    let g = create(&mut client, "err-9", "ghost@contoso.test").await;
    assert_eq!(
        get(&mut client, &g.shipment_id).await.error_kind,
        "user_not_found"
    );
    // CompleteShipment by hand needs a reason.
    let err = client
        .complete_shipment(pb::CompleteShipmentRequest {
            shipment_id: g.shipment_id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let done = client
        .complete_shipment(pb::CompleteShipmentRequest {
            shipment_id: g.shipment_id.clone(),
            reason: "user registered a key in person".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (state(&done), done.admin_reason.as_str()),
        (
            pb::ShipmentState::Complete,
            "user registered a key in person"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_and_auth() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    type Edit = fn(&mut pb::CreateShipmentRequest);
    let cases: Vec<(Edit, &str)> = vec![
        (|r| r.idempotency_key.clear(), "idempotency_key"),
        (|r| r.idp = 0, "idp"),
        (|r| r.user_id.clear(), "user_id"),
        (
            |r| r.pin_request.as_mut().unwrap().length = 3,
            "pin_request.length",
        ),
        (
            |r| r.pin_request.as_mut().unwrap().length = 64,
            "pin_request.length",
        ),
        (
            |r| r.pin_request.as_mut().unwrap().r#type = "static".into(),
            "pin_request.type",
        ),
        (
            |r| {
                r.enrollment_contacts = Some(pb::EnrollmentContacts {
                    emails_to: vec!["nope".into()],
                })
            },
            "enrollment_contacts.emails_to[0]",
        ),
        (
            |r| r.yubico_shipment_request = None,
            "yubico_shipment_request",
        ),
        (
            |r| r.yubico_shipment_request.as_mut().unwrap().delivery_type = 3,
            "yubico_shipment_request.delivery_type",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .recipient
                    .as_mut()
                    .unwrap()
                    .recipient_firstname = "x".repeat(16)
            },
            "yubico_shipment_request.recipient.recipient_firstname",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .recipient
                    .as_mut()
                    .unwrap()
                    .recipient_lastname = "x".repeat(21)
            },
            "yubico_shipment_request.recipient.recipient_lastname",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .recipient
                    .as_mut()
                    .unwrap()
                    .recipient_company = "x".repeat(21)
            },
            "yubico_shipment_request.recipient.recipient_company",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .recipient
                    .as_mut()
                    .unwrap()
                    .recipient_email = "nope".into()
            },
            "yubico_shipment_request.recipient.recipient_email",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .recipient
                    .as_mut()
                    .unwrap()
                    .recipient_telephone = "call me".into()
            },
            "yubico_shipment_request.recipient.recipient_telephone",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .mailing_address
                    .as_mut()
                    .unwrap()
                    .street_line1 = "x".repeat(61)
            },
            "yubico_shipment_request.mailing_address.street_line1",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .mailing_address
                    .as_mut()
                    .unwrap()
                    .city = String::new()
            },
            "yubico_shipment_request.mailing_address.city",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .mailing_address
                    .as_mut()
                    .unwrap()
                    .region = "Mass".into()
            },
            "yubico_shipment_request.mailing_address.region",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .mailing_address
                    .as_mut()
                    .unwrap()
                    .postal_code = String::new()
            },
            "yubico_shipment_request.mailing_address.postal_code",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .mailing_address
                    .as_mut()
                    .unwrap()
                    .country_code_2 = "USA".into()
            },
            "yubico_shipment_request.mailing_address.country_code_2",
        ),
        (
            |r| r.yubico_shipment_request.as_mut().unwrap().shipment_items[0].product_quantity = 2,
            "yubico_shipment_request.shipment_items[0].product_quantity",
        ),
        (
            |r| r.yubico_shipment_request.as_mut().unwrap().shipment_items[0].product_id = 3,
            "yubico_shipment_request.shipment_items[0].product_id",
        ),
        (
            |r| {
                r.yubico_shipment_request.as_mut().unwrap().shipment_items[0]
                    .customization_id
                    .clear()
            },
            "yubico_shipment_request.shipment_items[0].customization_id",
        ),
        (
            |r| {
                r.yubico_shipment_request
                    .as_mut()
                    .unwrap()
                    .shipment_items
                    .clear()
            },
            "yubico_shipment_request.shipment_items",
        ),
    ];
    for (i, (edit, field)) in cases.into_iter().enumerate() {
        let mut r = create_request(&format!("bad-{i}"), "adele.vance@contoso.test");
        edit(&mut r);
        let err = client.create_shipment(r).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        let fields: Vec<String> = err
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert!(
            fields.iter().any(|f| f == field),
            "{field} not in {fields:?}"
        );
    }
    assert!(
        stack.sandbox.shipments().await.is_empty(),
        "nothing reached the sandbox"
    );
    assert_eq!(
        client
            .list_shipments(pb::ListShipmentsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .shipments
            .len(),
        0,
        "nothing stored"
    );

    // No token, a Graph token (wrong audience), a garbage token: UNAUTHENTICATED.
    let mut anon = stack.client_with(None).await;
    assert_eq!(
        anon.get_status(pb::GetStatusRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let graph = stack.sandbox.graph_token().await;
    let mut wrong = stack.client_with(Some(graph)).await;
    assert_eq!(
        wrong
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let mut junk = stack
        .client_with(Some("eyJhbGciOiJub25lIn0.e30.".into()))
        .await;
    assert_eq!(
        junk.list_shipments(pb::ListShipmentsRequest::default())
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // Health stays open.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", stack.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert!(fpr_tests::serving(channel, "fpr.v1.ShipmentService").await);
    let _: Value = json!(null);
}
