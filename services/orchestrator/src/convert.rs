//! The API's view (`fpr.v1`) of a stored record. (Shipping data's shapes are made from one
//! table in `fpr_domain::shipping`.)

use fpr_domain::model::{Idp, Record, State};
use fpr_proto::v1 as pb;

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
        challenge_expires_at: r.challenge_expires_at.map(ts),
        history: r
            .history
            .iter()
            .map(|h| pb::HistoryEntry {
                at: Some(ts(h.at)),
                event: h.event.clone(),
            })
            .collect(),
        reissues: r.reissues,
        replaced_yubienterprise_shipment_ids: r.replaced_ye_ids.clone(),
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
