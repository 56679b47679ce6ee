//! The bad-input catalogue of the public API: each kind of bad request is refused with
//! INVALID_ARGUMENT naming the field, and nothing reaches YubiEnterprise, the vault or the store.
//! (The CLI's CSV catalogue is in `services/fpr/tests/cli.rs` and `services/fpr/src/batch.rs`;
//! the vault's in `tests/tests/vault.rs`.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_tests::{Call, ShipmentClient, Stack, call, create_request, manual_sandbox};
use tonic::Code;
use tonic_types::StatusExt as _;

async fn run(client: &mut ShipmentClient, c: Call) -> tonic::Status {
    call(client, c)
        .await
        .expect_err("a bad request must be refused")
}

fn create(edit: impl FnOnce(&mut pb::CreateShipmentRequest)) -> Call {
    let mut r = create_request(
        &format!("bad-{}", fpr_jose::util::random_id().unwrap()),
        "adele.vance@contoso.test",
    );
    edit(&mut r);
    Call::Create(Box::new(r))
}

fn ysr(r: &mut pb::CreateShipmentRequest) -> &mut pb::YubicoShipmentRequest {
    r.yubico_shipment_request.as_mut().unwrap()
}

fn rcp(r: &mut pb::CreateShipmentRequest) -> &mut pb::Recipient {
    ysr(r).recipient.as_mut().unwrap()
}

fn addr(r: &mut pb::CreateShipmentRequest) -> &mut pb::MailingAddress {
    ysr(r).mailing_address.as_mut().unwrap()
}

fn emails(list: &[&str]) -> Option<pb::EnrollmentContacts> {
    Some(pb::EnrollmentContacts {
        emails_to: list.iter().map(|s| (*s).to_owned()).collect(),
    })
}

