//! The JSON bodies of the REST API: the FIDO Connector's request and responses, with fpr's
//! additions (each marked so in its description), and their mapping to fpr's messages.

use std::collections::BTreeMap;

use fpr_domain::model::{Record, State};
use fpr_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::RestIdp;

/// `POST /v1/fpr/shipments`: the connector's request. Every field is required except those
/// marked as fpr's additions; a missing one is answered with the rule it breaks.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateRequest {
    /// Object ID (or UPN) of the user in Entra ID; for Okta, the user's id or login.
    #[serde(default)]
    pub user_id: String,
    /// fpr's addition: `entra` or `okta`. Absent: the configured default (`rest.default_idp`).
    #[serde(default)]
    pub idp: Option<RestIdp>,
    /// The PIN to generate.
    #[serde(default)]
    pub pin_request: Option<PinRequest>,
    /// fpr's addition: who receives the PIN (Entra ID; default: the user's manager).
    #[serde(default)]
    pub enrollment_contacts: Option<EnrollmentContacts>,
    /// The YubiEnterprise shipment (for Okta, recipient and address may come from the profile).
    #[serde(default)]
    pub yubico_shipment_request: Option<ShipmentRequest>,
}

/// The PIN request.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PinRequest {
    /// `generate`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// 4, 6 or 8.
    #[serde(default)]
    pub length: u32,
    /// fpr's addition: the user must change the PIN at first use.
    #[serde(default)]
    pub force_change: bool,
}

/// fpr's addition: PIN recipients.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct EnrollmentContacts {
    /// Email addresses (the vault's recipient policy applies).
    #[serde(default)]
    pub emails_to: Vec<String>,
}

/// YubiEnterprise's shipment request.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ShipmentRequest {
    /// 1: standard, 2: expedited, 3: express.
    #[serde(default)]
    pub delivery_type: u32,
    /// The recipient.
    #[serde(default)]
    pub recipient: Option<Recipient>,
    /// The address.
    #[serde(default)]
    pub mailing_address: Option<MailingAddress>,
    /// What to ship.
    #[serde(default)]
    pub shipment_items: Vec<ShipmentItem>,
}

/// The recipient (YubiEnterprise's character limits apply).
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Recipient {
    /// Company.
    #[serde(default)]
    pub recipient_company: String,
    /// Email (the shipping contact's; not where the PIN goes).
    #[serde(default)]
    pub recipient_email: String,
    /// First name.
    #[serde(default)]
    pub recipient_firstname: String,
    /// Last name.
    #[serde(default)]
    pub recipient_lastname: String,
    /// Telephone.
    #[serde(default)]
    pub recipient_telephone: String,
}

/// The mailing address.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct MailingAddress {
    /// Street.
    #[serde(default)]
    pub street_line1: String,
    /// Apartment, unit.
    #[serde(default)]
    pub street_line2: String,
    /// City.
    #[serde(default)]
    pub city: String,
    /// Region (a 2-character state in the US).
    #[serde(default)]
    pub region: String,
    /// Postal code.
    #[serde(default)]
    pub postal_code: String,
    /// ISO 3166 two-letter country code.
    #[serde(default)]
    pub country_code_2: String,
}

/// One item.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ShipmentItem {
    /// YubiKey model id.
    #[serde(default)]
    pub product_id: u32,
    /// Subscription (inventory) id.
    #[serde(default)]
    pub inventory_product_id: u32,
    /// Number of keys.
    #[serde(default)]
    pub product_quantity: u32,
    /// Customization id.
    #[serde(default)]
    pub customization_id: String,
}

impl CreateRequest {
    /// fpr's CreateShipment for this body (recorded first, ordered by the workflow).
    pub fn into_pb(
        self,
        idempotency_key: String,
        default_idp: RestIdp,
    ) -> pb::CreateShipmentRequest {
        let idp = match self.idp.unwrap_or(default_idp) {
            RestIdp::Entra => pb::Idp::Entra,
            RestIdp::Okta => pb::Idp::Okta,
        };
        pb::CreateShipmentRequest {
            idempotency_key,
            idp: idp as i32,
            user_id: self.user_id,
            pin_request: self.pin_request.map(|p| pb::PinRequest {
                r#type: p.kind,
                length: p.length,
                force_change: p.force_change,
            }),
            enrollment_contacts: self.enrollment_contacts.map(|c| pb::EnrollmentContacts {
                emails_to: c.emails_to,
            }),
            yubico_shipment_request: self.yubico_shipment_request.map(|y| {
                pb::YubicoShipmentRequest {
                    delivery_type: y.delivery_type,
                    recipient: y.recipient.map(|r| pb::Recipient {
                        recipient_company: r.recipient_company,
                        recipient_email: r.recipient_email,
                        recipient_firstname: r.recipient_firstname,
                        recipient_lastname: r.recipient_lastname,
                        recipient_telephone: r.recipient_telephone,
                    }),
                    mailing_address: y.mailing_address.map(|a| pb::MailingAddress {
                        street_line1: a.street_line1,
                        street_line2: a.street_line2,
                        city: a.city,
                        region: a.region,
                        postal_code: a.postal_code,
                        country_code_2: a.country_code_2,
                    }),
                    shipment_items: y
                        .shipment_items
                        .into_iter()
                        .map(|i| pb::ShipmentItem {
                            product_id: i.product_id,
                            inventory_product_id: i.inventory_product_id,
                            product_quantity: i.product_quantity,
                            customization_id: i.customization_id,
                        })
                        .collect(),
                }
            }),
            validate_only: false,
            accept_only: true,
        }
    }
}

