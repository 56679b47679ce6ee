//! One order, as columns: what `fpr ship` takes as flags, `fpr batch` as CSV rows, and `fpr demo`
//! builds from sandbox users. One path to a CreateShipmentRequest, checked by the same rules the
//! orchestrator applies (`fpr-domain`).

use std::collections::BTreeMap;

use fpr_proto::v1 as pb;

/// Canonical column names and the header aliases accepted for them (HRIS exports vary).
pub const COLUMNS: &[(&str, &[&str])] = &[
    ("idp", &[]),
    ("user_id", &["user", "upn", "login", "username"]),
    ("idempotency_key", &[]),
    (
        "recipient_firstname",
        &["firstname", "first_name", "given_name"],
    ),
    ("recipient_lastname", &["lastname", "last_name", "surname"]),
    ("recipient_email", &["email", "mail"]),
    ("recipient_telephone", &["telephone", "phone"]),
    ("recipient_company", &["company", "organization"]),
    ("street_line1", &["street", "address1", "street_address"]),
    ("street_line2", &["address2"]),
    ("city", &[]),
    ("region", &["state"]),
    ("postal_code", &["zip", "zip_code", "postcode"]),
    ("country_code_2", &["country", "country_code"]),
    ("product_id", &[]),
    ("inventory_product_id", &[]),
    ("customization_id", &[]),
    ("delivery_type", &[]),
    ("pin_length", &[]),
    ("force_pin_change", &[]),
    ("emails_to", &["pin_to"]),
];

/// The canonical name of a header (case, spaces and dashes ignored), if known.
pub fn canonical(header: &str) -> Option<&'static str> {
    let h = header
        .trim()
        .trim_start_matches('\u{feff}')
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    COLUMNS
        .iter()
        .find(|(name, aliases)| *name == h || aliases.contains(&h.as_str()))
        .map(|(name, _)| *name)
}

/// Column values by canonical name; empty values count as absent.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub BTreeMap<&'static str, String>);

impl Fields {
    /// Sets `name` (a canonical name) when `value` is some and not blank.
    pub fn set(&mut self, name: &'static str, value: Option<impl Into<String>>) {
        if let Some(v) = value {
            let v = v.into();
            if !v.trim().is_empty() {
                self.0.insert(name, v.trim().to_owned());
            }
        }
    }

    fn get<'a>(&'a self, defaults: &'a Fields, name: &str) -> &'a str {
        self.0
            .get(name)
            .or_else(|| defaults.0.get(name))
            .map_or("", String::as_str)
    }
}

/// A problem with one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The column (canonical name).
    pub column: String,
    /// The rule broken.
    pub rule: String,
}

/// The column a violation's field path names (`yubico_shipment_request.recipient.recipient_email`
/// → `recipient_email`, `pin_request.length` → `pin_length`).
pub fn column_of(path: &str) -> String {
    let last = path.rsplit('.').next().unwrap_or(path);
    let last = last.split('[').next().unwrap_or(last);
    match (path, last) {
        (p, "length") if p.starts_with("pin_request") => "pin_length".into(),
        (p, "force_change") if p.starts_with("pin_request") => "force_pin_change".into(),
        (p, "type") if p.starts_with("pin_request") => "pin_type".into(),
        (_, "yubico_shipment_request" | "recipient" | "mailing_address") => "street_line1".into(),
        (_, l) => l.into(),
    }
}

/// `entra` (also azure, aad, microsoft) or `okta`.
pub fn parse_idp(s: &str) -> Option<pb::Idp> {
    match s.trim().to_ascii_lowercase().as_str() {
        "entra" | "entra_id" | "azure" | "aad" | "azure_ad" | "microsoft" | "idp_entra" => {
            Some(pb::Idp::Entra)
        }
        "okta" | "idp_okta" => Some(pb::Idp::Okta),
        _ => None,
    }
}

/// The idempotency key of a row without one: stable for the same batch id, IdP and user, so a
/// rerun of the same file (or of it with bad rows fixed) orders nothing twice.
pub fn derived_key(batch_id: &str, idp: pb::Idp, user_id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{}\n{}", idp.as_str_name(), user_id.trim().to_lowercase()).as_bytes(),
    );
    let digest = digest.as_ref();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let prefix: String = batch_id
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(80)
        .collect();
    format!("{prefix}-{hex}")
}

