//! fpr-chaos: the order path under crashes and upstream faults, counted.
//!
//! It runs the sandbox, the vault and the orchestrator as three processes (this binary
//! re-executed as each service, built from the same libraries as `fpr`), over real sockets,
//! with on-disk stores, and then:
//! - **kill phase** ([`kill_phase`]): orders users while the orchestrator and the vault are
//!   killed with SIGKILL at random moments and restarted, with every upstream answering
//!   slower so that kills land while work is in flight; then lets processing run to the end;
//! - **fault storm** ([`storm_phase`]): a share of every sandbox route answers 5xx, 429, a
//!   hang past fpr's timeout, a connection dropped after the request was read, or a malformed
//!   2xx; on the mutating routes half of those come *after* the upstream did the work.
//!
//! Then it counts from the sandbox's own records (YubiEnterprise orders per user, IdP
//! registrations per user, PIN mails per shipment) and from fpr (accepted orders missing,
//! shipments still ongoing, shipments in error) into a [`Report`].
//!
//! NO SECURITY: a test tool. Everything binds to 127.0.0.1 port 0 or a Unix socket in a
//! temporary directory, and everything it starts is killed when it is dropped.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
pub use fpr::stack::{Clock, Stack, User};
use fpr_proto::v1 as pb;
use serde_json::{Value, json};

/// Every route of the sandbox that fpr calls, by the names its faults use.
pub const ROUTES: &[&str] = &[
    "ye.create",
    "ye.get",
    "ye.exact",
    "ye.list",
    "ye.products",
    "graph.users",
    "graph.manager",
    "graph.creation_options",
    "graph.fido2_list",
    "graph.fido2_post",
    "entra.token",
    "okta.users",
    "okta.enroll",
    "okta.activate",
    "okta.send_pin",
    "okta.list",
    "okta.delete",
    "okta.mark_error",
];

/// The failures of the storm (see the sandbox's `Fault::mix`).
pub const STORM_MIX: &[&str] = &["500", "503", "429", "timeout", "drop", "malformed"];

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

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Users ordered in the kill phase.
    pub users: usize,
    /// Orchestrator kills.
    pub kills: usize,
    /// Vault kills.
    pub vault_kills: usize,
    /// Added latency of every upstream call in the kill phase, in milliseconds.
    pub latency_ms: u64,
    /// Shipments ordered in the storm.
    pub storm: usize,
    /// Share of calls that fail in the storm.
    pub storm_rate: f64,
    /// How long processing may take to finish after the ordering, per phase.
    pub settle: Duration,
    /// Print progress to stderr.
    pub verbose: bool,
    /// Run the orchestrator with `okta.resend_pin_when_unknown` (a lost send-pin answer is
    /// asked again: `pin_unknown` becomes possible `duplicate_pins`).
    pub okta_resend_pin_when_unknown: bool,
}

/// The orchestrator settings of every chaos run: short timeouts and waits, so that a run's
/// retries and reconciliations happen within it.
fn chaos_defaults() -> Vec<(&'static str, toml::Value)> {
    let s = |v: &str| toml::Value::String(v.into());
    vec![
        ("upstream_timeout", s("2s")),
        ("reconcile_after", s("2s")),
        ("vault_timeout", s("3s")),
        ("retry.base", s("1s")),
        ("retry.max", s("4s")),
        ("jobs.process_concurrency", toml::Value::Integer(32)),
    ]
}

/// Starts the three services (with `seed_users` extra sandbox users) with the chaos defaults.
pub async fn start(exe: &Path, clock: Clock, seed_users: usize) -> anyhow::Result<Stack> {
    start_in(exe, clock, seed_users, None, &[]).await
}

/// As [`start`], with the orchestrator's store in `store` and these settings changed.
pub async fn start_in(
    exe: &Path,
    clock: Clock,
    seed_users: usize,
    store: Option<&Path>,
    settings: &[(&str, toml::Value)],
) -> anyhow::Result<Stack> {
    let mut all = chaos_defaults();
    all.extend(settings.iter().cloned());
    Stack::start(exe, clock, seed_users, store, &all).await
}

/// Sets the same fault on every route of [`ROUTES`].
pub async fn fault_everywhere(stack: &Stack, fault: &Value) -> anyhow::Result<()> {
    for r in ROUTES {
        stack
            .admin(
                reqwest::Method::PUT,
                &format!("/faults/{r}"),
                Some(fault.clone()),
            )
            .await?;
    }
    Ok(())
}

