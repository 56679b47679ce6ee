//! Tables for people, JSON for scripts.

use fpr_proto::v1 as pb;
use serde_json::{Value, json};

/// RFC 3339 of a protobuf timestamp ("" when unset).
pub fn ts(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| {
        time::OffsetDateTime::from_unix_timestamp(t.seconds)
            .ok()
            .and_then(|d| {
                d.replace_nanosecond(0)
                    .ok()?
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
    })
    .unwrap_or_default()
}

/// Parses RFC 3339 (`2026-11-28T10:00:00Z`) or a date (`2026-11-28`, midnight UTC).
pub fn parse_time(s: &str) -> anyhow::Result<prost_types::Timestamp> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &Rfc3339))
        .map_err(|_| {
            anyhow::anyhow!("{s:?}: use RFC 3339 (2026-11-28T10:00:00Z) or a date (2026-11-28)")
        })?;
    Ok(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: 0,
    })
}

/// `entra`, `okta`.
pub fn idp(v: i32) -> &'static str {
    match pb::Idp::try_from(v) {
        Ok(pb::Idp::Entra) => "entra",
        Ok(pb::Idp::Okta) => "okta",
        _ => "-",
    }
}

/// `ongoing`, `complete`, `error`, `canceled`.
pub fn state(v: i32) -> &'static str {
    match pb::ShipmentState::try_from(v) {
        Ok(pb::ShipmentState::Ongoing) => "ongoing",
        Ok(pb::ShipmentState::Complete) => "complete",
        Ok(pb::ShipmentState::Error) => "error",
        Ok(pb::ShipmentState::Canceled) => "canceled",
        _ => "-",
    }
}

/// True when the shipment will not change by itself any more.
pub fn is_final(s: &pb::Shipment) -> bool {
    s.shipment_state != pb::ShipmentState::Ongoing as i32
}

/// A shipment as JSON (field names as in the proto; enums as lowercase words; times RFC 3339).
pub fn shipment_json(s: &pb::Shipment) -> Value {
    let steps: serde_json::Map<String, Value> = s
        .step_times
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(ts(Some(v)))))
        .collect();
    json!({
        "shipment_id": s.shipment_id,
        "idp": idp(s.idp),
        "user_id": s.user_id,
        "idp_user_id": s.idp_user_id,
        "shipment_state": state(s.shipment_state),
        "step": s.step,
        "error_kind": s.error_kind,
        "error_message": s.error_message,
        "last_error": s.last_error,
        "yubienterprise_shipment_id": s.yubienterprise_shipment_id,
        "yubienterprise_state_id": s.yubienterprise_state_id,
        "yubienterprise_state_message": s.yubienterprise_state_message,
        "serial_number": s.serial_number,
        "firmware_version": s.firmware_version,
        "tracking_link": s.tracking_link,
        "challenge_expires_at": s.challenge_expires_at.as_ref().map(|t| ts(Some(t))),
        "credential_id": s.credential_id,
        "pin_recipients": s.pin_recipients,
        "pin_deliveries": s.pin_deliveries,
        "admin_reason": s.admin_reason,
        "reissues": s.reissues,
        "replaced_yubienterprise_shipment_ids": s.replaced_yubienterprise_shipment_ids,
        "history": s.history.iter().map(|h| json!({"at": ts(h.at.as_ref()), "event": h.event})).collect::<Vec<_>>(),
        "step_times": steps,
        "created_at": ts(s.created_at.as_ref()),
        "updated_at": ts(s.updated_at.as_ref()),
    })
}

/// Left-aligned columns separated by two spaces, no borders; empty cells print as `-`.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    use comfy_table::{ContentArrangement, Table, presets};
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.to_vec());
    for r in rows {
        t.add_row(
            r.iter()
                .map(|c| if c.is_empty() { "-" } else { c.as_str() }),
        );
    }
    for c in t.column_iter_mut() {
        c.set_padding((0, 2));
    }
    t.lines().map(|l| l.trim_end().to_owned() + "\n").collect()
}

/// The list view's columns.
pub const LIST_HEADERS: [&str; 8] = [
    "SHIPMENT", "IDP", "USER", "STATE", "STEP", "SERIAL", "CREATED", "NOTE",
];