/// `201`: the shipment was accepted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Created {
    /// The shipment.
    pub data: CreatedData,
}

/// The created shipment's ids.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedData {
    /// The YubiEnterprise shipment id, as the connector answers; fpr's own id when the order
    /// was not placed within `rest.order_wait` (then `order_placed` is false).
    pub shipment_id: String,
    /// fpr's addition: fpr's shipment id (either id works in the other calls).
    pub fpr_shipment_id: String,
    /// fpr's addition: whether YubiEnterprise has the order yet. False: fpr has the shipment
    /// on disk and places the order shortly (its processing job retries what failed).
    pub order_placed: bool,
}

/// The connector's two states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorState {
    /// Ordered; fulfilment and registration in progress (or stopped by an error).
    Ongoing,
    /// The credential is on the key and registered (or the shipment ended otherwise: see
    /// `fpr_state`).
    Complete,
}

/// fpr's four states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FprState {
    /// In progress.
    Ongoing,
    /// Registered and the PIN sent.
    Complete,
    /// Stopped by an error; an administrator retries, fixes or cancels it.
    Error,
    /// Canceled by an administrator.
    Canceled,
}

/// `GET /v1/fpr/shipments/{shipment_id}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ShipmentStatus {
    /// The id asked about.
    pub shipment_id: String,
    /// `ongoing` or `complete`. A shipment in error is `ongoing` with `error_kind`, as the
    /// connector reports it; a canceled one is `complete` with `error_kind`.
    pub shipment_state: ConnectorState,
    /// `GENERAL` when the shipment stopped on an error or was canceled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The error as YubiEnterprise or the IdP gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// fpr's addition: fpr's shipment id.
    pub fpr_shipment_id: String,
    /// fpr's addition: the YubiEnterprise shipment id, once ordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yubienterprise_shipment_id: Option<String>,
    /// fpr's addition: fpr's state.
    pub fpr_state: FprState,
    /// fpr's addition: the last step reached (`accepted`, `sealed`, `ordered`, `shipped`,
    /// `registered`, `pin_sent`, `complete`).
    pub fpr_step: String,
    /// fpr's addition: the precise kind of error (`yubienterprise_rejected`, `user_not_found`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fpr_error_kind: Option<String>,
}

impl ShipmentStatus {
    /// The status of `rec`, asked about as `asked`.
    pub fn of(rec: &Record, asked: &str) -> Self {
        let (shipment_state, fpr_state) = match rec.state {
            State::Ongoing => (ConnectorState::Ongoing, FprState::Ongoing),
            State::Complete => (ConnectorState::Complete, FprState::Complete),
            State::Error => (ConnectorState::Ongoing, FprState::Error),
            State::Canceled => (ConnectorState::Complete, FprState::Canceled),
        };
        let stopped = matches!(rec.state, State::Error | State::Canceled);
        let message = match rec.state {
            State::Canceled if rec.admin_reason.is_empty() => "canceled".to_owned(),
            State::Canceled => format!("canceled: {}", rec.admin_reason),
            _ => rec.error_message.clone(),
        };
        Self {
            shipment_id: asked.to_owned(),
            shipment_state,
            error_kind: stopped.then(|| "GENERAL".to_owned()),
            error_message: stopped.then_some(message),
            fpr_shipment_id: rec.id.clone(),
            yubienterprise_shipment_id: rec.ye_shipment_id.clone(),
            fpr_state,
            fpr_step: serde_json::to_value(rec.step)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            fpr_error_kind: (!rec.error_kind.is_empty()).then(|| rec.error_kind.clone()),
        }
    }
}

/// Every error: the connector's shape.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// `api_error` (the request), `ye_error` (YubiEnterprise refused it), `idp_error` (the IdP
    /// refused it or does not know the user); fpr's additions: `unauthorized`, `forbidden`,
    /// `not_found`, `conflict`, `unavailable`, `internal`.
    pub error_code: String,
    /// What went wrong.
    pub error_message: String,
    /// Details: `error_type` and `violations` (each `field` and `rule`) for `api_error`,
    /// YubiEnterprise's `code` and `message` for `ye_error`, and `fpr_shipment_id` when fpr
    /// recorded the shipment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error_data: Option<serde_json::Value>,
}

/// `GET /v1/status`: the settings in effect, by the connector's names (secrets redacted).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct Settings(pub BTreeMap<String, String>);
