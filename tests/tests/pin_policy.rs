//! The vault's PIN rules hold whatever its caller asks: the recipient policy (at CreateShipment
//! through the orchestrator and directly over the vault's socket), recipients bound at
//! SealRequests, resend limits, an audited rebind, the audit log's hash chain, and no PIN in
//! any error, log line or audit entry whatever shape a PIN payload takes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pbo;
use fpr_proto::vault::v1 as pb;
use fpr_tests::Yubico;
use fpr_tests::{
    SmtpVault, Stack, captured_logs, create_request, deliver_request, manual_sandbox, seal_request,
};
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt as _;

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

fn seal(shipment: &str, recipients: &[&str]) -> pb::SealRequestsRequest {
    let mut r = seal_request(shipment, shipment, 8);
    r.recipients = recipients.iter().map(|s| (*s).to_owned()).collect();
    r
}

fn deliver(shipment: &str, jwe: &str, serial: &str, resend: bool) -> pb::DeliverPinRequest {
    let mut r = deliver_request(shipment, jwe, serial);
    r.resend = resend;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_outside_the_policy_is_refused_at_create_and_by_the_vault() {
    let stack = Stack::start(manual_sandbox()).await;
    let mut client = stack.client().await;
    // Through the orchestrator: refused before anything is ordered or stored.
    let mut r = create_request("foreign-1", "adele.vance@contoso.test");
    r.enrollment_contacts = Some(pbo::EnrollmentContacts {
        emails_to: vec!["it@contoso.test".into(), "eve@evil.example".into()],
    });
    let err = client.create_shipment(r).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    let v = err.get_details_bad_request().unwrap().field_violations;
    assert_eq!(v[0].field, "enrollment_contacts.emails_to[1]");
    assert!(v[0].description.contains("recipient policy"), "{v:?}");
    assert!(
        stack.sandbox.shipments().await.is_empty(),
        "nothing ordered"
    );
    let listed = client
        .list_shipments(pbo::ListShipmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.shipments.is_empty(), "nothing stored");

    // Directly over the vault's socket: CheckRecipients and SealRequests both refuse it.
    let mut vault = stack.vault.client().await;
    let err = vault
        .check_recipients(pb::CheckRecipientsRequest {
            recipients: vec!["eve@evil.example".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "recipient_not_allowed")
    );
    vault
        .check_recipients(pb::CheckRecipientsRequest {
            recipients: vec!["Megan.Bowen@CONTOSO.test".into()],
        })
        .await
        .unwrap();
    let err = vault
        .seal_requests(seal("direct-1", &["eve@evil.example"]))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "recipient_not_allowed");
    let status = vault
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.key_store.unwrap().sealed_keys, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_recipients_resend_limits_rebind_and_the_audit_chain() {
    let SmtpVault {
        yubico,
        jwks: _jwks,
        mail,
        vault,
    } = SmtpVault::start_with(|b| {
        b.recipient_policy(
                "allowed_recipient_domains = [\"contoso.test\"]\nmax_resends = 1\nresend_min_interval = \"0s\"\n",
            )
    })
    .await;
    let mut client = vault.client().await;
    let s = client
        .seal_requests(seal("bind-1", &["manager@contoso.test"]))
        .await
        .unwrap()
        .into_inner();
    // Sealing again with other recipients is not a way to change them.
    let err = client
        .seal_requests(seal("bind-1", &["eve@contoso.test"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    let done = yubico.fulfil(&s.credential_request_jwe, &s.pin_request_jwe, "77");

    // An address inside the policy but not bound: refused, nothing sent.
    let mut d = deliver("bind-1", &done.pin_response_jwe, "77", false);
    d.recipients = vec!["manager@contoso.test".into(), "eve@contoso.test".into()];
    let err = client.deliver_pin(d).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "recipient_not_bound")
    );
    assert!(mail.mails().is_empty());
    // No list: the bound one.
    let r = client
        .deliver_pin(deliver("bind-1", &done.pin_response_jwe, "77", false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.receipt.unwrap().recipients, vec!["manager@contoso.test"]);
    // One resend is allowed, the second is not.
    client
        .deliver_pin(deliver("bind-1", &done.pin_response_jwe, "77", true))
        .await
        .unwrap();
    let err = client
        .deliver_pin(deliver("bind-1", &done.pin_response_jwe, "77", true))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::ResourceExhausted, "resend_limited")
    );
    assert_eq!(mail.mails().len(), 2);

    // Rebinding: never outside the policy, always with a reason, and then the only target.
    let err = client
        .rebind_recipients(pb::RebindRecipientsRequest {
            shipment_ref: "bind-1".into(),
            recipients: vec!["eve@evil.example".into()],
            reason: "user asked".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "recipient_not_allowed");
    let err = client
        .rebind_recipients(pb::RebindRecipientsRequest {
            shipment_ref: "bind-1".into(),
            recipients: vec!["new.manager@contoso.test".into()],
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let b = client
        .rebind_recipients(pb::RebindRecipientsRequest {
            shipment_ref: "bind-1".into(),
            recipients: vec!["new.manager@contoso.test".into()],
            reason: "manager changed (ticket 4711)".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(b.previous, vec!["manager@contoso.test"]);
    let mut d = deliver("bind-1", &done.pin_response_jwe, "77", false);
    d.recipients = vec!["manager@contoso.test".into()];
    assert_eq!(
        reason(&client.deliver_pin(d).await.unwrap_err()),
        "recipient_not_bound"
    );

    // The audit log: one chained line per operation, refusals included, no PIN anywhere.
    let log = vault.audit_log();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ops: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["op"].as_str().unwrap(), l["outcome"].as_str().unwrap()))
        .collect();
    for want in [
        ("SealRequests", "ok"),
        ("SealRequests", "refused:already_sealed"),
        ("DeliverPin", "refused:recipient_not_bound"),
        ("DeliverPin", "ok"),
        ("DeliverPin(resend)", "ok"),
        ("DeliverPin(resend)", "refused:resend_limited"),
        ("RebindRecipients", "refused:recipient_not_allowed"),
        ("RebindRecipients", "ok"),
    ] {
        assert!(ops.contains(&want), "{want:?} not in {ops:?}");
    }
    assert!(
        lines
            .iter()
            .all(|l| l["caller"].as_str().unwrap().starts_with("uid:"))
    );
    let sent = lines
        .iter()
        .find(|l| l["op"] == "DeliverPin" && l["outcome"] == "ok")
        .unwrap();
    assert!(!sent["receipt_id"].as_str().unwrap().is_empty());
    assert_eq!(sent["kids"]["request"], json!(s.request_id));
    assert!(!text.contains(done.pin.as_str()), "a PIN in the audit log");
    assert!(text.contains("manager changed (ticket 4711)"));

    // The chain verifies; an edited line is found (the CLI's test runs `fpr-vault audit verify`).
    use fpr_vault::audit::{Verdict, verify};
    assert_eq!(
        verify(&log).unwrap(),
        Verdict::Intact {
            lines: lines.len() as u64
        }
    );
    let copy = vault.dir.path().join("audit-copy.jsonl");
    std::fs::write(&copy, text.replacen("resend_limited", "ok", 1)).unwrap();
    assert!(matches!(verify(&copy).unwrap(), Verdict::Broken { .. }));
}

/// A verified PIN payload of the wrong shape is refused, and the PIN appears in no error
/// text, log line or audit entry, whichever field carries it and however.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pin_in_any_error_whatever_the_payload_shape() {
    const PIN: &str = "73194658";
    let SmtpVault {
        yubico,
        jwks: _jwks,
        mail,
        vault,
    } = SmtpVault::start().await;
    let mut client = vault.client().await;
    let s = client
        .seal_requests(seal("shape-1", &["manager@contoso.test"]))
        .await
        .unwrap()
        .into_inner();
    let done = yubico.fulfil(&s.credential_request_jwe, &s.pin_request_jwe, "77");
    let id = s.request_id.clone();
    let t = fpr_jose::protocol::PIN_RESPONSE;
    let shapes: Vec<(&str, String)> = vec![
        (
            "pin as a number",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","pin":{PIN}}}"#
            ),
        ),
        (
            "pin as a float",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","pin":{PIN}.0}}"#
            ),
        ),
        (
            "pin in an array",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","pin":["{PIN}"]}}"#
            ),
        ),
        (
            "pin in an object",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","pin":{{"value":"{PIN}"}}}}"#
            ),
        ),
        (
            "pin with a letter",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","pin":"{PIN}x"}}"#
            ),
        ),
        (
            "pin of 64 digits",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","pin":"{PIN}{}"}}"#,
                "0".repeat(56)
            ),
        ),
        (
            "pin given twice",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","pin":"{PIN}","pin":"{PIN}"}}"#
            ),
        ),
        (
            "pin and no request id",
            format!(r#"{{"typ":"{t}","v":1,"serial_number":"77","pin":"{PIN}"}}"#),
        ),
        (
            "pin in typ",
            format!(
                r#"{{"typ":"{PIN}","v":1,"request_id":"{id}","serial_number":"77","pin":"{PIN}"}}"#
            ),
        ),
        (
            "pin as v",
            format!(
                r#"{{"typ":"{t}","v":{PIN},"request_id":"{id}","serial_number":"77","pin":"{PIN}"}}"#
            ),
        ),
        (
            "pin as request id",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{PIN}","serial_number":"77","pin":"{PIN}"}}"#
            ),
        ),
        (
            "pin as serial",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"{PIN}","pin":"{PIN}"}}"#
            ),
        ),
        (
            "pin as request id number",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":{PIN},"serial_number":"77","pin":"{PIN}"}}"#
            ),
        ),
        (
            "pin in a truncated document",
            format!(r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","pin":"{PIN}"#),
        ),
        ("pin as plain text", format!("pin={PIN}")),
        ("pin as a bare string", format!("\"{PIN}\"")),
        (
            "pin under a key of its own name",
            format!(
                r#"{{"typ":"{t}","v":1,"request_id":"{id}","serial_number":"77","{PIN}":"{PIN}"}}"#
            ),
        ),
        (
            "pin with a NUL",
            format!(
                "{{\"typ\":\"{t}\",\"v\":1,\"request_id\":\"{id}\",\"serial_number\":\"77\",\"pin\":\"{PIN}\\u0000\"}}"
            ),
        ),
    ];
    let logs_before = captured_logs().len();
    for (name, payload) in &shapes {
        let jwe = Yubico::respond(
            payload.as_bytes(),
            &yubico.signing[0],
            &done.pin_request.response_key,
        );
        let err = client
            .deliver_pin(deliver("shape-1", &jwe, "77", false))
            .await
            .expect_err(name);
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{name}: {}",
            err.message()
        );
        if name.starts_with("pin as a") || name.starts_with("pin in an") {
            assert_eq!(reason(&err), "bad_payload", "{name}: {}", err.message());
        }
        let everything = format!("{err:?} {}", err.message());
        assert!(
            !everything.contains(PIN),
            "{name}: the PIN is in the error: {everything}"
        );
    }
    assert!(mail.mails().is_empty(), "nothing sent");
    let logs = captured_logs();
    assert!(
        !logs[logs_before..].contains(PIN),
        "the PIN is in a log line"
    );
    let audit = std::fs::read_to_string(vault.audit_log()).unwrap();
    assert!(!audit.contains(PIN), "the PIN is in the audit log");
    // Each refusal is a security event at WARN and an audit entry.
    assert!(logs[logs_before..].contains("Yubico response refused"));
    assert!(audit.lines().filter(|l| l.contains("\"refused:")).count() >= shapes.len());
    println!(
        "PIN payload shapes refused without a trace of the PIN: {}",
        shapes.len()
    );
}
