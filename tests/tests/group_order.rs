//! Group orders end to end, for both IdPs: a group of 25 of whom 5 already have a key and 2
//! lack an address is planned (18 to order, 5 skipped, 2 missing data), ordered through
//! OrderGroup, driven to complete, and a rerun orders nobody. Members are read over real
//! sockets from the sandbox's Graph (transitive members, paged) and Okta Groups API (paged).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_tests::{ShipmentClient, Stack, get_shipment, manual_sandbox, ship_at_yubico, state_of};
use reqwest::Method;
use serde_json::{Value, json};
use tonic::Code;

/// A sandbox that pages lists 10 at a time.
fn paged() -> fpr_sandbox::Config {
    fpr_sandbox::Config {
        page_size: Some(10),
        ..manual_sandbox()
    }
}

/// Makes `n` users of `idp` named `<prefix>-<i>`; the last `no_address` of them have no address.
async fn users(stack: &Stack, idp: &str, prefix: &str, n: usize, no_address: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..n {
        let address = if i >= n - no_address {
            json!({})
        } else {
            json!({"street": format!("{i} Group Street"), "city": "Dedham", "region": "MA",
                   "postal_code": "02026", "country": "US"})
        };
        let mut body = json!({
            "idp": idp, "login": format!("{prefix}-{i}@contoso.test"), "given_name": "Member",
            "surname": format!("Number{i}"), "phone": "+1 555 0100", "organization": "Contoso",
            "address": address,
        });
        if idp == "entra" {
            body["manager"] = json!("megan.bowen@contoso.test");
        }
        let (s, u, _) = stack
            .sandbox
            .admin(Method::POST, "/users", Some(body))
            .await;
        assert_eq!(s, 201, "{u}");
        out.push(u);
    }
    out
}

async fn group(stack: &Stack, idp: &str, name: &str, members: Vec<String>) -> Value {
    let (s, g, _) = stack
        .sandbox
        .admin(
            Method::POST,
            "/groups",
            Some(json!({"idp": idp, "name": name, "members": members})),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    g
}

async fn give_passkey(stack: &Stack, user: &Value) {
    let path = format!("/users/{}/passkeys", user["id"].as_str().unwrap());
    let (s, v, _) = stack
        .sandbox
        .admin(Method::POST, &path, Some(json!({})))
        .await;
    assert_eq!(s, 201, "{v}");
}

fn request(idp: pb::Idp, group: &str) -> pb::GroupOrderRequest {
    pb::GroupOrderRequest {
        idp: idp as i32,
        group: group.into(),
        yubico_shipment_request: Some(pb::YubicoShipmentRequest {
            delivery_type: 1,
            recipient: None,
            mailing_address: None,
            shipment_items: vec![pb::ShipmentItem {
                product_id: 29,
                inventory_product_id: 106,
                product_quantity: 1,
                customization_id: "RXJN83".into(),
            }],
        }),
        pin_request: Some(pb::PinRequest {
            r#type: "generate".into(),
            length: 8,
            force_change: false,
        }),
        enrollment_contacts: None,
        batch_id: String::new(),
    }
}

fn decided(plan: &pb::GroupOrderResponse, d: pb::GroupMemberDecision) -> Vec<&pb::GroupMember> {
    plan.members
        .iter()
        .filter(|m| m.decision == d as i32)
        .collect()
}

/// Places the accepted orders, ships every one at Yubico, and drives them to the end.
async fn complete(stack: &Stack, client: &mut ShipmentClient, ids: &[String]) {
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    for id in ids {
        let s = get_shipment(client, id).await;
        assert!(!s.yubienterprise_shipment_id.is_empty(), "ordered: {s:?}");
        ship_at_yubico(stack, &s.yubienterprise_shipment_id).await;
    }
    let run = client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.errored, 0, "{run:?}");
    for id in ids {
        let s = get_shipment(client, id).await;
        assert_eq!(state_of(&s), pb::ShipmentState::Complete, "{s:?}");
    }
}

