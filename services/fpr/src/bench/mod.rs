//! `fpr bench`: the whole order path, timed, as deployed.
//!
//! The sandbox, the vault and the orchestrator run as three processes (the `fpr` binary
//! re-executed as each service, see [`crate::stack`]), each with its on-disk store. The bench
//! makes N sandbox users (half Entra ID, half Okta), orders a key for each through the public
//! gRPC API with the batch path (`fpr batch`'s code: every row checked, then ordered), lets
//! the orchestrator's own processing job run every shipment to the end, and prints, as its
//! last line:
//!
//! `users= accept_per_s= e2e_s= create_p50_ms= create_p99_ms= orchestrator_rss_mb=
//! vault_rss_mb= store_bytes_per_shipment= floor_s=`
//!
//! `floor_s` is measured in the same run ([`floor`]): the unavoidable cryptography of N
//! shipments on one thread, divided by the cores.

pub mod disk;
pub mod floor;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fpr_proto::v1 as pb;

use crate::stack::{Clock, Stack, User};

/// How to run the bench.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `fpr` executable to run the services with.
    pub exe: PathBuf,
    /// Users ordered for.
    pub users: usize,
    /// CreateShipment calls in flight at once (the batch's `--concurrency`).
    pub concurrency: usize,
    /// The orchestrator's `jobs.process_concurrency` (None: its default).
    pub process_concurrency: Option<usize>,
    /// Give up waiting for processing after this long.
    pub timeout: Duration,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Users ordered for.
    pub users: usize,
    /// Batch rows accepted (checked, ordered and durable) per second.
    pub accept_per_s: f64,
    /// From the batch's start until every shipment is complete.
    pub e2e_s: f64,
    /// CreateShipment latency at the client, median.
    pub create_p50_ms: f64,
    /// CreateShipment latency at the client, 99th percentile.
    pub create_p99_ms: f64,
    /// The orchestrator's resident memory at the end.
    pub orchestrator_rss_mb: f64,
    /// The vault's resident memory at the end.
    pub vault_rss_mb: f64,
    /// The orchestrator's store on disk, divided by the shipments.
    pub store_bytes_per_shipment: u64,
    /// The unavoidable cryptography of N shipments on this machine, per core.
    pub floor_s: f64,
    /// Shipments not complete at the end, and batch rows not accepted.
    pub errors: usize,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "users={} accept_per_s={:.0} e2e_s={:.1} create_p50_ms={:.2} create_p99_ms={:.2} \
             orchestrator_rss_mb={:.1} vault_rss_mb={:.1} store_bytes_per_shipment={} floor_s={:.1}",
            self.users,
            self.accept_per_s,
            self.e2e_s,
            self.create_p50_ms,
            self.create_p99_ms,
            self.orchestrator_rss_mb,
            self.vault_rss_mb,
            self.store_bytes_per_shipment,
            self.floor_s
        )
    }
}

// === impl Figures ===

impl Figures {
    /// The goals of 10,000 users on a 2-core machine, each with whether this run met it.
    pub fn goals(&self) -> Vec<(String, bool)> {
        vec![
            (format!("e2e_s {:.1} < 60", self.e2e_s), self.e2e_s < 60.0),
            (
                format!("e2e_s {:.1} <= 3 x floor_s {:.1}", self.e2e_s, self.floor_s),
                self.e2e_s <= 3.0 * self.floor_s,
            ),
            (
                format!("accept_per_s {:.0} >= 500", self.accept_per_s),
                self.accept_per_s >= 500.0,
            ),
            (
                format!("create_p99_ms {:.2} < 5", self.create_p99_ms),
                self.create_p99_ms < 5.0,
            ),
            (
                format!("orchestrator_rss_mb {:.1} < 150", self.orchestrator_rss_mb),
                self.orchestrator_rss_mb < 150.0,
            ),
            (
                format!("vault_rss_mb {:.1} < 64", self.vault_rss_mb),
                self.vault_rss_mb < 64.0,
            ),
            (
                format!(
                    "store_bytes_per_shipment {} <= 4096",
                    self.store_bytes_per_shipment
                ),
                self.store_bytes_per_shipment <= 4096,
            ),
            (format!("errors {} = 0", self.errors), self.errors == 0),
        ]
    }
}

/// The CSV of `users`' orders: every shipping column given; Entra ID users receive their
/// own PIN (Okta e-mails it itself).
fn csv(users: &[User]) -> String {
    let mut out = String::from(
        "idp,user_id,emails_to,recipient_firstname,recipient_lastname,recipient_email,\
         recipient_telephone,recipient_company,street_line1,city,region,postal_code,\
         country_code_2,product_id,inventory_product_id,customization_id,delivery_type\n",
    );
    for u in users {
        let (idp, pin_to) = if u.okta {
            ("okta", "")
        } else {
            ("entra", u.mail.as_str())
        };
        out.push_str(&format!(
            "{idp},{},{pin_to},Bench,User,{},+1 555 0100,Contoso,7788 Foxrun Street,Dedham,MA,02026,US,29,106,RXJN83,1\n",
            u.login, u.mail
        ));
    }
    out
}

/// Syncs timed for the disk's line (about half a second on a local SSD).
const DISK_SYNCS: usize = 2_000;

/// The `q` quantile of `sorted`, in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

