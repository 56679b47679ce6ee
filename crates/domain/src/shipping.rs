//! Shipping data: one table of the recipient and address fields ([`FIELDS`]) from which every
//! shape is made: the API's messages, YubiEnterprise's nested FPR body (what the record
//! stores), the Delivery API's flat body, and the Okta profile attributes that fill a request.

use std::collections::BTreeMap;

use fpr_proto::v1 as pb;
use serde_json::{Value, json};

/// Which part of the nested FPR body a field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `recipient`.
    Recipient,
    /// `mailing_address`.
    Address,
}

/// One recipient or address field.
#[derive(Debug)]
pub struct Field {
    /// Its name in the API and in the nested FPR body.
    pub name: &'static str,
    /// Its name in the Delivery API's flat body (where the company is `recipient`).
    pub flat: &'static str,
    /// Where it lives.
    pub part: Part,
    /// The Okta profile attribute that supplies it when a request leaves it empty.
    pub okta: Option<&'static str>,
    /// The Graph user attribute that supplies it when a group order fills a request.
    pub entra: Option<&'static str>,
    slot: for<'a> fn(&'a mut pb::Recipient, &'a mut pb::MailingAddress) -> &'a mut String,
}

macro_rules! field {
    ($name:ident, $flat:literal, $part:ident, $okta:expr, $entra:expr, $r:ident, $a:ident, $slot:expr) => {
        Field {
            name: stringify!($name),
            flat: $flat,
            part: Part::$part,
            okta: $okta,
            entra: $entra,
            slot: |$r, $a| $slot,
        }
    };
}

/// Every recipient and address field, in the order YubiEnterprise documents them.
pub const FIELDS: &[Field] = &[
    field!(
        recipient_company,
        "recipient",
        Recipient,
        Some("organization"),
        Some("companyName"),
        r,
        _a,
        &mut r.recipient_company
    ),
    field!(
        recipient_email,
        "recipient_email",
        Recipient,
        Some("email"),
        Some("mail"),
        r,
        _a,
        &mut r.recipient_email
    ),
    field!(
        recipient_firstname,
        "recipient_firstname",
        Recipient,
        Some("firstName"),
        Some("givenName"),
        r,
        _a,
        &mut r.recipient_firstname
    ),
    field!(
        recipient_lastname,
        "recipient_lastname",
        Recipient,
        Some("lastName"),
        Some("surname"),
        r,
        _a,
        &mut r.recipient_lastname
    ),
    field!(
        recipient_telephone,
        "recipient_telephone",
        Recipient,
        Some("primaryPhone"),
        Some("businessPhones"),
        r,
        _a,
        &mut r.recipient_telephone
    ),
    field!(
        street_line1,
        "street_line1",
        Address,
        Some("streetAddress"),
        Some("streetAddress"),
        _r,
        a,
        &mut a.street_line1
    ),
    field!(
        street_line2,
        "street_line2",
        Address,
        None,
        None,
        _r,
        a,
        &mut a.street_line2
    ),
    field!(
        city,
        "city",
        Address,
        Some("city"),
        Some("city"),
        _r,
        a,
        &mut a.city
    ),
    field!(
        region,
        "region",
        Address,
        Some("state"),
        Some("state"),
        _r,
        a,
        &mut a.region
    ),
    field!(
        postal_code,
        "postal_code",
        Address,
        Some("zipCode"),
        Some("postalCode"),
        _r,
        a,
        &mut a.postal_code
    ),
    field!(
        country_code_2,
        "country_code_2",
        Address,
        Some("countryCode"),
        Some("country"),
        _r,
        a,
        &mut a.country_code_2
    ),
];

/// The field called `name` (as the API names it).
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

// === impl Field ===

impl Field {
    fn part_key(&self) -> &'static str {
        match self.part {
            Part::Recipient => "recipient",
            Part::Address => "mailing_address",
        }
    }

    /// The field's value in a request.
    pub fn get(&self, y: &pb::YubicoShipmentRequest) -> String {
        let mut r = y.recipient.clone().unwrap_or_default();
        let mut a = y.mailing_address.clone().unwrap_or_default();
        (self.slot)(&mut r, &mut a).clone()
    }

    /// The field's value taken out of `r` or `a` (for reading every field of one request with
    /// one copy of it).
    fn take(&self, r: &mut pb::Recipient, a: &mut pb::MailingAddress) -> String {
        std::mem::take((self.slot)(r, a))
    }
}

