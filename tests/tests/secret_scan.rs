//! The secret scan: a full run (Entra ID and Okta orders to completion, a resend) with every
//! service logging at TRACE, then every secret fpr handled is searched for in every log line,
//! every store file, the vault's audit log and every RPC response. None may appear.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_jose::seal::MasterKey;
use fpr_proto::v1 as pb;
use fpr_proto::vault::v1 as vpb;
use fpr_tests::{
    Stack, captured_logs, create_request, manual_sandbox, okta_request, okta_users, read_tree,
    ship_at_yubico,
};
use reqwest::Method;

/// JWT-shaped text (`eyJ….eyJ….`): a bearer or access token.
fn jwt_in(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(i) = rest.find("eyJ") {
        let t = &rest[i..];
        let word: String = t
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let parts: Vec<&str> = word.split('.').collect();
        if parts.len() >= 3 && parts[1].starts_with("eyJ") && parts[2].len() > 20 {
            return Some(word);
        }
        rest = &t[3..];
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_line_store_file_or_response() {
    let mut stack = Stack::start(manual_sandbox()).await;
    let token = stack.caller_token().await;
    let mut client = stack.client_with(Some(token.clone())).await;

    // Entra: a 12-digit PIN, so a chance match with other numbers is out of the question.
    let mut r = create_request("scan-entra", "adele.vance@contoso.test");
    r.pin_request.as_mut().unwrap().length = 12;
    let entra = client.create_shipment(r).await.unwrap().into_inner();
    let okta_user = okta_users(&stack, 1).await.remove(0);
    let okta = client
        .create_shipment(okta_request(
            "scan-okta",
            okta_user["login"].as_str().unwrap(),
        ))
        .await
        .unwrap()
        .into_inner();
    for r in [&entra, &okta] {
        ship_at_yubico(&stack, &r.yubienterprise_shipment_id).await;
    }
    client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap();
    client
        .resend_pin(pb::ResendPinRequest {
            shipment_id: entra.shipment_id.clone(),
        })
        .await
        .unwrap();

    // Everything the API answers.
    let mut responses = String::new();
    for id in [&entra.shipment_id, &okta.shipment_id] {
        let s = client
            .get_shipment(pb::GetShipmentRequest {
                shipment_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            fpr_tests::state_of(&s),
            pb::ShipmentState::Complete,
            "{s:?}"
        );
        responses.push_str(&format!("{s:?}\n"));
    }
    responses.push_str(&format!(
        "{:?}\n{:?}\n",
        client
            .list_shipments(pb::ListShipmentsRequest::default())
            .await
            .unwrap()
            .into_inner(),
        client
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner()
    ));
    let mut vault = stack.vault.client().await;
    responses.push_str(&format!(
        "{:?}\n{:?}\n",
        vault
            .get_status(vpb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner(),
        vault
            .get_yubico_keys(vpb::GetYubicoKeysRequest {})
            .await
            .unwrap()
            .into_inner()
    ));

    // The secrets: the PINs, the vault's master key and the shipment's response private key,
    // the upstream credentials, the caller's bearer token.
    let (_, mail, _) = stack.sandbox.admin(Method::GET, "/mailbox", None).await;
    let pins: Vec<String> = mail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| {
            let pin: String = m["body"]
                .as_str()?
                .split("Its PIN is: ")
                .nth(1)?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (pin.len() == 12).then_some(pin)
        })
        .collect();
    assert_eq!(pins.len(), 2, "the PIN, sent and resent");
    stack.vault.stop().await;
    let master_text = std::fs::read_to_string(&stack.vault.master_key_file).unwrap();
    let store = fpr_vault::keystore::KeyStore::open(
        &stack.vault.store,
        MasterKey::from_encoded(master_text.trim().as_bytes()).unwrap(),
    )
    .unwrap();
    let rec = store.get(&entra.shipment_id).unwrap().unwrap();
    let private_jwk: serde_json::Value = serde_json::from_str(
        &store
            .response_key(&entra.shipment_id, &rec)
            .unwrap()
            .to_private_jwk()
            .unwrap(),
    )
    .unwrap();
    drop(store);
    let sb = &stack.sandbox.config;
    let secrets: Vec<(&str, String)> = vec![
        ("the Entra PIN", pins[0].clone()),
        ("the vault master key", master_text.trim().to_owned()),
        (
            "the response private key",
            private_jwk["d"].as_str().unwrap().to_owned(),
        ),
        ("the YubiEnterprise token", sb.ye_token.clone()),
        ("the Graph client secret", sb.graph_client_secret.clone()),
        ("the Okta API token", sb.okta_token.clone()),
        (
            "the caller's client secret",
            sb.caller_client_secret.clone(),
        ),
        (
            "the caller's bearer token (signature)",
            token.rsplit('.').next().unwrap().to_owned(),
        ),
    ];

    let logs = captured_logs();
    assert!(
        logs.contains(" TRACE ") && logs.contains(&entra.shipment_id),
        "the scan must see TRACE output of the run"
    );
    let places: Vec<(&str, Vec<u8>)> = vec![
        ("a log line", logs.into_bytes()),
        ("the orchestrator's store", read_tree(&stack.store)),
        // Its records are stored deflated: scan them decoded too.
        (
            "the orchestrator's records",
            serde_json::to_vec(&stack.service.workflow().store().all().unwrap()).unwrap(),
        ),
        ("the vault's store", read_tree(&stack.vault.store)),
        (
            "the vault's audit log",
            std::fs::read(stack.vault.audit_log()).unwrap(),
        ),
        ("an RPC response", responses.into_bytes()),
    ];
    let mut checked = 0;
    for (place, bytes) in &places {
        for (what, secret) in &secrets {
            assert!(secret.len() >= 12, "{what} is too short to scan for");
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{what} found in {place}"
            );
            checked += 1;
        }
        let text = String::from_utf8_lossy(bytes);
        if let Some(jwt) = jwt_in(&text) {
            panic!("a token in {place}: {}…", &jwt[..jwt.len().min(40)]);
        }
    }
    println!(
        "secret scan: {} secrets x {} places = {checked} searches, none found",
        secrets.len(),
        places.len()
    );
}
