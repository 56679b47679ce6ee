//! The orchestrator end to end for Entra ID: sandbox + vault + orchestrator on real sockets,
//! called as a real client with a caller token from the sandbox tenant. Refusals and error
//! paths are in orchestrator_errors.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_sandbox::Config;
use fpr_tests::{
    Stack, captured_logs, create_request, create_shipment as create, get_shipment as get,
    manual_sandbox as manual, process_shipments as process, read_tree, ship_at_yubico as advance,
    state_of as state,
};
use reqwest::Method;
use serde_json::json;
use tonic::Code;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_entra_shipments_complete() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let (_, users, _) = stack
        .sandbox
        .admin(Method::GET, "/users?idp=entra", None)
        .await;
    let users: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| {
            u["manager_id"].is_string() && u["login"].as_str().unwrap().contains(char::is_numeric)
        })
        .map(|u| u["login"].as_str().unwrap().to_owned())
        .take(20)
        .collect();
    assert_eq!(users.len(), 20);
    let mut ids = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let r = create(&mut client, &format!("batch-{i}"), u).await;
        assert_eq!(r.shipment_state, pb::ShipmentState::Ongoing as i32);
        assert!(!r.yubienterprise_shipment_id.is_empty());
        ids.push((r.shipment_id, r.yubienterprise_shipment_id));
    }
    // Idempotent: the same key returns the same shipment, nothing new is ordered.
    let again = create(&mut client, "batch-0", &users[0]).await;
    assert_eq!(again.shipment_id, ids[0].0);
    assert_eq!(stack.sandbox.shipments().await.len(), 20);
    // Nothing shipped yet: processing waits.
    let idle = process(&mut client).await;
    assert_eq!((idle.examined, idle.completed), (20, 0));

    for (_, ye) in &ids {
        advance(&stack, ye).await;
    }
    let run = process(&mut client).await;
    assert_eq!((run.completed, run.errored), (20, 0), "{run:?}");

    let (_, creds, _) = stack.sandbox.admin(Method::GET, "/credentials", None).await;
    let creds = creds.as_array().unwrap();
    assert_eq!(creds.len(), 20);
    let (_, mail, _) = stack
        .sandbox
        .admin(Method::GET, "/mailbox?to=megan.bowen@contoso.test", None)
        .await;
    let mails = mail["messages"].as_array().unwrap();
    assert_eq!(mails.len(), 20, "one PIN message each, to the manager");
    let mut pins = Vec::new();
    for (id, _) in &ids {
        let s = get(&mut client, id).await;
        assert_eq!(state(&s), pb::ShipmentState::Complete, "{s:?}");
        assert_eq!(s.pin_deliveries, 1);
        assert_eq!(s.pin_recipients, vec!["megan.bowen@contoso.test"]);
        assert!(!s.serial_number.is_empty() && s.yubienterprise_state_id == 103);
        for step in [
            "accepted",
            "sealed",
            "ordered",
            "shipped",
            "registered",
            "pin_sent",
            "complete",
        ] {
            assert!(s.step_times.contains_key(step), "{step}");
        }
        assert_eq!(
            creds
                .iter()
                .filter(|c| c["user_id"] == s.idp_user_id.as_str())
                .count(),
            1,
            "exactly one method for the user"
        );
        let m = mails
            .iter()
            .find(|m| m["body"].as_str().unwrap().contains(&s.serial_number))
            .expect("a mail naming the serial");
        let body = m["body"].as_str().unwrap();
        let pin: String = body
            .split("Its PIN is: ")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert_eq!(pin.len(), 8);
        pins.push(pin);
    }
    assert!(creds.iter().all(|c| c["attestation_level"] == "attested"));

    // No PIN in the orchestrator's store or in any log line.
    let files = read_tree(&stack.store);
    let logs = captured_logs();
    for pin in &pins {
        assert!(
            !files.windows(pin.len()).any(|w| w == pin.as_bytes()),
            "PIN in the orchestrator store"
        );
        assert!(
            !logs.contains(&format!("PIN is: {pin}")) && !logs.contains(&format!("\"{pin}\"")),
            "PIN in a log line"
        );
    }

    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    for d in &status.dependencies {
        assert!(d.healthy, "{d:?}");
    }
    assert_eq!(status.dependencies.len(), 5);
    assert_eq!(
        status.settings["ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES"],
        "20160"
    );
    assert_eq!(
        status.settings["ENTRA_FIDO_API_CLIENT_SECRET"],
        "[redacted]"
    );
    assert!(!format!("{:?}", status.settings).contains(&stack.sandbox.config.graph_client_secret));

    // ListShipments pages through them, newest first.
    let page = client
        .list_shipments(pb::ListShipmentsRequest {
            page_size: 15,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.shipments.len(), 15);
    let rest = client
        .list_shipments(pb::ListShipmentsRequest {
            page_size: 15,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (rest.shipments.len(), rest.next_page_token.as_str()),
        (5, "")
    );
    let ongoing = client
        .list_shipments(pb::ListShipmentsRequest {
            state: pb::ShipmentState::Ongoing as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ongoing.shipments.is_empty());

    // ResendPin is an explicit second delivery.
    let resent = client
        .resend_pin(pb::ResendPinRequest {
            shipment_id: ids[0].0.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resent.pin_deliveries, 2);
    assert_eq!(
        stack
            .sandbox
            .admin(Method::GET, "/mailbox?to=megan.bowen@contoso.test", None)
            .await
            .1["messages"]
            .as_array()
            .unwrap()
            .len(),
        21
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_scheduler_contacts_404_and_the_ordering_guard() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let sb = &stack.sandbox;

    // Explicit contacts get the PIN instead of the manager; WatchShipment follows it to the end.
    let mut req = create_request("w-1", "ava.johansson4@contoso.test");
    req.enrollment_contacts = Some(pb::EnrollmentContacts {
        emails_to: vec!["it-desk@contoso.test".into()],
    });
    let w = client.create_shipment(req).await.unwrap().into_inner();
    let mut stream = client
        .watch_shipment(pb::WatchShipmentRequest {
            shipment_id: w.shipment_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.step, "ordered");
    // The cron scheduler (every second) does the processing; nobody calls ProcessShipments.
    let jobs =
        fpr_orchestrator::scheduler::start(stack.service.clone(), "* * * * * *", "0 30 * * * *", 0);
    advance(&stack, &w.yubienterprise_shipment_id).await;
    let mut last = first;
    while let Some(next) =
        tokio::time::timeout(std::time::Duration::from_secs(20), stream.message())
            .await
            .expect("watch stalled")
            .unwrap()
    {
        last = next;
    }
    jobs.iter().for_each(|j| j.abort());
    assert_eq!(
        (state(&last), last.pin_recipients.clone()),
        (
            pb::ShipmentState::Complete,
            vec!["it-desk@contoso.test".to_owned()]
        )
    );
    assert_eq!(
        sb.admin(Method::GET, "/mailbox?to=it-desk@contoso.test", None)
            .await
            .1["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        sb.admin(Method::GET, "/mailbox?to=megan.bowen@contoso.test", None)
            .await
            .1["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A shipment deleted at YubiEnterprise (404) ends in error and is not processed again.
    let d = create(&mut client, "w-2", "olivia.johansson0@contoso.test").await;
    assert_eq!(
        sb.ye(
            Method::DELETE,
            &format!("/v1/shipments_exact/{}", d.yubienterprise_shipment_id),
            None
        )
        .await
        .0,
        204
    );
    process(&mut client).await;
    let s = get(&mut client, &d.shipment_id).await;
    assert_eq!(
        (state(&s), s.error_kind.as_str()),
        (pb::ShipmentState::Error, "yubienterprise_not_found")
    );

    // A 500 on create may or may not have ordered: the shipment waits at `ordering` instead of
    // risking a second key, then is reconciled with YubiEnterprise's list. This 500 came
    // before any work, so none exists, and it is ordered once.
    sb.admin(
        Method::PUT,
        "/faults/ye.create",
        Some(json!({"error_rate": 1.0, "status": 500, "count": 1})),
    )
    .await;
    let before = sb.shipments().await.len();
    let g = create(&mut client, "w-3", "emma.johansson2@contoso.test").await;
    let s = get(&mut client, &g.shipment_id).await;
    assert_eq!(
        (state(&s), s.step.as_str()),
        (pb::ShipmentState::Ongoing, "ordering")
    );
    assert!(s.last_error.contains("reconciled"), "{}", s.last_error);
    assert_eq!(sb.shipments().await.len(), before, "nothing ordered yet");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    process(&mut client).await;
    let r = get(&mut client, &g.shipment_id).await;
    assert_eq!(r.step, "ordered", "{r:?}");
    assert!(!r.yubienterprise_shipment_id.is_empty());
    assert!(r.step_times.contains_key("reconciled"));
    assert_eq!(sb.shipments().await.len(), before + 1, "exactly one order");
    // A 429 on create is known not to have ordered: the shipment simply waits.
    sb.admin(
        Method::PUT,
        "/faults/ye.create",
        Some(json!({"error_rate": 1.0, "status": 429, "count": 1})),
    )
    .await;
    let h = create(&mut client, "w-4", "emma.johansson2@contoso.test").await;
    let s = get(&mut client, &h.shipment_id).await;
    assert_eq!(
        (state(&s), s.step.as_str()),
        (pb::ShipmentState::Ongoing, "sealed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_every_rpc() {
    use prost::Message as _;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
    };
    let stack = Stack::start(manual()).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", stack.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut refl = ServerReflectionClient::new(channel);
    let reqs = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "fpr.v1.ShipmentService".into(),
            )),
        },
    ];
    let mut stream = refl
        .server_reflection_info(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let listed = format!("{:?}", stream.message().await.unwrap().unwrap());
    assert!(listed.contains("fpr.v1.ShipmentService"));
    assert!(
        !listed.contains("fpr.vault.v1"),
        "only what this server serves: {listed}"
    );
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("no descriptor")
    };
    let file = prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
        .unwrap();
    let methods: Vec<String> = file.service[0]
        .method
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    for m in [
        "GetStatus",
        "CreateShipment",
        "GetShipment",
        "ListShipments",
        "WatchShipment",
        "UpdateShipment",
        "CancelShipment",
        "RetryShipment",
        "CompleteShipment",
        "ResendPin",
        "ProcessShipments",
        "GetCatalog",
        "PlanGroupOrder",
        "OrderGroup",
    ] {
        assert!(methods.iter().any(|x| x == m), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_completed_records_and_purges_vault_keys() {
    let stack = Stack::start(Config {
        seed_users: 4,
        ..Config::default()
    })
    .await;
    let mut client = stack.client().await;
    let done = create(&mut client, "c-1", "adele.vance@contoso.test").await;
    assert_eq!(
        done.shipment_state,
        pb::ShipmentState::Complete as i32,
        "instant clock"
    );
    let failed = create(&mut client, "c-2", "lee.gu@contoso.test").await;
    let mut vault = stack.vault.client().await;
    let sealed = |s: fpr_proto::vault::v1::GetStatusResponse| s.key_store.unwrap().sealed_keys;
    assert_eq!(
        sealed(
            vault
                .get_status(fpr_proto::vault::v1::GetStatusRequest {})
                .await
                .unwrap()
                .into_inner()
        ),
        1
    );

    assert_eq!(stack.service.cleanup(0).await.unwrap(), 0, "0 days = off");
    assert_eq!(
        stack.service.cleanup(30).await.unwrap(),
        0,
        "nothing is 30 days old"
    );
    assert_eq!(
        stack.service.cleanup_before(i64::MAX).await.unwrap(),
        1,
        "only the completed one"
    );
    assert_eq!(
        client
            .get_shipment(pb::GetShipmentRequest {
                shipment_id: done.shipment_id
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        state(&get(&mut client, &failed.shipment_id).await),
        pb::ShipmentState::Error,
        "errors are kept for the admin"
    );
    assert_eq!(
        sealed(
            vault
                .get_status(fpr_proto::vault::v1::GetStatusRequest {})
                .await
                .unwrap()
                .into_inner()
        ),
        0,
        "vault key purged"
    );
}

/// `accept_only` (the batch path): the call answers once the shipment is on disk, before any
/// upstream is asked; accepting wakes the processing job, which places the order ahead of its
/// schedule (here once a year) and takes the shipment on. A replay returns the same shipment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_only_order_answers_before_ordering_and_processing_is_woken() {
    let stack = Stack::start(manual()).await;
    let mut client = stack.client().await;
    let mut req = create_request("accept-only-1", "ava.johansson4@contoso.test");
    req.accept_only = true;

    // No scheduler yet: the shipment waits, accepted, with nothing ordered.
    let r = client
        .create_shipment(req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (r.shipment_state, r.yubienterprise_shipment_id.as_str()),
        (pb::ShipmentState::Ongoing as i32, "")
    );
    assert_eq!(get(&mut client, &r.shipment_id).await.step, "accepted");
    assert!(stack.sandbox.shipments().await.is_empty());

    // With the job running on a yearly schedule, the next acceptance wakes it.
    let jobs =
        fpr_orchestrator::scheduler::start(stack.service.clone(), "0 0 0 1 1 *", "0 0 0 1 1 *", 0);
    let mut req2 = create_request("accept-only-2", "adele.vance@contoso.test");
    req2.accept_only = true;
    let r2 = client.create_shipment(req2).await.unwrap().into_inner();
    let mut ordered = Vec::new();
    for _ in 0..200 {
        ordered = Vec::new();
        for id in [&r.shipment_id, &r2.shipment_id] {
            let s = get(&mut client, id).await;
            if s.step == "ordered" {
                ordered.push(s.yubienterprise_shipment_id);
            }
        }
        if ordered.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(ordered.len(), 2, "both ordered without a scheduled run");
    assert_eq!(stack.sandbox.shipments().await.len(), 2);

    // A replay answers with the shipment, now ordered, and orders nothing more.
    let again = client.create_shipment(req).await.unwrap().into_inner();
    assert_eq!(again.shipment_id, r.shipment_id);
    assert!(!again.yubienterprise_shipment_id.is_empty());
    assert_eq!(stack.sandbox.shipments().await.len(), 2);

    // Shipped at Yubico: a further wake (any acceptance) takes them to the end.
    for ye in &ordered {
        advance(&stack, ye).await;
    }
    let mut req3 = create_request("accept-only-3", "alex.wilber@contoso.test");
    req3.accept_only = true;
    client.create_shipment(req3).await.unwrap();
    let mut done = 0;
    for _ in 0..200 {
        done = 0;
        for id in [&r.shipment_id, &r2.shipment_id] {
            if state(&get(&mut client, id).await) == pb::ShipmentState::Complete {
                done += 1;
            }
        }
        if done == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    jobs.iter().for_each(|j| j.abort());
    assert_eq!(done, 2);
}
