//! Conversions between the API (`fpr.v1`), the stored record and YubiEnterprise's bodies.

use fpr_domain::model::{Idp, Record, State};
use fpr_proto::v1 as pb;
use serde_json::json;

pub(crate) fn ts(t: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t,
        nanos: 0,
    }
}

/// The API view of a record.
pub fn to_pb(r: &Record) -> pb::Shipment {
    pb::Shipment {
        shipment_id: r.id.clone(),
        idp: match r.idp {
            Idp::Entra => pb::Idp::Entra,
            Idp::Okta => pb::Idp::Okta,
        } as i32,
        user_id: r.user_id.clone(),
        idp_user_id: r.idp_user_id.clone().unwrap_or_default(),
        shipment_state: state_pb(r.state) as i32,
        error_kind: r.error_kind.clone(),
        error_message: r.error_message.clone(),
        yubienterprise_shipment_id: r.ye_shipment_id.clone().unwrap_or_default(),
        yubienterprise_state_id: r.ye_state_id,
        yubienterprise_state_message: r.ye_state_message.clone(),
        serial_number: r.serial.clone(),
        firmware_version: r.firmware.clone(),
        tracking_link: r.tracking_link.clone(),
        step: r.step.name().to_owned(),
        step_times: r
            .step_times
            .iter()
            .map(|(k, v)| (k.clone(), ts(*v)))
            .collect(),
        created_at: Some(ts(r.created_at)),
        updated_at: Some(ts(r.updated_at)),
        last_error: r.last_error.clone(),
        pin_recipients: r.pin_recipients.clone(),
        credential_id: r.credential_id.clone(),
        pin_deliveries: r.pin_deliveries,
        admin_reason: r.admin_reason.clone(),
    }
}

/// The API state of a record's state.
pub fn state_pb(s: State) -> pb::ShipmentState {
    match s {
        State::Ongoing => pb::ShipmentState::Ongoing,
        State::Complete => pb::ShipmentState::Complete,
        State::Error => pb::ShipmentState::Error,
        State::Canceled => pb::ShipmentState::Canceled,
    }
}

/// The YubiEnterprise body (nested FPR shape, without the JWEs) for a validated request.
pub fn shipping(y: &pb::YubicoShipmentRequest) -> serde_json::Value {
    let r = y.recipient.clone().unwrap_or_default();
    let a = y.mailing_address.clone().unwrap_or_default();
    json!({
        "delivery_type": y.delivery_type,
        "recipient": {"recipient_company": r.recipient_company, "recipient_email": r.recipient_email, "recipient_firstname": r.recipient_firstname,
                      "recipient_lastname": r.recipient_lastname, "recipient_telephone": r.recipient_telephone},
        "mailing_address": {"street_line1": a.street_line1, "street_line2": a.street_line2, "city": a.city, "region": a.region,
                            "postal_code": a.postal_code, "country_code_2": a.country_code_2},
        "shipment_items": y.shipment_items.iter().map(|i| json!({"product_id": i.product_id, "inventory_product_id": i.inventory_product_id,
            "product_quantity": i.product_quantity, "customization_id": i.customization_id})).collect::<Vec<_>>(),
    })
}

/// The stored shipping JSON back as the proto message (for merging edits).
pub fn pb_shipping(v: &serde_json::Value) -> pb::YubicoShipmentRequest {
    let s = |p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let n = |p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or_default() as u32
    };
    pb::YubicoShipmentRequest {
        delivery_type: n("/delivery_type"),
        recipient: Some(pb::Recipient {
            recipient_company: s("/recipient/recipient_company"),
            recipient_email: s("/recipient/recipient_email"),
            recipient_firstname: s("/recipient/recipient_firstname"),
            recipient_lastname: s("/recipient/recipient_lastname"),
            recipient_telephone: s("/recipient/recipient_telephone"),
        }),
        mailing_address: Some(pb::MailingAddress {
            street_line1: s("/mailing_address/street_line1"),
            street_line2: s("/mailing_address/street_line2"),
            city: s("/mailing_address/city"),
            region: s("/mailing_address/region"),
            postal_code: s("/mailing_address/postal_code"),
            country_code_2: s("/mailing_address/country_code_2"),
        }),
        shipment_items: v
            .get("shipment_items")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|i| pb::ShipmentItem {
                        product_id: i["product_id"].as_u64().unwrap_or_default() as u32,
                        inventory_product_id: i["inventory_product_id"].as_u64().unwrap_or_default()
                            as u32,
                        product_quantity: i["product_quantity"].as_u64().unwrap_or_default() as u32,
                        customization_id: i["customization_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The nested FPR body's recipient, address and delivery type as the Delivery API's flat
/// body (`PUT /shipments_exact/{id}`), where the company is called `recipient`.
pub fn flat_shipping(body: &serde_json::Value) -> serde_json::Value {
    let mut flat = json!({"delivery_type": body["delivery_type"]});
    for part in ["recipient", "mailing_address"] {
        if let Some(o) = body[part].as_object() {
            for (k, v) in o {
                flat[if k == "recipient_company" {
                    "recipient"
                } else {
                    k.as_str()
                }] = v.clone();
            }
        }
    }
    flat
}