/// The plan, the order, the completion and the rerun of a 25-member group.
async fn twenty_five(stack: &Stack, idp: pb::Idp, group_ref: &str, members: &[Value]) {
    let mut client = stack.client().await;
    let plan = client
        .plan_group_order(request(idp, group_ref))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(plan.members.len(), 25, "{plan:?}");
    assert_eq!(
        (plan.to_order, plan.skipped, plan.missing_data),
        (18, 5, 2),
        "{plan:#?}"
    );
    for m in decided(&plan, pb::GroupMemberDecision::Skip) {
        let i = members
            .iter()
            .position(|u| u["id"] == m.idp_user_id.as_str())
            .unwrap();
        assert!(i < 5, "the five with keys are skipped: {m:?}");
        assert!(m.reason.starts_with("has a"), "{m:?}");
    }
    for m in decided(&plan, pb::GroupMemberDecision::MissingData) {
        assert!(m.reason.contains("street_line1"), "{m:?}");
        assert!(m.request.is_none());
    }
    let order = decided(&plan, pb::GroupMemberDecision::Order);
    let first = order[0].request.as_ref().unwrap();
    let y = first.yubico_shipment_request.as_ref().unwrap();
    let address = y.mailing_address.as_ref().unwrap();
    assert_eq!(
        (address.city.as_str(), address.country_code_2.as_str()),
        ("Dedham", "US"),
        "shipping data from the profile"
    );
    assert_eq!(y.recipient.as_ref().unwrap().recipient_firstname, "Member");
    // A plan orders nothing.
    let (_, sb, _) = stack.sandbox.admin(Method::GET, "/shipments", None).await;
    assert_eq!(sb.as_array().unwrap().len(), 0);

    let done = client
        .order_group(request(idp, group_ref))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.ordered, done.failed), (18, 0), "{done:#?}");
    let ids: Vec<String> = done
        .members
        .iter()
        .filter(|m| m.outcome == "ordered")
        .map(|m| m.shipment_id.clone())
        .collect();
    assert_eq!(ids.len(), 18);

    // Before they complete, a rerun finds the open shipments.
    let again = client
        .order_group(request(idp, group_ref))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.ordered, again.to_order, again.skipped),
        (0, 0, 23),
        "{again:#?}"
    );
    assert!(
        decided(&again, pb::GroupMemberDecision::Skip)
            .iter()
            .filter(|m| m.reason.starts_with("open fpr shipment"))
            .count()
            == 18
    );

    complete(stack, &mut client, &ids).await;
    let (_, sb, _) = stack.sandbox.admin(Method::GET, "/shipments", None).await;
    assert_eq!(
        sb.as_array().unwrap().len(),
        18,
        "one YubiEnterprise order each"
    );

    // After: the keys are registered, so the members are skipped for the keys they have.
    let rerun = client
        .order_group(request(idp, group_ref))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (rerun.ordered, rerun.skipped, rerun.missing_data),
        (0, 23, 2),
        "{rerun:#?}"
    );
    assert!(
        decided(&rerun, pb::GroupMemberDecision::Skip)
            .iter()
            .all(|m| m.reason.starts_with("has a")),
        "{rerun:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_group_of_25_orders_18_and_a_rerun_orders_none() {
    let stack = Stack::start(paged()).await;
    let members = users(&stack, "entra", "grp", 25, 2).await;
    for u in &members[..5] {
        give_passkey(&stack, u).await;
    }
    // Ten members sit in a nested group: transitive members count.
    let id = |u: &Value| u["id"].as_str().unwrap().to_owned();
    let inner = group(
        &stack,
        "entra",
        "New starters (Dedham)",
        members[15..].iter().map(id).collect(),
    )
    .await;
    let mut direct: Vec<String> = members[..15].iter().map(id).collect();
    direct.push(inner["id"].as_str().unwrap().to_owned());
    group(&stack, "entra", "New starters", direct).await;
    twenty_five(&stack, pb::Idp::Entra, "New starters", &members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_okta_group_of_25_orders_18_and_a_rerun_orders_none() {
    let stack = Stack::start(paged()).await;
    let members = users(&stack, "okta", "okgrp", 25, 2).await;
    for u in &members[..5] {
        give_passkey(&stack, u).await;
    }
    let g = group(
        &stack,
        "okta",
        "Passwordless pilot",
        members
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect(),
    )
    .await;
    // By id this time.
    twenty_five(&stack, pb::Idp::Okta, g["id"].as_str().unwrap(), &members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ambiguous_and_bad_group_requests_are_refused() {
    let stack = Stack::start(manual_sandbox()).await;
    let mut client = stack.client().await;
    let e = client
        .plan_group_order(request(pb::Idp::Entra, "No such group"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("group"), "{e:?}");
    group(&stack, "entra", "Twins", vec![]).await;
    group(&stack, "entra", "Twins", vec![]).await;
    let e = client
        .plan_group_order(request(pb::Idp::Entra, "Twins"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("give the id"), "{e:?}");
    let mut bad = request(pb::Idp::Entra, "Twins");
    bad.yubico_shipment_request.as_mut().unwrap().shipment_items[0].product_id = 2;
    group(
        &stack,
        "entra",
        "Solo",
        vec!["adele.vance@contoso.test".into()],
    )
    .await;
    bad.group = "Solo".into();
    let e = client.plan_group_order(bad).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let (_, sb, _) = stack.sandbox.admin(Method::GET, "/shipments", None).await;
    assert_eq!(sb.as_array().unwrap().len(), 0, "nothing ordered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_rule_orders_for_new_members_at_most_so_many_a_run() {
    use fpr_orchestrator::config::{GroupOrdersConfig, GroupRule, RestIdp};
    let stack = Stack::start_tweaked(manual_sandbox(), |c| {
        c.group_orders = GroupOrdersConfig {
            enabled: true,
            interval: std::time::Duration::ZERO,
            max_orders_per_run: 2,
            rules: vec![GroupRule {
                idp: RestIdp::Entra,
                group: "Standing order".into(),
                product_id: 29,
                inventory_product_id: 106,
                customization_id: "RXJN83".into(),
                delivery_type: 1,
                pin_length: 0,
                emails_to: Vec::new(),
            }],
        };
    })
    .await;
    let mut client = stack.client().await;
    let shipments = |client: &mut ShipmentClient| {
        let mut c = client.clone();
        async move {
            c.list_shipments(pb::ListShipmentsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .shipments
        }
    };
    let members = users(&stack, "entra", "standing", 4, 0).await;
    let id = |u: &Value| u["id"].as_str().unwrap().to_owned();
    let g = group(
        &stack,
        "entra",
        "Standing order",
        members[..3].iter().map(id).collect(),
    )
    .await;

    // Three members, two orders a run.
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    assert_eq!(shipments(&mut client).await.len(), 2);
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    let list = shipments(&mut client).await;
    assert_eq!(list.len(), 3);
    assert!(
        list.iter()
            .all(|s| !s.yubienterprise_shipment_id.is_empty()),
        "placed in the same run"
    );
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    assert_eq!(shipments(&mut client).await.len(), 3, "nobody twice");

    // A new member gets a key at the next run.
    let path = format!("/groups/{}/members", g["id"].as_str().unwrap());
    let (s, _, _) = stack
        .sandbox
        .admin(
            Method::POST,
            &path,
            Some(json!({"member": id(&members[3])})),
        )
        .await;
    assert_eq!(s, 200);
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    let list = shipments(&mut client).await;
    assert_eq!(list.len(), 4);
    assert!(
        list.iter()
            .any(|s| s.idp_user_id == id(&members[3]) || s.user_id == members[3]["login"])
    );
    let (_, sb, _) = stack.sandbox.admin(Method::GET, "/shipments", None).await;
    assert_eq!(
        sb.as_array().unwrap().len(),
        4,
        "one YubiEnterprise order each"
    );
    assert!(fpr_tests::captured_logs().contains("Group rule applied"));
}