/// Where a user's attributes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// An Okta user's profile.
    Okta,
    /// A Graph user's attributes.
    Entra,
}

/// Fills the fields a request leaves empty from an Okta user's profile (`primaryPhone`, else
/// `mobilePhone`, for the telephone); delivery type 1 when unset. Returns the fields it
/// looked up there, so that a violation can name the attribute to fill in.
pub fn fill_from_okta_profile(
    y: &mut pb::YubicoShipmentRequest,
    profile: &BTreeMap<String, String>,
) -> Vec<&'static str> {
    fill_from_profile(y, profile, Profile::Okta)
}

/// Fills the fields a request leaves empty from a user's attributes; delivery type 1 when
/// unset. Okta: `primaryPhone`, else `mobilePhone`. Entra ID: `businessPhones`, else
/// `mobilePhone`; `country` when it is a 2-letter code, else `usageLocation` (always one).
/// Returns the fields it looked up.
pub fn fill_from_profile(
    y: &mut pb::YubicoShipmentRequest,
    profile: &BTreeMap<String, String>,
    from: Profile,
) -> Vec<&'static str> {
    if y.delivery_type == 0 {
        y.delivery_type = 1;
    }
    let r = y.recipient.get_or_insert_with(Default::default);
    let a = y.mailing_address.get_or_insert_with(Default::default);
    let mut used = Vec::new();
    for f in FIELDS {
        let attr = match from {
            Profile::Okta => f.okta,
            Profile::Entra => f.entra,
        };
        let Some(attr) = attr else { continue };
        let slot = (f.slot)(r, a);
        if slot.is_empty() {
            let fallback = match (from, attr) {
                (Profile::Okta, "primaryPhone") | (Profile::Entra, "businessPhones") => {
                    Some("mobilePhone")
                }
                (Profile::Entra, "country") => Some("usageLocation"),
                _ => None,
            };
            let value = profile
                .get(attr)
                .filter(|v| {
                    !(from == Profile::Entra && attr == "country")
                        || (v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()))
                })
                .or_else(|| fallback.and_then(|k| profile.get(k)));
            *slot = value.cloned().unwrap_or_default();
            used.push(f.name);
        }
    }
    used
}

/// An order of one key whose recipient and address are left for a profile to fill (an Okta
/// event, a group order), and the PIN Yubico generates with `pin_length` digits (0: 8).
pub fn one_key(
    delivery_type: u32,
    item: (u32, u32, String),
    pin_length: u32,
) -> (pb::YubicoShipmentRequest, pb::PinRequest) {
    let (product_id, inventory_product_id, customization_id) = item;
    (
        pb::YubicoShipmentRequest {
            delivery_type,
            recipient: None,
            mailing_address: None,
            shipment_items: vec![pb::ShipmentItem {
                product_id,
                inventory_product_id,
                product_quantity: 1,
                customization_id,
            }],
        },
        pb::PinRequest {
            r#type: "generate".into(),
            length: if pin_length == 0 { 8 } else { pin_length },
            force_change: false,
        },
    )
}

/// YubiEnterprise's nested FPR body (without the request JWEs) for a request: what a record
/// stores as its shipping data.
pub fn to_fpr_body(y: &pb::YubicoShipmentRequest) -> Value {
    let mut body =
        json!({"delivery_type": y.delivery_type, "recipient": {}, "mailing_address": {}});
    let mut r = y.recipient.clone().unwrap_or_default();
    let mut a = y.mailing_address.clone().unwrap_or_default();
    for f in FIELDS {
        body[f.part_key()][f.name] = Value::String(f.take(&mut r, &mut a));
    }
    body["shipment_items"] = y
        .shipment_items
        .iter()
        .map(|i| {
            json!({"product_id": i.product_id, "inventory_product_id": i.inventory_product_id,
                   "product_quantity": i.product_quantity, "customization_id": i.customization_id})
        })
        .collect();
    body
}