/// Resident memory of process `pid`, in MB (from /proc).
fn rss_mb(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system) process `pid` has used, in seconds (from /proc).
fn cpu_s(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) and its closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    ticks / 100.0
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Shipments in `state`, up to `limit` (one page).
async fn count(
    client: &mut crate::client::Client,
    state: pb::ShipmentState,
    limit: u32,
) -> anyhow::Result<usize> {
    let page = client
        .list_shipments(pb::ListShipmentsRequest {
            state: state as i32,
            page_size: limit,
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(page.shipments.len())
}

/// Runs the bench; progress on stderr, the figures returned.
pub async fn run(o: &Options) -> anyhow::Result<Figures> {
    let concurrency = o.process_concurrency;
    let tweak = move |c: &mut fpr_orchestrator::config::Config| {
        if let Some(n) = concurrency {
            c.jobs.process_concurrency = n;
        }
    };
    eprintln!(
        "bench: starting the sandbox, the vault and the orchestrator as three processes ({} users)",
        o.users
    );
    let stack = Stack::start(&o.exe, Clock::Instant, o.users, None, &tweak).await?;
    let users = stack.users(o.users).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bench.csv");
    std::fs::write(&file, csv(&users))?;
    let timings = Arc::new(Mutex::new(Vec::with_capacity(o.users)));
    let opts = crate::batch::Options {
        file,
        concurrency: o.concurrency,
        result: Some(dir.path().join("bench.result.csv")),
        batch_id: Some("bench".into()),
        dry_run: false,
        defaults: crate::request::Fields::default(),
        timings: Some(timings.clone()),
    };
    let mut client = stack.client()?;
    let start = Instant::now();
    let code = crate::batch::run(&client, &opts, true).await?;
    let accepted = start.elapsed();
    eprintln!(
        "bench: batch accepted in {:.1} s (exit {code}); waiting for processing",
        accepted.as_secs_f64()
    );
    let until = start + o.timeout;
    while count(&mut client, pb::ShipmentState::Ongoing, 1).await? > 0 {
        if Instant::now() > until {
            eprintln!("bench: shipments still ongoing after {:?}", o.timeout);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e2e = start.elapsed();
    if let Ok(calls) = stack.admin_get("/calls").await {
        eprintln!("bench: calls the sandbox answered, by route: {calls}");
    }
    let [sandbox, vault, orchestrator] = stack.pids();
    eprintln!(
        "bench: CPU seconds used: orchestrator {:.1}, vault {:.1}, sandbox {:.1}, bench (client) {:.1}",
        cpu_s(orchestrator),
        cpu_s(vault),
        cpu_s(sandbox),
        cpu_s(Some(std::process::id()))
    );
    let mut f = Figures {
        users: o.users,
        accept_per_s: o.users as f64 / accepted.as_secs_f64(),
        e2e_s: e2e.as_secs_f64(),
        orchestrator_rss_mb: rss_mb(orchestrator),
        vault_rss_mb: rss_mb(vault),
        ..Figures::default()
    };
    let complete = stack
        .shipments()
        .await?
        .iter()
        .filter(|s| s.shipment_state == pb::ShipmentState::Complete as i32)
        .count();
    f.errors = o.users.saturating_sub(complete);
    // The store as fpr leaves it: its writer compacts the file once no write has come for
    // 2 s (fpr_store's COMPACT_AFTER_IDLE), if it is mostly free pages.
    let peak = dir_bytes(stack.orchestrator_store());
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let settled = dir_bytes(stack.orchestrator_store());
    eprintln!("bench: orchestrator store {peak} bytes at the end, {settled} once idle");
    f.store_bytes_per_shipment = settled / o.users.max(1) as u64;
    {
        let mut t = timings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.sort();
        f.create_p50_ms = quantile_ms(&t, 0.50);
        f.create_p99_ms = quantile_ms(&t, 0.99);
        eprintln!(
            "bench: CreateShipment latency at the client: p50 {:.2} ms, p90 {:.2}, p99 {:.2}, \
             p99.9 {:.2}, max {:.2}",
            f.create_p50_ms,
            quantile_ms(&t, 0.90),
            f.create_p99_ms,
            quantile_ms(&t, 0.999),
            quantile_ms(&t, 1.0),
        );
    }
    eprintln!(
        "bench: {complete} of {} complete in {:.1} s; vault store {} bytes",
        o.users,
        f.e2e_s,
        dir_bytes(&stack.vault_store())
    );
    drop(stack);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    eprintln!(
        "bench: measuring the floor ({} shipments' cryptography on one thread)",
        o.users
    );
    let (floor, single) = tokio::task::spawn_blocking(move || floor::measure(f.users, cores))
        .await
        .context("the floor measurement")??;
    f.floor_s = floor.as_secs_f64();
    eprintln!(
        "bench: floor {:.1} s on one thread ({:.2} ms a shipment), {cores} cores",
        single.as_secs_f64(),
        single.as_secs_f64() * 1e3 / o.users.max(1) as f64
    );
    let scratch = dir.path().to_owned();
    let syncs = tokio::task::spawn_blocking(move || disk::sync_latency(&scratch, DISK_SYNCS))
        .await
        .context("the disk measurement")??;
    eprintln!(
        "bench: this disk's sync of a 12 KiB write ({DISK_SYNCS} in a row): p50 {:.2} ms, \
         p99 {:.2}, p99.9 {:.2}, max {:.2}",
        quantile_ms(&syncs, 0.50),
        quantile_ms(&syncs, 0.99),
        quantile_ms(&syncs, 0.999),
        quantile_ms(&syncs, 1.0),
    );
    Ok(f)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn quantiles_pick_the_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(super::quantile_ms(&d, 0.5), 50.0);
        assert_eq!(super::quantile_ms(&d, 0.99), 99.0);
        assert_eq!(super::quantile_ms(&[], 0.99), 0.0);
    }
}