/// Clears every fault.
pub async fn clear_faults(stack: &Stack) -> anyhow::Result<()> {
    stack
        .admin(reqwest::Method::DELETE, "/faults", None)
        .await?;
    Ok(())
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

/// A valid CreateShipment for `u`: every shipping field given, and for Entra ID the user
/// themself as PIN recipient (so no manager lookup decides the outcome).
pub fn order_request(key: &str, u: &User) -> pb::CreateShipmentRequest {
    pb::CreateShipmentRequest {
        idempotency_key: key.into(),
        idp: if u.okta {
            pb::Idp::Okta
        } else {
            pb::Idp::Entra
        } as i32,
        user_id: u.login.clone(),
        pin_request: Some(pb::PinRequest {
            r#type: "generate".into(),
            length: 8,
            force_change: false,
        }),
        enrollment_contacts: (!u.okta).then(|| pb::EnrollmentContacts {
            emails_to: vec![u.mail.clone()],
        }),
        yubico_shipment_request: Some(pb::YubicoShipmentRequest {
            delivery_type: 1,
            recipient: Some(pb::Recipient {
                recipient_company: "Contoso".into(),
                recipient_email: u.mail.clone(),
                recipient_firstname: "Chaos".into(),
                recipient_lastname: "Tester".into(),
                recipient_telephone: "+1 555 0100".into(),
            }),
            mailing_address: Some(pb::MailingAddress {
                street_line1: "7788 Foxrun Street".into(),
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

/// Whether `body` mentions `serial` as a whole number.
fn mentions(body: &str, serial: &str) -> bool {
    body.match_indices(serial).any(|(i, _)| {
        let before = body[..i].chars().next_back();
        let after = body[i + serial.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// A small xorshift generator (kill timing needs no cryptographic randomness).
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock.
    pub fn from_clock() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Self(t | 1)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo).max(1)
    }
}

/// Orders `users` (keys `{prefix}-{i}`), `parallel` at a time, `pace` apart, each retried
/// with its key until fpr accepts it or refuses it as invalid. Returns index → shipment id.
pub async fn order_all(
    stack: &Stack,
    users: &[User],
    prefix: &str,
    parallel: usize,
    pace: Duration,
    deadline: Duration,
) -> anyhow::Result<BTreeMap<usize, String>> {
    use futures_util::StreamExt as _;
    let until = Instant::now() + deadline;
    let results: Vec<(usize, Option<String>)> =
        futures_util::stream::iter(users.iter().enumerate())
            .map(|(i, u)| async move {
                tokio::time::sleep(pace * i as u32 / parallel.max(1) as u32).await;
                let req = order_request(&format!("{prefix}-{i}"), u);
                loop {
                    let Ok(mut c) = stack.client() else {
                        return (i, None);
                    };
                    match c.create_shipment(req.clone()).await {
                        Ok(r) => return (i, Some(r.into_inner().shipment_id)),
                        Err(e) if e.code() == tonic::Code::InvalidArgument => {
                            eprintln!("fpr-chaos: {} refused: {}", u.login, e.message());
                            return (i, None);
                        }
                        Err(_) if Instant::now() < until => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(_) => return (i, None),
                    }
                }
            })
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
    Ok(results
        .into_iter()
        .filter_map(|(i, id)| id.map(|id| (i, id)))
        .collect())
}

fn settings(o: &Options) -> Vec<(&'static str, toml::Value)> {
    vec![(
        "okta.resend_pin_when_unknown",
        toml::Value::Boolean(o.okta_resend_pin_when_unknown),
    )]
}

/// The kill phase (see the crate docs).
pub async fn kill_phase(exe: &Path, o: &Options) -> anyhow::Result<Report> {
    let stack = start_in(exe, Clock::Instant, o.users + 20, None, &settings(o)).await?;
    let users = stack.users(o.users).await?;
    fault_everywhere(&stack, &json!({"latency_ms": o.latency_ms})).await?;
    let total = o.kills + o.vault_kills;
    let every = total
        .checked_div(o.vault_kills)
        .map_or(usize::MAX, |e| e.max(1));
    // Orders are spread over the time the kills take, so kills land in the middle of work.
    let window = Duration::from_millis(450 * total as u64);
    let pace = window / o.users.max(1) as u32;
    let killer = async {
        let mut rng = Rng::from_clock();
        let mut kills = 0;
        let mut terms = (0, 0);
        let mut vault_left = o.vault_kills;
        for k in 0..total {
            tokio::time::sleep(Duration::from_millis(rng.range(100, 500))).await;
            let vault = vault_left > 0 && (k % every == every - 1 || total - k <= vault_left);
            if vault {
                vault_left -= 1;
                kills += usize::from(stack.kill_vault());
                stack.start_vault(None)?;
            } else {
                kills += usize::from(stack.kill_orchestrator());
                stack.start_orchestrator(None)?;
            }
            // Now and then a graceful stop instead, in the middle of the same work.
            if k % 10 == 5 {
                tokio::time::sleep(Duration::from_millis(rng.range(100, 300))).await;
                terms.0 += 1;
                if !stack.stop_orchestrator()?.success() {
                    terms.1 += 1;
                }
                stack.start_orchestrator(None)?;
            }
            if o.verbose && (k + 1) % 10 == 0 {
                eprintln!("fpr-chaos: {} kills", k + 1);
            }
        }
        anyhow::Ok((kills, terms))
    };
    let orders = order_all(&stack, &users, "kill", 8, pace, window + o.settle);
    let (killed, accepted) = tokio::join!(killer, orders);
    let ((kills, terms), accepted) = (killed?, accepted?);
    clear_faults(&stack).await?;
    stack.settle(o.settle).await?;
    let mut r = tally(&stack, &users, &accepted).await?;
    r.kills = kills;
    r.terms = terms;
    if terms.1 > 0 {
        r.notes.push(format!(
            "{} of {} SIGTERMs did not exit 0",
            terms.1, terms.0
        ));
    }
    Ok(r)
}

/// The fault storm (see the crate docs).
pub async fn storm_phase(exe: &Path, o: &Options) -> anyhow::Result<Report> {
    let stack = start_in(exe, Clock::Instant, o.storm + 20, None, &settings(o)).await?;
    let users = stack.users(o.storm).await?;
    fault_everywhere(
        &stack,
        &json!({
            "error_rate": o.storm_rate,
            "mix": STORM_MIX,
            "after_work": 0.5,
            "hang_ms": 2500,
        }),
    )
    .await?;
    let accepted = order_all(&stack, &users, "storm", 16, Duration::ZERO, o.settle).await?;
    if o.verbose {
        eprintln!("fpr-chaos: storm: {} orders accepted", accepted.len());
    }
    stack.settle(o.settle).await?;
    clear_faults(&stack).await?;
    tally(&stack, &users, &accepted).await
}

/// What the disk phase found.
#[derive(Debug, Default, Clone)]
pub struct DiskReport {
    /// Why it did not run (no tmpfs can be mounted here), if it did not.
    pub skipped: Option<String>,
    /// Orders fpr acknowledged before the disk filled up.
    pub acknowledged: usize,
    /// Orders refused with UNAVAILABLE naming the full disk.
    pub refused_full: usize,
    /// Other answers while the disk was full (each listed in `notes`).
    pub unclear: usize,
    /// Whether the orchestrator refused to start on a read-only store, and what it said.
    pub read_only_refused: Option<String>,
    /// Acknowledged orders missing after the disk had room again and the store was reopened.
    pub missing: usize,
    /// Orders acknowledged after the store was reopened with room (should be all asked).
    pub after: usize,
    /// Details.
    pub notes: Vec<String>,
}

/// Unmounts a tmpfs when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount(args: &[&str], at: &Path) -> bool {
    Command::new("mount")
        .args(args)
        .arg(at)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The disk phase: the orchestrator's store on a small tmpfs that fills up, then goes
/// read-only, then gets room again. Needs root (to mount); otherwise it says so and skips.
pub async fn disk_phase(exe: &Path) -> anyhow::Result<DiskReport> {
    let mut r = DiskReport::default();
    let mnt = tempfile::tempdir()?;
    if !mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], mnt.path()) {
        r.skipped = Some("cannot mount a tmpfs here (needs root)".into());
        return Ok(r);
    }
    let _mounted = Mounted(mnt.path().to_owned());
    let store = mnt.path().join("store");
    let stack = start_in(exe, Clock::Manual, 600, Some(&store), &[]).await?;
    let users = stack.users(600).await?;
    let mut acked = Vec::new();
    let mut refusals_in_a_row = 0;
    for (i, u) in users.iter().enumerate() {
        let mut c = stack.client()?;
        match c
            .create_shipment(order_request(&format!("disk-{i}"), u))
            .await
        {
            Ok(resp) => {
                acked.push(resp.into_inner().shipment_id);
                refusals_in_a_row = 0;
            }
            Err(e) if e.code() == tonic::Code::Unavailable && e.message().contains("full") => {
                r.refused_full += 1;
                refusals_in_a_row += 1;
            }
            Err(e) => {
                r.unclear += 1;
                r.notes.push(format!("{:?}: {}", e.code(), e.message()));
                refusals_in_a_row += 1;
                if e.code() == tonic::Code::Unknown || e.code() == tonic::Code::Unavailable {
                    // The process may have died: bring it back as a supervisor would.
                    stack.kill_orchestrator();
                    if let Err(err) = stack.start_orchestrator(None) {
                        r.notes.push(format!("restart on the full disk: {err:#}"));
                    }
                }
            }
        }
        if refusals_in_a_row >= 5 {
            break;
        }
    }
    r.acknowledged = acked.len();
    stack.kill_orchestrator();
    if mount(&["-o", "remount,ro"], mnt.path()) {
        let (status, said) = stack.start_orchestrator_failing()?;
        if !status.success() {
            r.read_only_refused = Some(said);
        }
    }
    if !mount(&["-o", "remount,rw,size=256m"], mnt.path()) {
        bail!("could not give the tmpfs room again");
    }
    stack.start_orchestrator(None)?;
    let mut c = stack.client()?;
    for id in &acked {
        let found = c
            .get_shipment(pb::GetShipmentRequest {
                shipment_id: id.clone(),
            })
            .await;
        if found.is_err() {
            r.missing += 1;
            r.notes.push(format!("acknowledged {id} missing"));
        }
    }
    for (i, u) in users.iter().enumerate().skip(acked.len() + 50).take(5) {
        if c.create_shipment(order_request(&format!("disk-after-{i}"), u))
            .await
            .is_ok()
        {
            r.after += 1;
        }
    }
    Ok(r)
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