/// Builds the request from `fields` (falling back to `defaults`) and checks it with the
/// orchestrator's rules. For Okta, empty recipient and address columns are left for the
/// orchestrator to fill from the user's Okta profile (it checks them then).
pub fn build(
    fields: &Fields,
    defaults: &Fields,
    batch_id: &str,
) -> Result<pb::CreateShipmentRequest, Vec<Problem>> {
    let get = |n: &str| fields.get(defaults, n);
    let (req, mut problems) = parse_fields(fields, defaults, batch_id);
    let okta = req.idp == pb::Idp::Okta as i32;
    if let Err(vs) = fpr_domain::validate::create(&req) {
        for v in vs {
            let column = column_of(&v.field);
            let from_profile = okta
                && get(&column).is_empty()
                && fpr_domain::shipping::field(&column).is_some_and(|f| f.okta.is_some());
            // Parse problems already name the column; idp is reported once.
            if !from_profile && !problems.iter().any(|p| p.column == column) {
                problems.push(Problem {
                    column,
                    rule: v.rule,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(req)
    } else {
        Err(problems)
    }
}

/// The request the columns make, and the columns that do not parse (a number that is not
/// one, an unknown IdP); not checked against the order rules.
pub fn parse_fields(
    fields: &Fields,
    defaults: &Fields,
    batch_id: &str,
) -> (pb::CreateShipmentRequest, Vec<Problem>) {
    let get = |n: &str| fields.get(defaults, n);
    let mut problems = Vec::new();
    let mut num = |name: &str, default: u32| -> u32 {
        let v = get(name);
        if v.is_empty() {
            return default;
        }
        v.parse().unwrap_or_else(|_| {
            problems.push(Problem {
                column: name.into(),
                rule: format!("must be a whole number, got {v:?}"),
            });
            default
        })
    };
    let product_id = num("product_id", 0);
    let inventory_product_id = num("inventory_product_id", 0);
    let delivery_type = num("delivery_type", 1);
    let pin_length = num("pin_length", 0);
    let force_change = match get("force_pin_change").to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" => false,
        "true" | "yes" | "1" => true,
        other => {
            problems.push(Problem {
                column: "force_pin_change".into(),
                rule: format!("true or false, got {other:?}"),
            });
            false
        }
    };
    let idp = match get("idp") {
        "" => {
            problems.push(Problem {
                column: "idp".into(),
                rule: "is required: entra or okta (or give --idp)".into(),
            });
            pb::Idp::Unspecified
        }
        v => parse_idp(v).unwrap_or_else(|| {
            problems.push(Problem {
                column: "idp".into(),
                rule: format!("entra or okta, got {v:?}"),
            });
            pb::Idp::Unspecified
        }),
    };
    let user_id = get("user_id").to_owned();
    let key = match get("idempotency_key") {
        "" => derived_key(batch_id, idp, &user_id),
        k => k.to_owned(),
    };
    let emails_to: Vec<String> = get("emails_to")
        .split([';', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let recipient = pb::Recipient {
        recipient_company: get("recipient_company").into(),
        recipient_email: get("recipient_email").into(),
        recipient_firstname: get("recipient_firstname").into(),
        recipient_lastname: get("recipient_lastname").into(),
        recipient_telephone: get("recipient_telephone").into(),
    };
    let address = pb::MailingAddress {
        street_line1: get("street_line1").into(),
        street_line2: get("street_line2").into(),
        city: get("city").into(),
        region: get("region").into(),
        postal_code: get("postal_code").into(),
        country_code_2: get("country_code_2").to_ascii_uppercase(),
    };
    let req = pb::CreateShipmentRequest {
        idempotency_key: key,
        idp: idp as i32,
        user_id,
        pin_request: Some(pb::PinRequest {
            r#type: "generate".into(),
            length: pin_length,
            force_change,
        }),
        enrollment_contacts: (!emails_to.is_empty())
            .then_some(pb::EnrollmentContacts { emails_to }),
        yubico_shipment_request: Some(pb::YubicoShipmentRequest {
            delivery_type,
            recipient: Some(recipient),
            mailing_address: Some(address),
            shipment_items: vec![pb::ShipmentItem {
                product_id,
                inventory_product_id,
                product_quantity: 1,
                customization_id: get("customization_id").into(),
            }],
        }),
        validate_only: false,
        accept_only: false,
    };
    (req, problems)
}

/// A random id for a request that has none: 128 bits from the system's generator, in hex.
pub fn random_id() -> anyhow::Result<String> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| anyhow::anyhow!("the system's random generator failed"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entra_row() -> Fields {
        let mut f = Fields::default();
        for (k, v) in [
            ("idp", "entra"),
            ("user_id", "adele.vance@contoso.test"),
            ("recipient_firstname", "Adele"),
            ("recipient_lastname", "Vance"),
            ("recipient_email", "adele.vance@contoso.test"),
            ("recipient_telephone", "+1 555 0100"),
            ("street_line1", "7788 Foxrun Street"),
            ("city", "Dedham"),
            ("region", "MA"),
            ("postal_code", "02026"),
            ("country_code_2", "us"),
            ("product_id", "29"),
            ("inventory_product_id", "106"),
            ("customization_id", "RXJN83"),
        ] {
            f.set(canonical(k).unwrap(), Some(v));
        }
        f
    }

    #[test]
    fn a_good_row_builds_with_a_stable_key() {
        let r = build(&entra_row(), &Fields::default(), "hr-2026-11").unwrap();
        let again = build(&entra_row(), &Fields::default(), "hr-2026-11").unwrap();
        assert_eq!(r.idempotency_key, again.idempotency_key);
        assert!(r.idempotency_key.starts_with("hr-2026-11-"));
        let other = build(&entra_row(), &Fields::default(), "hr-2027-01").unwrap();
        assert_ne!(r.idempotency_key, other.idempotency_key);
        let y = r.yubico_shipment_request.unwrap();
        assert_eq!(y.mailing_address.unwrap().country_code_2, "US");
    }

    #[test]
    fn every_bad_column_is_named() {
        let mut f = entra_row();
        f.set("recipient_firstname", Some("Bartholomew-Maximilian"));
        f.set("product_id", Some("twenty-nine"));
        f.set("region", Some("Massachusetts"));
        f.set("idp", Some("google"));
        let problems = build(&f, &Fields::default(), "b").unwrap_err();
        let cols: Vec<&str> = problems.iter().map(|p| p.column.as_str()).collect();
        assert!(cols.contains(&"recipient_firstname"), "{problems:?}");
        assert!(cols.contains(&"product_id"), "{problems:?}");
        assert!(cols.contains(&"region"), "{problems:?}");
        assert!(cols.contains(&"idp"), "{problems:?}");
        assert_eq!(cols.iter().filter(|c| **c == "idp").count(), 1);
    }

    #[test]
    fn okta_rows_may_leave_the_profile_columns_empty() {
        let mut f = Fields::default();
        f.set("idp", Some("okta"));
        f.set("user_id", Some("ada.lovelace@example.test"));
        let defaults = {
            let mut d = Fields::default();
            d.set("product_id", Some("29"));
            d.set("inventory_product_id", Some("106"));
            d.set("customization_id", Some("RXJN83"));
            d
        };
        assert!(build(&f, &defaults, "b").is_ok());
        // A given value is still checked.
        f.set("region", Some("Massachusetts"));
        f.set("country_code_2", Some("US"));
        let p = build(&f, &defaults, "b").unwrap_err();
        assert_eq!(p[0].column, "region");
    }

    #[test]
    fn headers_are_recognised_loosely() {
        assert_eq!(canonical("\u{feff}First Name"), Some("recipient_firstname"));
        assert_eq!(canonical("ZIP"), Some("postal_code"));
        assert_eq!(canonical("country-code"), Some("country_code_2"));
        assert_eq!(canonical("favourite colour"), None);
        assert_eq!(
            column_of("yubico_shipment_request.shipment_items[0].product_id"),
            "product_id"
        );
        assert_eq!(column_of("pin_request.length"), "pin_length");
        assert_eq!(column_of("enrollment_contacts.emails_to[2]"), "emails_to");
    }
}
