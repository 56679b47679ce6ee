//! Validation of `CreateShipment` and `UpdateShipment`: every field, every violation at once.

use fpr_proto::v1 as pb;

use crate::{Violation, contact};

/// A checked CreateShipment, with defaults applied.
#[derive(Debug, Clone)]
pub struct Create {
    /// The IdP.
    pub idp: pb::Idp,
    /// PIN length (default 8).
    pub pin_length: u32,
    /// Force PIN change.
    pub force_change: bool,
    /// Explicit PIN recipients.
    pub emails_to: Vec<String>,
}

/// Checks the recipient and address messages (nested), prefixing field paths with `prefix`.
pub fn contact_fields(
    recipient: Option<&pb::Recipient>,
    address: Option<&pb::MailingAddress>,
    prefix: &str,
) -> Vec<Violation> {
    let r = recipient.cloned().unwrap_or_default();
    let a = address.cloned().unwrap_or_default();
    let get = |name: &str| -> Option<String> {
        Some(
            match name {
                "recipient_company" => &r.recipient_company,
                "recipient_email" => &r.recipient_email,
                "recipient_firstname" => &r.recipient_firstname,
                "recipient_lastname" => &r.recipient_lastname,
                "recipient_telephone" => &r.recipient_telephone,
                "street_line1" => &a.street_line1,
                "street_line2" => &a.street_line2,
                "city" => &a.city,
                "region" => &a.region,
                "postal_code" => &a.postal_code,
                "country_code_2" => &a.country_code_2,
                _ => return None,
            }
            .clone(),
        )
    };
    let path = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    let mut v = Vec::new();
    if recipient.is_none() {
        v.push(Violation::new(path("recipient"), "is required"));
    }
    if address.is_none() {
        v.push(Violation::new(path("mailing_address"), "is required"));
    }
    if recipient.is_some() && address.is_some() {
        v.extend(contact::check(
            &get,
            &path("recipient"),
            &path("mailing_address"),
            "recipient_company",
        ));
    }
    v
}

/// Checks a CreateShipment: every violation, or the defaults-applied values.
pub fn create(req: &pb::CreateShipmentRequest) -> Result<Create, Vec<Violation>> {
    let mut v = Vec::new();
    let key = &req.idempotency_key;
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        v.push(Violation::new(
            "idempotency_key",
            "1 to 128 printable ASCII characters",
        ));
    }
    let idp = pb::Idp::try_from(req.idp).unwrap_or(pb::Idp::Unspecified);
    if idp == pb::Idp::Unspecified {
        v.push(Violation::new("idp", "must be IDP_ENTRA or IDP_OKTA"));
    }
    if req.user_id.is_empty()
        || req.user_id.len() > 256
        || req.user_id.contains(char::is_control)
        || req.user_id.contains('/')
    {
        v.push(Violation::new(
            "user_id",
            "an object id, UPN, Okta id or login: 1 to 256 characters, no '/'",
        ));
    }
    let pin = req.pin_request.clone().unwrap_or_default();
    if !(pin.r#type.is_empty() || pin.r#type == "generate") {
        v.push(Violation::new("pin_request.type", "only \"generate\""));
    }
    let pin_length = if pin.length == 0 { 8 } else { pin.length };
    if !(4..=63).contains(&pin_length) {
        v.push(Violation::new(
            "pin_request.length",
            format!("4 to 63, got {pin_length}"),
        ));
    }
    let emails_to = req
        .enrollment_contacts
        .as_ref()
        .map(|c| c.emails_to.clone())
        .unwrap_or_default();
    if emails_to.len() > 10 {
        v.push(Violation::new(
            "enrollment_contacts.emails_to",
            "at most 10 addresses",
        ));
    }
    for (i, e) in emails_to.iter().enumerate() {
        if let Err(rule) = crate::email::check(e) {
            v.push(Violation::new(
                format!("enrollment_contacts.emails_to[{i}]"),
                format!("must be an e-mail address: {rule}"),
            ));
        }
    }
    const P: &str = "yubico_shipment_request";
    match &req.yubico_shipment_request {
        None => v.push(Violation::new(P, "is required")),
        Some(y) => {
            if !(1..=2).contains(&y.delivery_type) {
                v.push(Violation::new(
                    format!("{P}.delivery_type"),
                    "1 (normal) or 2 (expedited)",
                ));
            }
            v.extend(contact_fields(
                y.recipient.as_ref(),
                y.mailing_address.as_ref(),
                P,
            ));
            if y.shipment_items.len() != 1 {
                v.push(Violation::new(
                    format!("{P}.shipment_items"),
                    format!("exactly one item, got {}", y.shipment_items.len()),
                ));
            }
            for (i, item) in y.shipment_items.iter().enumerate() {
                let f = |n: &str| format!("{P}.shipment_items[{i}].{n}");
                if !crate::yubikey::product_by_id(item.product_id).is_some_and(|p| p.fpr) {
                    v.push(Violation::new(
                        f("product_id"),
                        format!(
                            "a FIDO Pre-reg model ({:?}), got {}",
                            crate::yubikey::fpr_product_ids(),
                            item.product_id
                        ),
                    ));
                }
                if item.inventory_product_id == 0 {
                    v.push(Violation::new(f("inventory_product_id"), "is required"));
                }
                if item.product_quantity != 1 {
                    v.push(Violation::new(
                        f("product_quantity"),
                        format!("must be 1, got {}", item.product_quantity),
                    ));
                }
                if item.customization_id.is_empty()
                    || item.customization_id.len() > 32
                    || !item
                        .customization_id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric())
                {
                    v.push(Violation::new(
                        f("customization_id"),
                        "1 to 32 letters and digits",
                    ));
                }
            }
        }
    }
    if v.is_empty() {
        Ok(Create {
            idp,
            pin_length,
            force_change: pin.force_change,
            emails_to,
        })
    } else {
        Err(v)
    }
}

