//! Recipient and address rules of YubiEnterprise (docs/design/upstream-apis.md §1.8), counted in UTF-8
//! bytes, over a getter so both the nested FPR shape and the flat `shipments_exact` shape use
//! them.

use crate::Violation;

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Checks the recipient and address fields that `get` returns. `rprefix`/`aprefix` prefix the
/// reported field paths; `company` is the company field's name (`recipient_company` nested,
/// `recipient` flat). Returns every violation.
///
/// # Example
///
/// ```
/// use fpr_domain::contact;
/// let fields = [("recipient_firstname", "Jan")];
/// let get = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
/// let violations = contact::check(&get, "recipient", "mailing_address", "recipient_company");
/// assert!(violations.iter().any(|v| v.field == "recipient.recipient_lastname"));
/// ```
pub fn check(
    get: &dyn Fn(&str) -> Option<String>,
    rprefix: &str,
    aprefix: &str,
    company: &str,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut field = |prefix: &str, name: &str, max: usize, required: bool| -> String {
        let v = get(name).unwrap_or_default();
        let v = v.as_str();
        if required && v.trim().is_empty() {
            out.push(Violation::new(join(prefix, name), "is required"));
        } else if v.len() > max {
            out.push(Violation::new(
                join(prefix, name),
                format!("at most {max} characters (UTF-8 bytes), got {}", v.len()),
            ));
        }
        v.to_owned()
    };
    field(rprefix, "recipient_firstname", 15, true);
    field(rprefix, "recipient_lastname", 20, true);
    field(rprefix, company, 20, false);
    let email = field(rprefix, "recipient_email", 80, true);
    let country = field(aprefix, "country_code_2", 2, true);
    let phone_max = if country == "IN" { 255 } else { 40 };
    let phone = field(rprefix, "recipient_telephone", phone_max, true);
    let l1 = field(aprefix, "street_line1", 60, true);
    let l2 = field(aprefix, "street_line2", 60, false);
    field(aprefix, "city", 60, true);
    let us_ca = matches!(country.as_str(), "US" | "CA");
    let region = field(aprefix, "region", 50, us_ca);
    field(aprefix, "postal_code", 20, true);

    if !email.is_empty()
        && let Err(rule) = crate::email::check(&email)
    {
        out.push(Violation::new(
            join(rprefix, "recipient_email"),
            format!("must be an e-mail address: {rule}"),
        ));
    }
    if !country.is_empty()
        && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        out.push(Violation::new(
            join(aprefix, "country_code_2"),
            "must be an ISO 3166-1 alpha-2 code (2 capital letters)",
        ));
    }
    if !phone
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-() ".contains(&b))
    {
        out.push(Violation::new(
            join(rprefix, "recipient_telephone"),
            "may hold only 0-9 + - ( ) and spaces",
        ));
    }
    if l1.len() <= 60 && l2.len() <= 60 && l1.len() + l2.len() > 120 {
        out.push(Violation::new(
            join(aprefix, "street_line2"),
            "street_line1 and street_line2 together at most 120 characters",
        ));
    }
    if us_ca
        && !region.is_empty()
        && (region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()))
    {
        out.push(Violation::new(
            join(aprefix, "region"),
            "must be the 2-letter code for US and CA",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(&str, &str)]) -> Vec<String> {
        let get = |n: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        };
        check(&get, "r", "a", "recipient_company")
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    const OK: &[(&str, &str)] = &[
        ("recipient_firstname", "Jan"),
        ("recipient_lastname", "Lindberg"),
        ("recipient_email", "jan@example.com"),
        ("recipient_telephone", "+1 (555) 555-5555"),
        ("street_line1", "7788 Foxrun Street"),
        ("city", "Dedham"),
        ("region", "MA"),
        ("postal_code", "02026"),
        ("country_code_2", "US"),
    ];

    #[test]
    fn valid_passes_and_each_rule_fires() {
        assert!(run(OK).is_empty());
        let with = |k: &'static str, v: &'static str| {
            let mut p: Vec<(&str, &str)> = OK.iter().filter(|(n, _)| *n != k).copied().collect();
            p.push((k, v));
            run(&p)
        };
        assert_eq!(
            with("recipient_firstname", "Bartholomew-Jon"),
            Vec::<String>::new(),
            "15 bytes is allowed"
        );
        assert_eq!(
            with("recipient_firstname", "Bartholomew-Jonx"),
            vec!["r.recipient_firstname"]
        );
        assert_eq!(
            with("recipient_firstname", "Åsa-Märta-Öb"),
            Vec::<String>::new(),
            "12 chars, 15 bytes"
        );
        assert_eq!(
            with("recipient_firstname", "Åsa-Märta-Öbb"),
            vec!["r.recipient_firstname"],
            "13 chars, 16 bytes"
        );
        assert_eq!(with("recipient_email", "nope"), vec!["r.recipient_email"]);
        assert_eq!(
            with("recipient_telephone", "555-CALL"),
            vec!["r.recipient_telephone"]
        );
        assert_eq!(with("region", "Mass."), vec!["a.region"]);
        assert_eq!(with("region", ""), vec!["a.region"]);
        assert_eq!(with("country_code_2", "us"), vec!["a.country_code_2"]);
        assert_eq!(with("postal_code", ""), vec!["a.postal_code"]);
        assert_eq!(
            run(&[]).len(),
            8,
            "every required field is reported at once (region only for US/CA)"
        );
    }
}