/// The request a stored nested FPR body was made from (for merging edits).
pub fn from_fpr_body(v: &Value) -> pb::YubicoShipmentRequest {
    let mut r = pb::Recipient::default();
    let mut a = pb::MailingAddress::default();
    for f in FIELDS {
        *(f.slot)(&mut r, &mut a) = v[f.part_key()][f.name]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    let n = |x: &Value| x.as_u64().unwrap_or_default() as u32;
    pb::YubicoShipmentRequest {
        delivery_type: n(&v["delivery_type"]),
        recipient: Some(r),
        mailing_address: Some(a),
        shipment_items: v["shipment_items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| pb::ShipmentItem {
                        product_id: n(&i["product_id"]),
                        inventory_product_id: n(&i["inventory_product_id"]),
                        product_quantity: n(&i["product_quantity"]),
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

/// The Delivery API's flat body (`PUT /shipments_exact/{id}`) of a nested FPR body's
/// recipient, address and delivery type.
pub fn to_flat_body(body: &Value) -> Value {
    let mut flat = json!({"delivery_type": body["delivery_type"]});
    for f in FIELDS {
        flat[f.flat] = body[f.part_key()][f.name].clone();
    }
    flat
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> pb::YubicoShipmentRequest {
        pb::YubicoShipmentRequest {
            delivery_type: 2,
            recipient: Some(pb::Recipient {
                recipient_company: "Contoso".into(),
                recipient_email: "ada@contoso.test".into(),
                recipient_firstname: "Ada".into(),
                recipient_lastname: "Lovelace".into(),
                recipient_telephone: "+1 555 0100".into(),
            }),
            mailing_address: Some(pb::MailingAddress {
                street_line1: "1 Main Street".into(),
                street_line2: "Suite 2".into(),
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
        }
    }

    #[test]
    fn every_shape_comes_from_the_one_table() {
        let y = request();
        let body = to_fpr_body(&y);
        assert_eq!(body["recipient"]["recipient_company"], "Contoso");
        assert_eq!(body["mailing_address"]["street_line2"], "Suite 2");
        assert_eq!(body["shipment_items"][0]["product_quantity"], 1);
        assert_eq!(from_fpr_body(&body), y, "round trip");
        let flat = to_flat_body(&body);
        assert_eq!(
            (
                flat["recipient"].as_str(),
                flat["city"].as_str(),
                flat["delivery_type"].as_u64()
            ),
            (Some("Contoso"), Some("Dedham"), Some(2))
        );
        assert_eq!(FIELDS.len(), 11);
    }

    #[test]
    fn okta_profile_fills_only_empty_fields() {
        let mut y = pb::YubicoShipmentRequest {
            recipient: Some(pb::Recipient {
                recipient_firstname: "Given".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let profile: BTreeMap<String, String> = [
            ("firstName", "Ada"),
            ("lastName", "Lovelace"),
            ("mobilePhone", "+44 20 0000"),
            ("countryCode", "GB"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let used = fill_from_okta_profile(&mut y, &profile);
        assert_eq!(y.delivery_type, 1);
        let r = y.recipient.clone().unwrap_or_default();
        assert_eq!(
            (
                r.recipient_firstname.as_str(),
                r.recipient_lastname.as_str(),
                r.recipient_telephone.as_str()
            ),
            ("Given", "Lovelace", "+44 20 0000")
        );
        assert!(!used.contains(&"recipient_firstname") && used.contains(&"recipient_telephone"));
        assert!(
            !used.contains(&"street_line2"),
            "no Okta attribute supplies it"
        );
        assert_eq!(field("city").and_then(|f| f.okta), Some("city"));
    }

    #[test]
    fn entra_attributes_fill_an_order() {
        let attrs: BTreeMap<String, String> = [
            ("givenName", "Adele"),
            ("surname", "Vance"),
            ("mail", "adele@contoso.test"),
            ("mobilePhone", "+1 555 0101"),
            ("streetAddress", "1 Main Street"),
            ("city", "Dedham"),
            ("state", "MA"),
            ("postalCode", "02026"),
            ("country", "United States"),
            ("usageLocation", "US"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut y = pb::YubicoShipmentRequest::default();
        let used = fill_from_profile(&mut y, &attrs, Profile::Entra);
        let r = y.recipient.clone().unwrap();
        let a = y.mailing_address.clone().unwrap();
        assert_eq!(y.delivery_type, 1);
        assert_eq!(
            (
                r.recipient_firstname.as_str(),
                r.recipient_telephone.as_str()
            ),
            ("Adele", "+1 555 0101"),
            "mobilePhone when there is no business phone"
        );
        assert_eq!(
            a.country_code_2, "US",
            "usageLocation when country is not a code"
        );
        assert_eq!(a.region, "MA");
        assert!(used.contains(&"street_line1") && !used.contains(&"street_line2"));
        // A given value is kept.
        let mut given = pb::YubicoShipmentRequest {
            mailing_address: Some(pb::MailingAddress {
                city: "Boston".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        fill_from_profile(&mut given, &attrs, Profile::Entra);
        assert_eq!(given.mailing_address.unwrap().city, "Boston");
    }
}
