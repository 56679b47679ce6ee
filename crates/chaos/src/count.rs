//! What a run counts, read from the sandbox's own records and from fpr, into a [`Report`].

use super::*;

/// What a phase found. Every count but `kills` and `shipments` should be 0.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Processes killed with SIGKILL.
    pub kills: usize,
    /// Orchestrator stops with SIGTERM (in-flight calls finish, processing stops between
    /// steps), and how many of them did not exit 0.
    pub terms: (usize, usize),
    /// Shipments ordered.
    pub shipments: usize,
    /// Accepted orders fpr does not have, and complete shipments whose PIN never arrived.
    pub lost: usize,
    /// YubiEnterprise orders beyond one per shipment.
    pub duplicate_orders: usize,
    /// IdP registrations beyond one per user.
    pub duplicate_registrations: usize,
    /// PIN messages beyond one per shipment.
    pub duplicate_pins: usize,
    /// Shipments still ongoing when processing was given up.
    pub stuck: usize,
    /// Shipments in error (every user here is valid, so each needs a person for no reason),
    /// but for `pin_unknown`.
    pub parked: usize,
    /// Shipments in `pin_delivery_unknown`: a PIN delivery whose answer was lost (a kill or a
    /// fault between the send and its record), reported for a person instead of sent twice.
    /// Neither Okta's send-pin nor SMTP keeps a record fpr could read to settle it; counted
    /// apart from `parked` so that this limit of the upstreams stays visible on its own.
    pub pin_unknown: usize,
    /// Error kinds of the parked shipments, and other findings, for the reader.
    pub notes: Vec<String>,
}

impl Report {
    /// The counts that must be 0, in the order of the last line: lost, duplicate_orders,
    /// duplicate_registrations, duplicate_pins, stuck, parked.
    pub fn gated(&self) -> [usize; 6] {
        [
            self.lost,
            self.duplicate_orders,
            self.duplicate_registrations,
            self.duplicate_pins,
            self.stuck,
            self.parked,
        ]
    }
}

impl std::fmt::Display for Report {
    /// The counts as `name=value` pairs (for the phase lines).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost={} duplicate_orders={} duplicate_registrations={} duplicate_pins={} stuck={} parked={} pin_unknown={}",
            self.lost,
            self.duplicate_orders,
            self.duplicate_registrations,
            self.duplicate_pins,
            self.stuck,
            self.parked,
            self.pin_unknown
        )
    }
}

/// Counts what happened to `accepted` (user index → shipment id) of `users`.
pub async fn tally(
    stack: &Stack,
    users: &[User],
    accepted: &BTreeMap<usize, String>,
) -> anyhow::Result<Report> {
    let mut r = Report {
        shipments: users.len(),
        ..Report::default()
    };
    let fpr = stack.shipments().await?;
    let by_id: HashMap<&str, &pb::Shipment> =
        fpr.iter().map(|s| (s.shipment_id.as_str(), s)).collect();
    for (i, id) in accepted {
        if !by_id.contains_key(id.as_str()) {
            r.lost += 1;
            r.notes
                .push(format!("accepted order of {} missing", users[*i].login));
        }
    }
    let not_accepted = users.len() - accepted.len();
    if not_accepted > 0 {
        r.notes
            .push(format!("{not_accepted} orders were never accepted by fpr"));
        r.lost += not_accepted;
    }
    let mine: HashSet<String> = users.iter().map(|u| u.mail.to_lowercase()).collect();
    let mut orders: HashMap<String, usize> = HashMap::new();
    for s in stack
        .admin_get("/shipments")
        .await?
        .as_array()
        .context("shipments")?
    {
        let email = s
            .pointer("/recipient/recipient_email")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_lowercase();
        if mine.contains(&email) {
            *orders.entry(email).or_default() += 1;
        }
    }
    r.duplicate_orders = orders.values().map(|n| n.saturating_sub(1)).sum();
    let mut regs: HashMap<String, usize> = HashMap::new();
    for c in stack
        .admin_get("/credentials")
        .await?
        .as_array()
        .context("credentials")?
    {
        *regs
            .entry(c["user_id"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    for e in stack
        .admin_get("/okta/enrollments")
        .await?
        .as_array()
        .context("enrollments")?
    {
        if e["status"] == "ACTIVE" {
            *regs
                .entry(e["user_id"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    r.duplicate_registrations = users
        .iter()
        .map(|u| regs.get(&u.id).copied().unwrap_or(0).saturating_sub(1))
        .sum();
    let mail = stack.admin_get("/mailbox").await?;
    let bodies: Vec<&str> = mail["messages"]
        .as_array()
        .context("mailbox")?
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for s in &fpr {
        match pb::ShipmentState::try_from(s.shipment_state) {
            Ok(pb::ShipmentState::Ongoing) => r.stuck += 1,
            Ok(pb::ShipmentState::Error) if s.error_kind == "pin_delivery_unknown" => {
                r.pin_unknown += 1;
                r.notes
                    .push(format!("{}: {}", s.shipment_id, s.error_message));
            }
            Ok(pb::ShipmentState::Error) => {
                r.parked += 1;
                let idp = if s.idp == pb::Idp::Okta as i32 {
                    "okta"
                } else {
                    "entra"
                };
                let n = kinds
                    .entry(format!("{} ({idp})", s.error_kind))
                    .or_default();
                *n += 1;
                if *n == 1 {
                    r.notes
                        .push(format!("{}: {}", s.shipment_id, s.error_message));
                }
            }
            _ => {}
        }
        if s.serial_number.is_empty() {
            continue;
        }
        let pins = bodies
            .iter()
            .filter(|b| mentions(b, &s.serial_number))
            .count();
        r.duplicate_pins += pins.saturating_sub(1);
        if pins == 0 && s.shipment_state == pb::ShipmentState::Complete as i32 {
            r.lost += 1;
            r.notes
                .push(format!("{} complete but no PIN arrived", s.shipment_id));
        }
    }
    for (k, n) in kinds {
        r.notes.push(format!("parked: {n} × {k}"));
    }
    Ok(r)
}

/// Whether `body` mentions `serial` as a whole number.
pub(super) fn mentions(body: &str, serial: &str) -> bool {
    body.match_indices(serial).any(|(i, _)| {
        let before = body[..i].chars().next_back();
        let after = body[i + serial.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn serials_are_matched_as_whole_numbers() {
        assert!(super::mentions("serial 1234, PIN 5678", "1234"));
        assert!(!super::mentions("serial 12345", "1234"));
        assert!(!super::mentions("serial 91234", "1234"));
    }
}
