//! Attestation before registration, over the real path: a credential whose attestation does
//! not chain to a trusted root, or whose AAGUID is not allowed for the product, is never
//! registered in Entra ID; the shipment ends `attestation_failed` naming the check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_tests::{Stack, create_request, get_shipment, manual_sandbox, ship_at_yubico, state_of};
use reqwest::Method;

/// Orders a key for Adele, ships it and runs the processing job; returns the shipment.
async fn order_and_process(stack: &Stack) -> pb::Shipment {
    let mut client = stack.client().await;
    let r = client
        .create_shipment(create_request("att-1", "adele.vance@contoso.test"))
        .await
        .unwrap()
        .into_inner();
    ship_at_yubico(stack, &r.yubienterprise_shipment_id).await;
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    get_shipment(&mut client, &r.shipment_id).await
}

async fn nothing_registered_or_sent(stack: &Stack) {
    let (_, creds, _) = stack.sandbox.admin(Method::GET, "/credentials", None).await;
    assert!(creds.as_array().unwrap().is_empty(), "nothing registered");
    let (_, mail, _) = stack.sandbox.admin(Method::GET, "/mailbox", None).await;
    assert!(
        mail["messages"].as_array().unwrap().is_empty(),
        "no PIN sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_to_an_untrusted_root_is_never_registered() {
    // Only Yubico's real roots: the sandbox's software authenticator is not a YubiKey.
    let stack = Stack::start_tweaked(manual_sandbox(), |c| {
        c.attestation.builtin_yubico_roots = true;
        c.attestation.trust_anchors_pem = Vec::new();
    })
    .await;
    let s = order_and_process(&stack).await;
    assert_eq!(
        (state_of(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "attestation_failed"),
        "{s:?}"
    );
    assert!(
        s.error_message.contains("chain check failed"),
        "{}",
        s.error_message
    );
    nothing_registered_or_sent(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aaguid_not_allowed_for_the_product_is_never_registered() {
    let stack = Stack::start_tweaked(manual_sandbox(), |c| {
        c.attestation.allowed_aaguids = [(
            "*".to_owned(),
            vec!["00000000-0000-0000-0000-000000000001".to_owned()],
        )]
        .into();
    })
    .await;
    let s = order_and_process(&stack).await;
    assert_eq!(s.error_kind, "attestation_failed", "{s:?}");
    assert!(
        s.error_message.contains("aaguid check failed"),
        "{}",
        s.error_message
    );
    nothing_registered_or_sent(&stack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_allowed_credential_is_registered() {
    // The sandbox's root (pinned by the fixture) and the AAGUIDs of the products ordered.
    let stack = Stack::start_tweaked(manual_sandbox(), |c| {
        let nfc = vec!["a25342c0-3cdc-4414-8e46-f4807fca511c".to_owned()];
        c.attestation.allowed_aaguids =
            [("29".to_owned(), nfc.clone()), ("*".to_owned(), nfc)].into();
    })
    .await;
    let s = order_and_process(&stack).await;
    assert_eq!(state_of(&s), pb::ShipmentState::Complete, "{s:?}");
}
