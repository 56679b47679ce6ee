//! Okta's admin console as a trigger, end to end: the sandbox's Okta verifies fpr's event hook
//! and, when initiate-fulfillment-request is called (what "Add" of a pre-enrolled
//! authenticator does), sends `system.mfa.preregister.initiate`; fpr orders the key, which
//! then goes to complete like any other. Okta's retries never order twice, other events are
//! acknowledged and ignored, and a caller without the hook's secret is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::time::Duration;

use fpr_orchestrator::config::{OktaEventHookConfig, RestConfig, SecretRef};
use fpr_proto::v1 as pb;
use fpr_tests::{Stack, manual_sandbox, okta_users, process_shipments, ship_at_yubico, state_of};
use reqwest::Method;
use serde_json::{Value, json};

const SECRET: &str = "okta-hook-secret-7f3a";

async fn stack() -> Stack {
    Stack::start_tweaked(manual_sandbox(), |c| {
        c.rest = Some(RestConfig::new("127.0.0.1:0"));
        c.okta_event_hook = Some(OktaEventHookConfig {
            secret: SecretRef::danger_inline(SECRET),
            groups: vec!["Security keys".into()],
            default_product_id: 29,
            default_inventory_product_id: 106,
            default_customization_id: "RXJN83".into(),
        });
    })
    .await
}

fn hook_url(stack: &Stack) -> String {
    format!("http://{}/v1/okta/event-hooks", stack.rest.unwrap())
}

async fn shipments_of(stack: &Stack, user: &str) -> Vec<pb::Shipment> {
    let mut client = stack.client().await;
    client
        .list_shipments(pb::ListShipmentsRequest {
            user_id: user.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .shipments
}

fn event(kind: &str, uuid: &str, user_id: &str, extra: Value) -> Value {
    let mut targets = vec![json!({"id": user_id, "type": "User", "alternateId": "x@example.com"})];
    if let Some(group) = extra.get("group") {
        targets.push(json!({"id": "00g1", "type": "UserGroup", "displayName": group}));
    }
    json!({"eventType": "com.okta.event_hook", "data": {"events": [
        {"uuid": uuid, "eventType": kind, "target": targets}
    ]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_consoles_add_orders_a_key_through_the_event_hook() {
    let stack = stack().await;
    let http = reqwest::Client::new();
    let url = hook_url(&stack);

    // Okta's verification, and a caller without the secret.
    let v: Value = http
        .get(&url)
        .header("authorization", SECRET)
        .header("x-okta-verification-challenge", "abc123")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"verification": "abc123"}));
    for auth in ["", "okta-hook-secret-7f3b"] {
        let r = http
            .get(&url)
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = http
            .post(&url)
            .header("authorization", auth)
            .json(&event(
                "system.mfa.preregister.initiate",
                "e-0",
                "00u0",
                json!({}),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let (s, _, _) = stack
        .sandbox
        .admin(
            Method::PUT,
            "/okta/event-hooks",
            Some(json!({"url": url, "authorization": "wrong"})),
        )
        .await;
    assert_eq!(s, 400, "the sandbox's Okta verifies the hook first");
    let (s, _, _) = stack
        .sandbox
        .admin(
            Method::PUT,
            "/okta/event-hooks",
            Some(json!({"url": url, "authorization": SECRET})),
        )
        .await;
    assert_eq!(s, 204);

    // "Add" in the admin console.
    let user = okta_users(&stack, 1).await.remove(0);
    let user_id = user["id"].as_str().unwrap();
    let (s, body, _) = stack
        .sandbox
        .okta(
            Method::POST,
            "/webauthn-registration/api/v1/initiate-fulfillment-request",
            Some(json!({"userId": user_id, "fulfillmentProvider": "yubico",
                "fulfillmentData": [{"productId": "55", "customizationId": "SANDBX", "inventoryProductId": "107"}]})),
        )
        .await;
    assert_eq!(s, 204, "{body}");
    let mut ordered = Vec::new();
    for _ in 0..100 {
        ordered = shipments_of(&stack, user_id).await;
        if ordered
            .first()
            .is_some_and(|s| !s.yubienterprise_shipment_id.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ordered.len(), 1, "{ordered:?}");
    let s = &ordered[0];
    assert_eq!(s.idp, pb::Idp::Okta as i32);
    assert!(
        s.history
            .iter()
            .any(|h| h.event.contains("productId 55 from debugContext.debugData")),
        "{:?}",
        s.history
    );
    let (_, ye, _) = stack
        .sandbox
        .ye(
            Method::GET,
            &format!("/v1/fpr/shipments/{}", s.yubienterprise_shipment_id),
            None,
        )
        .await;
    let item = &ye["shipment_items"][0];
    assert_eq!(
        (
            item["product_id"].clone(),
            item["inventory_product_id"].clone(),
            item["customization_id"].clone()
        ),
        (json!(55), json!(107), json!("SANDBX")),
        "the order ids of the request, read from the event"
    );
    ship_at_yubico(&stack, &s.yubienterprise_shipment_id).await;
    let mut client = stack.client().await;
    process_shipments(&mut client).await;
    let done = shipments_of(&stack, user_id).await.remove(0);
    assert_eq!(state_of(&done), pb::ShipmentState::Complete, "{done:?}");
    let (_, hooks, _) = stack
        .sandbox
        .admin(Method::GET, "/okta/event-hooks", None)
        .await;
    assert_eq!(hooks["deliveries"][0]["outcome"], "200", "{hooks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_order_once_and_other_events_are_ignored() {
    let stack = stack().await;
    let http = reqwest::Client::new();
    let url = hook_url(&stack);
    let users = okta_users(&stack, 3).await;
    let id = |i: usize| users[i]["id"].as_str().unwrap().to_owned();
    let post = |body: Value| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(&url)
                .header("authorization", SECRET)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // The same event delivered three times (Okta retries): one shipment.
    let initiate = event("system.mfa.preregister.initiate", "e-1", &id(0), json!({}));
    for _ in 0..3 {
        assert_eq!(post(initiate.clone()).await, 200);
    }
    let once = shipments_of(&stack, &id(0)).await;
    assert_eq!(once.len(), 1);
    // The event named no order ids: the history says the defaults stood in, once.
    assert_eq!(once[0].history.len(), 1, "{:?}", once[0].history);
    assert!(
        once[0].history[0]
            .event
            .contains("customizationId RXJN83: the event has none, the configured default used"),
        "{:?}",
        once[0].history
    );
    // A new member of a configured group gets a key; of another group, or another event, not.
    let joined = event(
        "group.user_membership.add",
        "e-2",
        &id(1),
        json!({"group": "Security keys"}),
    );
    assert_eq!(post(joined).await, 200);
    assert_eq!(shipments_of(&stack, &id(1)).await.len(), 1);
    let other_group = event(
        "group.user_membership.add",
        "e-3",
        &id(2),
        json!({"group": "Sales"}),
    );
    let other_event = event("user.session.start", "e-4", &id(2), json!({}));
    assert_eq!(post(other_group).await, 200);
    assert_eq!(post(other_event).await, 200);
    assert!(shipments_of(&stack, &id(2)).await.is_empty());
}
