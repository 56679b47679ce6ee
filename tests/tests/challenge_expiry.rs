//! Entra ID's challenge expiry, end to end: the shipment keeps the expiry Graph gave, a key
//! that ships after it ends `challenge_expired` with nothing registered and no PIN sent, and a
//! configuration whose challenges cannot outlive fulfilment is reported by GetStatus.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::time::{SystemTime, UNIX_EPOCH};

use fpr_proto::v1 as pb;
use fpr_tests::{
    Stack, create_shipment, get_shipment, manual_sandbox, process_shipments, ship_at_yubico,
    state_of,
};
use reqwest::Method;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_shipped_after_its_challenge_expired_is_not_registered() {
    let stack = Stack::start(fpr_sandbox::Config {
        challenge_lifetime_s: Some(2),
        ..manual_sandbox()
    })
    .await;
    let mut client = stack.client().await;
    let made = create_shipment(&mut client, "exp-1", "adele.vance@contoso.test").await;
    let s = get_shipment(&mut client, &made.shipment_id).await;
    let expires = s
        .challenge_expires_at
        .expect("the expiry Graph gave")
        .seconds;
    assert!((now()..=now() + 3).contains(&expires), "{expires}");

    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    ship_at_yubico(&stack, &made.yubienterprise_shipment_id).await;
    process_shipments(&mut client).await;
    let s = get_shipment(&mut client, &made.shipment_id).await;
    assert_eq!(
        (state_of(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "challenge_expired"),
        "{s:?}"
    );
    assert!(
        s.error_message.contains("order a new one"),
        "{}",
        s.error_message
    );
    let (_, creds, _) = stack.sandbox.admin(Method::GET, "/credentials", None).await;
    assert_eq!(creds.as_array().unwrap().len(), 0, "nothing registered");
    let (_, mail, _) = stack.sandbox.admin(Method::GET, "/mailbox", None).await;
    assert_eq!(mail["messages"].as_array().unwrap().len(), 0, "no PIN sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_challenges_that_cannot_outlive_fulfilment() {
    let dependency = |status: &pb::GetStatusResponse| {
        status
            .dependencies
            .iter()
            .find(|d| d.name == "entra challenge lifetime")
            .cloned()
            .unwrap()
    };
    let stack = Stack::start(manual_sandbox()).await;
    let ok = stack
        .client()
        .await
        .get_status(pb::GetStatusRequest {})
        .await;
    let d = dependency(&ok.unwrap().into_inner());
    assert!(d.healthy && d.detail.contains("20160 minutes"), "{d:?}");
    drop(stack);

    let stack =
        Stack::start_tweaked(manual_sandbox(), |c| c.entra.challenge_timeout_minutes = 60).await;
    let short = stack
        .client()
        .await
        .get_status(pb::GetStatusRequest {})
        .await;
    let d = dependency(&short.unwrap().into_inner());
    assert!(!d.healthy, "{d:?}");
    assert!(
        d.detail
            .contains("ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES=60 (0.0 days)"),
        "{}",
        d.detail
    );
    drop(stack);

    let stack =
        Stack::start_tweaked(manual_sandbox(), |c| c.entra.api_version = "v1.0".into()).await;
    let v1 = stack
        .client()
        .await
        .get_status(pb::GetStatusRequest {})
        .await;
    let d = dependency(&v1.unwrap().into_inner());
    assert!(!d.healthy && d.detail.contains("5-minute"), "{d:?}");
}

/// The ids of the sandbox's live YubiEnterprise shipments.
async fn live(stack: &Stack) -> Vec<String> {
    let (_, v, _) = stack.sandbox.admin(Method::GET, "/shipments", None).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["shipment_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_challenge_is_reissued_while_editable_with_one_live_order_and_completes() {
    // Due 10 s after the challenge is fetched: time enough for the first run to find it not
    // due yet, even on a loaded machine.
    let stack = Stack::start_tweaked(
        fpr_sandbox::Config {
            challenge_lifetime_s: Some(60),
            ..manual_sandbox()
        },
        |c| c.entra.reissue_margin = std::time::Duration::from_secs(50),
    )
    .await;
    let mut client = stack.client().await;
    let made = create_shipment(&mut client, "reissue-1", "adele.vance@contoso.test").await;
    let first = made.yubienterprise_shipment_id.clone();
    let before = get_shipment(&mut client, &made.shipment_id).await;
    let first_expiry = before.challenge_expires_at.unwrap().seconds;

    // Not yet within the margin: nothing happens.
    process_shipments(&mut client).await;
    let s = get_shipment(&mut client, &made.shipment_id).await;
    assert_eq!(
        (s.reissues, s.yubienterprise_shipment_id.as_str()),
        (0, first.as_str())
    );
    assert_eq!(live(&stack).await, std::slice::from_ref(&first));

    // Within it, while YubiEnterprise allows edits: canceled there, ordered again.
    tokio::time::sleep(std::time::Duration::from_secs(
        u64::try_from(first_expiry - 50 - now() + 1).unwrap_or(0),
    ))
    .await;
    process_shipments(&mut client).await;
    let s = get_shipment(&mut client, &made.shipment_id).await;
    assert_eq!(s.reissues, 1, "{s:?}");
    assert_eq!(
        s.replaced_yubienterprise_shipment_ids,
        std::slice::from_ref(&first)
    );
    let second = s.yubienterprise_shipment_id.clone();
    assert!(!second.is_empty() && second != first, "{s:?}");
    assert!(
        s.challenge_expires_at.unwrap().seconds > first_expiry,
        "a new challenge"
    );
    assert_eq!(s.step, "ordered");
    let events: Vec<&str> = s.history.iter().map(|h| h.event.as_str()).collect();
    assert!(
        events[0].contains(&format!("order {first} is still editable")),
        "{events:?}"
    );
    assert!(
        events[1].contains("ordering again with a new challenge (re-issue 1)"),
        "{events:?}"
    );

    // One live order, checked from YubiEnterprise's side: the first was deleted before the
    // second was placed.
    assert_eq!(live(&stack).await, std::slice::from_ref(&second));
    let (_, deleted, _) = stack
        .sandbox
        .admin(Method::GET, "/shipments?deleted=true", None)
        .await;
    let gone = &deleted.as_array().unwrap()[0];
    assert_eq!(gone["shipment_id"], first.as_str());
    let (_, placed, _) = stack
        .sandbox
        .admin(Method::GET, &format!("/shipments/{second}"), None)
        .await;
    assert!(
        gone["deleted_at"].as_i64().unwrap() <= placed["created_at"].as_i64().unwrap(),
        "{gone} {placed}"
    );

    // The key Yubico programs with the new challenge registers.
    ship_at_yubico(&stack, &second).await;
    process_shipments(&mut client).await;
    let done = get_shipment(&mut client, &made.shipment_id).await;
    assert_eq!(state_of(&done), pb::ShipmentState::Complete, "{done:?}");
    let (_, creds, _) = stack.sandbox.admin(Method::GET, "/credentials", None).await;
    assert_eq!(creds.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reissue_off_an_expiring_challenge_is_flagged_once_and_left() {
    let stack = Stack::start_tweaked(
        fpr_sandbox::Config {
            challenge_lifetime_s: Some(30),
            ..manual_sandbox()
        },
        |c| {
            c.entra.reissue_margin = std::time::Duration::from_secs(29);
            c.entra.reissue_expiring = false;
        },
    )
    .await;
    let mut client = stack.client().await;
    let made = create_shipment(&mut client, "flag-1", "adele.vance@contoso.test").await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    process_shipments(&mut client).await;
    process_shipments(&mut client).await;
    let s = get_shipment(&mut client, &made.shipment_id).await;
    assert_eq!(
        (s.reissues, s.yubienterprise_shipment_id.as_str()),
        (0, made.yubienterprise_shipment_id.as_str()),
        "left as it is"
    );
    let flags: Vec<&str> = s
        .history
        .iter()
        .map(|h| h.event.as_str())
        .filter(|e| e.starts_with("not re-issued"))
        .collect();
    assert_eq!(flags.len(), 1, "{:?}", s.history);
    assert!(flags[0].contains("cancel and order again"), "{flags:?}");
    assert_eq!(live(&stack).await.len(), 1);
}