/// Checks an UpdateShipment.
pub fn update(req: &pb::UpdateShipmentRequest) -> Vec<Violation> {
    let mut v = Vec::new();
    if req.delivery_type > 2 {
        v.push(Violation::new("delivery_type", "0 (unchanged), 1 or 2"));
    }
    if req.recipient.is_none() && req.mailing_address.is_none() && req.delivery_type == 0 {
        v.push(Violation::new(
            "recipient",
            "nothing to change: set recipient, mailing_address or delivery_type",
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn valid() -> pb::CreateShipmentRequest {
        pb::CreateShipmentRequest {
            idempotency_key: "k-1".into(),
            idp: pb::Idp::Entra as i32,
            user_id: "adele.vance@contoso.test".into(),
            pin_request: Some(pb::PinRequest {
                r#type: "generate".into(),
                length: 8,
                force_change: false,
            }),
            enrollment_contacts: None,
            yubico_shipment_request: Some(pb::YubicoShipmentRequest {
                delivery_type: 1,
                recipient: Some(pb::Recipient {
                    recipient_company: "Contoso".into(),
                    recipient_email: "adele@contoso.test".into(),
                    recipient_firstname: "Adele".into(),
                    recipient_lastname: "Vance".into(),
                    recipient_telephone: "555-0100".into(),
                }),
                mailing_address: Some(pb::MailingAddress {
                    street_line1: "1 Main Street".into(),
                    street_line2: String::new(),
                    city: "Dedham".into(),
                    region: "MA".into(),
                    postal_code: "02026".into(),
                    country_code_2: "US".into(),
                }),
                shipment_items: vec![pb::ShipmentItem {
                    product_id: 29,
                    inventory_product_id: 106,
                    product_quantity: 1,
                    customization_id: "RXJN83".into(),
                }],
            }),
            validate_only: false,
            accept_only: false,
        }
    }

    #[test]
    fn valid_request_gets_defaults() {
        let mut r = valid();
        r.pin_request = None;
        let c = create(&r).unwrap();
        assert_eq!((c.pin_length, c.force_change), (8, false));
    }

    #[test]
    fn update_paths_match_the_update_request() {
        let y = valid().yubico_shipment_request.unwrap();
        let mut r = y.recipient.clone().unwrap();
        r.recipient_firstname = "x".repeat(16);
        let v = contact_fields(Some(&r), y.mailing_address.as_ref(), "");
        assert_eq!(v[0].field, "recipient.recipient_firstname");
        assert_eq!(contact_fields(None, None, "")[0].field, "recipient");
    }

    #[test]
    fn reports_every_bad_field() {
        let mut r = valid();
        r.idp = 0;
        r.pin_request = Some(pb::PinRequest {
            r#type: "fixed".into(),
            length: 64,
            force_change: false,
        });
        r.enrollment_contacts = Some(pb::EnrollmentContacts {
            emails_to: vec!["nope".into()],
        });
        let y = r.yubico_shipment_request.as_mut().unwrap();
        y.delivery_type = 3;
        y.shipment_items[0].product_quantity = 2;
        y.shipment_items[0].product_id = 3;
        let fields: Vec<String> = create(&r)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        for f in [
            "idp",
            "pin_request.type",
            "pin_request.length",
            "enrollment_contacts.emails_to[0]",
            "yubico_shipment_request.delivery_type",
            "yubico_shipment_request.shipment_items[0].product_quantity",
            "yubico_shipment_request.shipment_items[0].product_id",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
    }
}
