//! fpr-chaos: the order path under crashes and upstream faults, counted. It runs the sandbox,
//! the vault and the orchestrator as three processes over real sockets with on-disk stores, then:
//! the kill phase ([`kill_phase`]) orders while the services are SIGKILLed and restarted; the
//! fault storm ([`storm_phase`]) makes every sandbox route fail (5xx, 429, hangs, dropped
//! connections, bad 2xx; half of them after the upstream did the work). It counts orders,
//! registrations and PIN mails per user from the sandbox, and lost, stuck and errored shipments
//! from fpr, into a [`Report`].
//! NO SECURITY: a test tool. It binds only to 127.0.0.1 port 0 or temporary Unix sockets, and
//! kills what it started when dropped.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
pub use fpr::stack::{Clock, Stack, User};
use fpr_orchestrator::config::Config as OrchestratorConfig;
use fpr_proto::v1 as pb;
use serde_json::{Value, json};

mod count;
mod disk;
pub use self::count::{Report, tally};
pub use self::disk::{DiskReport, disk_phase};

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
fn chaos_defaults(c: &mut OrchestratorConfig) {
    c.upstream_timeout = Duration::from_secs(2);
    c.reconcile_after = Duration::from_secs(2);
    c.vault_timeout = Duration::from_secs(3);
    c.retry.base = Duration::from_secs(1);
    c.retry.max = Duration::from_secs(4);
    c.jobs.process_concurrency = 32;
}

/// Starts the three services (with `seed_users` extra sandbox users) with the chaos defaults.
pub async fn start(exe: &Path, clock: Clock, seed_users: usize) -> anyhow::Result<Stack> {
    start_in(exe, clock, seed_users, None, &|_| {}).await
}

/// As [`start`], with the orchestrator's store in `store` and its configuration changed by
/// `tweak` (after the chaos defaults).
pub async fn start_in(
    exe: &Path,
    clock: Clock,
    seed_users: usize,
    store: Option<&Path>,
    tweak: &dyn Fn(&mut OrchestratorConfig),
) -> anyhow::Result<Stack> {
    let all = |c: &mut OrchestratorConfig| {
        chaos_defaults(c);
        tweak(c);
    };
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

fn settings(o: &Options) -> impl Fn(&mut OrchestratorConfig) + use<> {
    let resend = o.okta_resend_pin_when_unknown;
    move |c: &mut OrchestratorConfig| {
        if let Some(okta) = c.okta.as_mut() {
            okta.resend_pin_when_unknown = resend;
        }
    }
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