/// One row of the list view.
pub fn list_row(s: &pb::Shipment) -> Vec<String> {
    let note = if !s.error_message.is_empty() {
        format!("{}: {}", s.error_kind, s.error_message)
    } else {
        s.last_error.clone()
    };
    vec![
        s.shipment_id.clone(),
        idp(s.idp).into(),
        s.user_id.clone(),
        state(s.shipment_state).into(),
        s.step.clone(),
        s.serial_number.clone(),
        ts(s.created_at.as_ref()),
        truncate(&note, 60),
    ]
}

/// Cuts `s` to `n` characters with an ellipsis.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// One shipment, a field a line.
pub fn shipment_detail(s: &pb::Shipment) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("shipment", s.shipment_id.clone()),
        ("idp", idp(s.idp).into()),
        ("user", s.user_id.clone()),
        ("idp user id", s.idp_user_id.clone()),
        ("state", state(s.shipment_state).into()),
        ("step", s.step.clone()),
        ("error", join_nonempty(&s.error_kind, &s.error_message)),
        ("last transient error", s.last_error.clone()),
        (
            "yubienterprise",
            join_nonempty(
                &s.yubienterprise_shipment_id,
                &if s.yubienterprise_state_id == 0 {
                    String::new()
                } else {
                    format!(
                        "state {} {}",
                        s.yubienterprise_state_id, s.yubienterprise_state_message
                    )
                },
            ),
        ),
        ("serial", s.serial_number.clone()),
        ("firmware", s.firmware_version.clone()),
        ("tracking", s.tracking_link.clone()),
        (
            "challenge expires",
            s.challenge_expires_at
                .as_ref()
                .map(|t| ts(Some(t)))
                .unwrap_or_default(),
        ),
        ("credential", s.credential_id.clone()),
        ("PIN to", s.pin_recipients.join(", ")),
        ("PIN deliveries", s.pin_deliveries.to_string()),
        ("admin reason", s.admin_reason.clone()),
        ("created", ts(s.created_at.as_ref())),
        ("updated", ts(s.updated_at.as_ref())),
    ];
    // In the order a shipment goes through them (several often share a second).
    const ORDER: [&str; 8] = [
        "accepted",
        "sealed",
        "ordering",
        "ordered",
        "shipped",
        "registered",
        "pin_sent",
        "complete",
    ];
    let mut steps: Vec<(&String, &prost_types::Timestamp)> = s.step_times.iter().collect();
    steps.sort_by_key(|(k, t)| {
        (
            ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()),
            t.seconds,
            t.nanos,
        )
    });
    let steps = steps
        .iter()
        .map(|(k, t)| format!("{k} {}", ts(Some(t))))
        .collect::<Vec<_>>()
        .join("\n                      ");
    rows.push(("steps", steps));
    if !s.replaced_yubienterprise_shipment_ids.is_empty() {
        rows.push((
            "replaced orders",
            format!(
                "{} (re-issued {} time{})",
                s.replaced_yubienterprise_shipment_ids.join(", "),
                s.reissues,
                if s.reissues == 1 { "" } else { "s" }
            ),
        ));
    }
    let history = s
        .history
        .iter()
        .map(|h| format!("{} {}", ts(h.at.as_ref()), h.event))
        .collect::<Vec<_>>()
        .join("\n                      ");
    rows.push(("history", history));
    rows.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k:<20}  {v}\n"))
        .collect()
}

fn join_nonempty(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}: {b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_dashes_empty_cells() {
        let t = table(
            &["A", "LONGER"],
            &[
                vec!["xyz".into(), String::new()],
                vec![String::new(), "1".into()],
            ],
        );
        assert_eq!(t, "A    LONGER\nxyz  -\n-    1\n");
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-11-28T10:00:00Z").unwrap();
        assert_eq!(ts(Some(&t)), "2026-11-28T10:00:00Z");
        assert_eq!(
            parse_time("2026-11-28").unwrap().seconds,
            t.seconds - 36_000
        );
        assert!(parse_time("yesterday").is_err());
    }
}
