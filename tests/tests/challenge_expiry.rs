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