const ID: &str = "shp_00000000000000000000000000000000";
const Y: &str = "yubico_shipment_request";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_request_is_refused_naming_the_field() {
    let stack = Stack::start(manual_sandbox()).await;
    let mut client = stack.client().await;
    let long = |n: usize| "x".repeat(n);
    let cases: Vec<(&str, String, Call)> = vec![
        (
            "no idempotency key",
            "idempotency_key".into(),
            create(|r| r.idempotency_key.clear()),
        ),
        (
            "idempotency key of 129",
            "idempotency_key".into(),
            create(|r| r.idempotency_key = long(129)),
        ),
        (
            "idempotency key with a space",
            "idempotency_key".into(),
            create(|r| r.idempotency_key = "a b".into()),
        ),
        ("idp unspecified", "idp".into(), create(|r| r.idp = 0)),
        ("idp out of range", "idp".into(), create(|r| r.idp = 42)),
        ("no user", "user_id".into(), create(|r| r.user_id.clear())),
        (
            "user of 257",
            "user_id".into(),
            create(|r| r.user_id = long(257)),
        ),
        (
            "user with a slash",
            "user_id".into(),
            create(|r| r.user_id = "a/../b".into()),
        ),
        (
            "user with a newline",
            "user_id".into(),
            create(|r| r.user_id = "ada\nbob".into()),
        ),
        (
            "PIN of 3",
            "pin_request.length".into(),
            create(|r| r.pin_request.as_mut().unwrap().length = 3),
        ),
        (
            "PIN of 64",
            "pin_request.length".into(),
            create(|r| r.pin_request.as_mut().unwrap().length = 64),
        ),
        (
            "static PIN",
            "pin_request.type".into(),
            create(|r| r.pin_request.as_mut().unwrap().r#type = "static".into()),
        ),
        (
            "recipient not an address",
            "enrollment_contacts.emails_to[0]".into(),
            create(|r| r.enrollment_contacts = emails(&["nope"])),
        ),
        (
            "recipient with a display name",
            "enrollment_contacts.emails_to[0]".into(),
            create(|r| r.enrollment_contacts = emails(&["Ada <ada@contoso.test>"])),
        ),
        (
            "recipient with a header injection",
            "enrollment_contacts.emails_to[0]".into(),
            create(|r| {
                r.enrollment_contacts = emails(&["ada@contoso.test\r\nBcc: eve@evil.example"])
            }),
        ),
        (
            "recipient quoted",
            "enrollment_contacts.emails_to[0]".into(),
            create(|r| r.enrollment_contacts = emails(&["\"ada\"@contoso.test"])),
        ),
        (
            "recipient at an IP literal",
            "enrollment_contacts.emails_to[0]".into(),
            create(|r| r.enrollment_contacts = emails(&["ada@[127.0.0.1]"])),
        ),
        (
            "second recipient outside the vault's policy",
            "enrollment_contacts.emails_to[1]".into(),
            create(|r| r.enrollment_contacts = emails(&["ada@contoso.test", "eve@evil.example"])),
        ),
        (
            "eleven recipients",
            "enrollment_contacts.emails_to".into(),
            create(|r| r.enrollment_contacts = emails(&["a@contoso.test"; 11])),
        ),
        (
            "no shipment request",
            Y.into(),
            create(|r| r.yubico_shipment_request = None),
        ),
        (
            "delivery type 3",
            format!("{Y}.delivery_type"),
            create(|r| ysr(r).delivery_type = 3),
        ),
        (
            "no recipient",
            format!("{Y}.recipient"),
            create(|r| ysr(r).recipient = None),
        ),
        (
            "no address",
            format!("{Y}.mailing_address"),
            create(|r| ysr(r).mailing_address = None),
        ),
        (
            "first name of 16",
            format!("{Y}.recipient.recipient_firstname"),
            create(|r| rcp(r).recipient_firstname = long(16)),
        ),
        (
            "no first name",
            format!("{Y}.recipient.recipient_firstname"),
            create(|r| rcp(r).recipient_firstname.clear()),
        ),
        (
            "last name of 21",
            format!("{Y}.recipient.recipient_lastname"),
            create(|r| rcp(r).recipient_lastname = long(21)),
        ),
        (
            "company of 21",
            format!("{Y}.recipient.recipient_company"),
            create(|r| rcp(r).recipient_company = long(21)),
        ),
        (
            "tracking mail not an address",
            format!("{Y}.recipient.recipient_email"),
            create(|r| rcp(r).recipient_email = "nope".into()),
        ),
        (
            "tracking mail of 81",
            format!("{Y}.recipient.recipient_email"),
            create(|r| rcp(r).recipient_email = format!("{}@contoso.test", long(70))),
        ),
        (
            "telephone in words",
            format!("{Y}.recipient.recipient_telephone"),
            create(|r| rcp(r).recipient_telephone = "call me".into()),
        ),
        (
            "telephone of 41",
            format!("{Y}.recipient.recipient_telephone"),
            create(|r| rcp(r).recipient_telephone = "5".repeat(41)),
        ),
        (
            "street of 61",
            format!("{Y}.mailing_address.street_line1"),
            create(|r| addr(r).street_line1 = long(61)),
        ),
        (
            "no street",
            format!("{Y}.mailing_address.street_line1"),
            create(|r| addr(r).street_line1.clear()),
        ),
        (
            "second street line of 61",
            format!("{Y}.mailing_address.street_line2"),
            create(|r| addr(r).street_line2 = long(61)),
        ),
        (
            "no city",
            format!("{Y}.mailing_address.city"),
            create(|r| addr(r).city.clear()),
        ),
        (
            "city of 61",
            format!("{Y}.mailing_address.city"),
            create(|r| addr(r).city = long(61)),
        ),
        (
            "US state spelled out",
            format!("{Y}.mailing_address.region"),
            create(|r| addr(r).region = "Mass".into()),
        ),
        (
            "US without a state",
            format!("{Y}.mailing_address.region"),
            create(|r| addr(r).region.clear()),
        ),
        (
            "no postal code",
            format!("{Y}.mailing_address.postal_code"),
            create(|r| addr(r).postal_code.clear()),
        ),
        (
            "postal code of 21",
            format!("{Y}.mailing_address.postal_code"),
            create(|r| addr(r).postal_code = long(21)),
        ),
        (
            "country of three letters",
            format!("{Y}.mailing_address.country_code_2"),
            create(|r| addr(r).country_code_2 = "USA".into()),
        ),
        (
            "country in lower case",
            format!("{Y}.mailing_address.country_code_2"),
            create(|r| addr(r).country_code_2 = "us".into()),
        ),
        (
            "two keys in one item",
            format!("{Y}.shipment_items[0].product_quantity"),
            create(|r| ysr(r).shipment_items[0].product_quantity = 2),
        ),
        (
            "a model FIDO Pre-reg cannot program",
            format!("{Y}.shipment_items[0].product_id"),
            create(|r| ysr(r).shipment_items[0].product_id = 3),
        ),
        (
            "no inventory bucket",
            format!("{Y}.shipment_items[0].inventory_product_id"),
            create(|r| ysr(r).shipment_items[0].inventory_product_id = 0),
        ),
        (
            "no customization",
            format!("{Y}.shipment_items[0].customization_id"),
            create(|r| ysr(r).shipment_items[0].customization_id.clear()),
        ),
        (
            "customization with a dash",
            format!("{Y}.shipment_items[0].customization_id"),
            create(|r| ysr(r).shipment_items[0].customization_id = "RX-83".into()),
        ),
        (
            "no item",
            format!("{Y}.shipment_items"),
            create(|r| ysr(r).shipment_items.clear()),
        ),
        (
            "two items",
            format!("{Y}.shipment_items"),
            create(|r| {
                let item = ysr(r).shipment_items[0].clone();
                ysr(r).shipment_items.push(item);
            }),
        ),
        (
            "get without an id",
            "shipment_id".into(),
            Call::Get(String::new()),
        ),
        (
            "get with a foreign id",
            "shipment_id".into(),
            Call::Get("00000000-0000-0000-0000-000000000000".into()),
        ),
        (
            "get with a path in the id",
            "shipment_id".into(),
            Call::Get("shp_1/../../etc".into()),
        ),
        (
            "get with an id of 65",
            "shipment_id".into(),
            Call::Get(format!("shp_{}", "0".repeat(61))),
        ),
        (
            "watch with a foreign id",
            "shipment_id".into(),
            Call::Watch("x".into()),
        ),
        (
            "list page of 501",
            "page_size".into(),
            Call::List(pb::ListShipmentsRequest {
                page_size: 501,
                ..Default::default()
            }),
        ),
        (
            "list state out of range",
            "state".into(),
            Call::List(pb::ListShipmentsRequest {
                state: 99,
                ..Default::default()
            }),
        ),
        (
            "list idp out of range",
            "idp".into(),
            Call::List(pb::ListShipmentsRequest {
                idp: 7,
                ..Default::default()
            }),
        ),
        (
            "list with a forged page token",
            "page_token".into(),
            Call::List(pb::ListShipmentsRequest {
                page_token: "zzz".into(),
                ..Default::default()
            }),
        ),
        (
            "list with an empty time window",
            "created_before".into(),
            Call::List(pb::ListShipmentsRequest {
                created_after: Some(prost_types::Timestamp {
                    seconds: 2_000_000_000,
                    nanos: 0,
                }),
                created_before: Some(prost_types::Timestamp {
                    seconds: 1_000_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
        ),
        (
            "update with nothing to change",
            "recipient".into(),
            Call::Update(pb::UpdateShipmentRequest {
                shipment_id: ID.into(),
                ..Default::default()
            }),
        ),
        (
            "update delivery type 3",
            "delivery_type".into(),
            Call::Update(pb::UpdateShipmentRequest {
                shipment_id: ID.into(),
                delivery_type: 3,
                ..Default::default()
            }),
        ),
        (
            "update without an id",
            "shipment_id".into(),
            Call::Update(pb::UpdateShipmentRequest {
                delivery_type: 1,
                ..Default::default()
            }),
        ),
        (
            "cancel with a reason of 501",
            "reason".into(),
            Call::Cancel(ID.into(), long(501)),
        ),
        (
            "cancel without an id",
            "shipment_id".into(),
            Call::Cancel(String::new(), "x".into()),
        ),
        (
            "complete without a reason",
            "reason".into(),
            Call::Complete(ID.into(), "  ".into()),
        ),
        (
            "complete with a reason of 501",
            "reason".into(),
            Call::Complete(ID.into(), long(501)),
        ),
        (
            "retry with a foreign id",
            "shipment_id".into(),
            Call::Retry("42".into()),
        ),
        (
            "resend with a foreign id",
            "shipment_id".into(),
            Call::Resend("shp_é".into()),
        ),
    ];
    let n = cases.len();
    for (name, field, call) in cases {
        let err = run(&mut client, call).await;
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{name}: {}",
            err.message()
        );
        let fields: Vec<String> = err
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        assert!(fields.contains(&field), "{name}: {field} not in {fields:?}");
    }
    assert!(
        stack.sandbox.shipments().await.is_empty(),
        "nothing ordered"
    );
    let listed = client
        .list_shipments(pb::ListShipmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.shipments.is_empty(), "nothing stored");
    let mut vault = stack.vault.client().await;
    let status = vault
        .get_status(fpr_proto::vault::v1::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.key_store.unwrap().sealed_keys, 0, "nothing sealed");
    println!("bad-input catalogue (public API): {n} kinds refused naming the field");
    assert!(n >= 50);
}
