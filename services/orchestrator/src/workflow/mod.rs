//! The shipment workflow: the path of one shipment, top to bottom.
//!
//! ```text
//! accepted ─prepare─▶ sealed ─▶ ordering ─order─▶ ordered ─poll─▶ shipped ─register─▶ registered ─send_pin─▶ pin_sent ─▶ complete
//! ```
//!
//! - **prepare** (per IdP, [`IdpFlow::prepare`]): the user, the PIN recipients and the requests
//!   for Yubico. Entra: creation options, stored before the vault seals them, so that a retry
//!   after a lost answer asks the vault for the very same requests. Okta: `enroll`.
//! - **order** ([`order`]): `ordering` is flushed before YubiEnterprise is called; an order
//!   whose answer was lost (a crash, a timeout, a 5xx, an unreadable 2xx) is reconciled against
//!   YubiEnterprise's list of shipments, never placed again blindly.
//! - **poll**: YubiEnterprise's state until the key ships (103/104) or fails.
//! - **register** (per IdP): everything that can be checked is checked first, the PIN response
//!   included, then the IdP registers the credential (looked up first, so it happens once).
//! - **send_pin** (per IdP): the PIN, once. A delivery whose outcome is unknown is reported as
//!   `pin_delivery_unknown`, never repeated unasked; ResendPin is the explicit ask.
//!
//! Every step is durable before the next upstream call. Upstream calls that may have taken
//! effect are marked in the record first ([`Record::in_flight`]) and found out on the next run.

mod entra;
mod jobs;
mod lookup;
mod memo;
mod okta;
mod order;
mod reissue;
pub mod vault;

use fpr_domain::model::{Idp, Record, ShipmentId, State, Step, backoff};
use fpr_upstream::Error as UpstreamError;
use tokio::sync::{Mutex, broadcast};
use tracing::{Instrument as _, info, info_span, warn};

pub use self::entra::{check_against_options, model_name};
use self::vault::{Delivery, Vault, VaultError};
use crate::Error;
use crate::store::Shipments;

/// Settings of the workflow.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Backoff base and cap in seconds.
    pub retry: (i64, i64),
    /// Seconds after an order whose answer was lost before it is reconciled.
    pub reconcile_after: i64,
    /// Display name template of keys registered in Entra ID.
    pub display_name: String,
    /// Shipments driven at once by the processing job.
    pub concurrency: usize,
    /// Okta: ask send-pin once more when its answer was lost, instead of asking a person.
    pub okta_resend_pin_when_unknown: bool,
    /// The attestation checks run before Entra ID registers a credential.
    pub attestation: crate::attestation::Policy,
    /// Entra ID's challenge lifetime in minutes, and why keys may outlive it (if they may).
    pub entra_challenge: (u32, Option<String>),
    /// Seconds before its challenge expires that an editable order counts as expiring, and
    /// whether it is then re-issued (else flagged); None: not watched.
    pub entra_expiry: Option<(i64, bool)>,
}

/// Everything the workflow talks to, and the locks that keep one shipment in one hand.
pub struct Workflow {
    store: Shipments,
    vault: Vault,
    yubienterprise: fpr_yubienterprise::Client,
    entra: entra::Entra,
    okta: Option<okta::Okta>,
    settings: Settings,
    changes: broadcast::Sender<String>,
    locks: Vec<Mutex<()>>,
    process_lock: Mutex<()>,
    wake: tokio::sync::Notify,
    /// When a shipment was last accepted (milliseconds since the Unix epoch).
    last_accept_ms: std::sync::atomic::AtomicU64,
    stopping: std::sync::atomic::AtomicBool,
    /// Okta look-ups under way, coalesced (see [`lookup`]); None without Okta.
    lookups: Option<std::sync::Arc<lookup::Lookups>>,
    /// Okta users looked up lately (see [`memo`]).
    profiles: memo::Memo<fpr_okta::User>,
    /// PIN recipient lists the vault's policy allowed lately.
    recipients_allowed: memo::Memo<()>,
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow").finish_non_exhaustive()
    }
}

/// What driving a shipment ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Waiting on an upstream (not shipped yet), no step taken.
    Waiting,
    /// Moved at least one step, still ongoing.
    Advanced,
    /// Completed.
    Completed,
    /// Ended in error.
    Errored,
    /// Left ongoing after a transient failure.
    Deferred,
    /// Not ongoing; nothing to do.
    Idle,
}

/// Why a step stopped.
#[derive(Debug)]
pub(crate) enum Halt {
    /// Permanent: the shipment goes to error with this kind and message.
    Fail(&'static str, String),
    /// Transient: try again later (after the upstream's wait, when it gave one).
    Retry(String, Option<i64>),
    /// Nothing more to do now.
    Wait,
    /// Internal (store) failure: leave the record as it is.
    Internal(Error),
}

/// An upstream error as a stop: transient and credential problems are retried, a refusal
/// ends the shipment with `kind`.
pub(crate) fn upstream_halt(kind: &'static str, e: UpstreamError) -> Halt {
    match e {
        UpstreamError::Transient { retry_after, .. } => Halt::Retry(e.to_string(), retry_after),
        UpstreamError::NotFound { .. } | UpstreamError::Rejected { .. } => {
            Halt::Fail(kind, e.to_string())
        }
        UpstreamError::Unauthorized { .. }
        | UpstreamError::Malformed { .. }
        | UpstreamError::Secret { .. } => Halt::Retry(e.to_string(), None),
    }
}

/// A vault error as a stop: a refusal ends the shipment with `kind`, anything else is retried.
pub(crate) fn vault_halt(kind: &'static str, e: VaultError) -> Halt {
    if e.is_refusal() {
        Halt::Fail(kind, e.to_string())
    } else {
        Halt::Retry(e.to_string(), None)
    }
}

/// The step's kind of an error message for a shipment whose PIN may or may not have gone out.
pub const PIN_DELIVERY_UNKNOWN: &str = "pin_delivery_unknown";

/// The contract of one IdP's part of the workflow. Each method moves the record one step (or
/// stops); the record is saved by the caller.
pub(crate) trait IdpFlow {
    /// accepted → sealed: the user, the PIN recipients and the sealed requests for Yubico.
    async fn prepare(&self, wf: &Workflow, rec: &mut Record) -> Result<(), Halt>;
    /// shipped → registered: checks everything checkable, then registers the credential.
    async fn register(&self, wf: &Workflow, rec: &mut Record) -> Result<(), Halt>;
    /// registered → pin_sent (or, with `resend`, one more delivery).
    async fn send_pin(&self, wf: &Workflow, rec: &mut Record, resend: bool) -> Result<(), Halt>;
    /// Tells the IdP that the shipment failed before its key was registered (best effort).
    async fn failed(&self, rec: &Record);
    /// Undoes the IdP's part of a canceled shipment.
    async fn cancel(&self, rec: &Record) -> Result<(), Error>;
}

/// The `idp` label.
pub(crate) fn idp_label(idp: Idp) -> &'static str {
    match idp {
        Idp::Entra => "entra",
        Idp::Okta => "okta",
    }
}

/// Counts a shipment reaching `step` (`fpr_shipment_steps_total`).
pub(crate) fn reached(idp: Idp, step: Step) {
    metrics::counter!("fpr_shipment_steps_total", "idp" => idp_label(idp), "step" => step.name())
        .increment(1);
}

/// Now, unix milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now, unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Runs `$body` with `$f` bound to the record's IdP flow (or stops: Okta not configured).
macro_rules! with_flow {
    ($wf:expr, $idp:expr, |$f:ident| $body:expr, $none:expr) => {
        match $idp {
            Idp::Entra => {
                let $f = &$wf.entra;
                $body
            }
            Idp::Okta => match &$wf.okta {
                Some($f) => $body,
                None => $none,
            },
        }
    };
}

// After the macro, which it uses.
mod admin;

fn no_okta() -> Halt {
    Halt::Fail(
        "idp_not_configured",
        "Okta is not configured on this fpr".into(),
    )
}

// === impl Workflow ===

impl Workflow {
    /// Builds the workflow.
    pub fn new(
        store: Shipments,
        vault: Vault,
        yubienterprise: fpr_yubienterprise::Client,
        entra: fpr_entra::Client,
        okta: Option<(fpr_okta::Client, Vec<String>)>,
        settings: Settings,
    ) -> Self {
        let (changes, _) = broadcast::channel(1024);
        let okta = okta.map(|(client, rp_ids)| {
            okta::Okta::new(client, rp_ids, settings.okta_resend_pin_when_unknown)
        });
        Self {
            lookups: okta
                .as_ref()
                .map(|o| lookup::Lookups::new(o.shared_client())),
            store,
            vault,
            yubienterprise,
            entra: entra::Entra::new(entra, settings.display_name.clone()),
            okta,
            settings,
            changes,
            locks: (0..64).map(|_| Mutex::new(())).collect(),
            process_lock: Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            last_accept_ms: std::sync::atomic::AtomicU64::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
            profiles: memo::Memo::new(memo::TTL),
            recipients_allowed: memo::Memo::new(memo::TTL),
        }
    }

    /// The shipment records.
    pub fn store(&self) -> &Shipments {
        &self.store
    }

    /// The vault.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// YubiEnterprise.
    pub fn yubienterprise(&self) -> &fpr_yubienterprise::Client {
        &self.yubienterprise
    }

    /// Entra ID (Graph).
    pub fn entra(&self) -> &fpr_entra::Client {
        self.entra.client()
    }

    /// Okta, when configured.
    pub fn okta(&self) -> Option<&fpr_okta::Client> {
        self.okta.as_ref().map(okta::Okta::client)
    }

    /// Change notifications (shipment ids), for WatchShipment.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    fn lock_for(&self, id: &ShipmentId) -> &Mutex<()> {
        let h = id
            .as_str()
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.locks[h % self.locks.len()]
    }

    /// Stops taking steps (each shipment stops between two steps, every step taken is saved)
    /// and waits, at most `grace`, for a running processing job to end. For shutdown.
    pub async fn drain(&self, grace: std::time::Duration) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if tokio::time::timeout(grace, self.process_lock.lock())
            .await
            .is_err()
        {
            warn!(
                ?grace,
                "The processing job did not end within the grace period"
            );
        }
    }

    /// Asks for a processing run soon, ahead of the schedule (shipments accepted without their
    /// order). Wakes coalesce: many before a run bring one run.
    pub fn wake_processing(&self) {
        self.accepted_now();
        self.wake.notify_one();
    }

    /// Notes that a shipment was just accepted (see [`Self::quiet`]).
    fn accepted_now(&self) {
        self.last_accept_ms
            .store(unix_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits until no shipment was accepted for `gap`, or `at_most` has passed: a scheduled
    /// run lets a batch that is arriving be accepted first, so that acceptance is not slowed
    /// by processing, and then takes it whole.
    pub async fn quiet(&self, gap: std::time::Duration, at_most: std::time::Duration) {
        let until = tokio::time::Instant::now() + at_most;
        loop {
            let last = self
                .last_accept_ms
                .load(std::sync::atomic::Ordering::Relaxed);
            let since = std::time::Duration::from_millis(unix_ms().saturating_sub(last));
            if since >= gap || tokio::time::Instant::now() >= until {
                return;
            }
            tokio::time::sleep((gap - since).min(until - tokio::time::Instant::now())).await;
        }
    }

    /// Returns when processing was asked for by [`Self::wake_processing`].
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Saves a record (flushed) and tells watchers.
    pub async fn save(&self, rec: &Record) -> Result<(), Error> {
        self.store.put(rec).await?;
        self.changed(rec);
        Ok(())
    }

    /// [`Workflow::save`] for a processing step: no caller waits on it, so its commit may
    /// wait a moment for other steps' writes (fewer commits while many shipments advance).
    async fn save_step(&self, rec: &Record) -> Result<(), Error> {
        self.store.put_grouped(rec).await?;
        self.changed(rec);
        Ok(())
    }

    /// Tells watchers that `rec` changed.
    fn changed(&self, rec: &Record) {
        let _ = self.changes.send(rec.id.clone());
    }

    fn load(&self, id: &ShipmentId) -> Result<Record, Error> {
        self.store
            .get(id.as_str())?
            .ok_or_else(|| Error::ShipmentNotFound(id.to_string()))
    }

    /// Drives one shipment as far as it goes now.
    pub async fn drive(&self, id: &ShipmentId) -> Result<Outcome, Error> {
        let _guard = self.lock_for(id).lock().await;
        let mut rec = self.load(id)?;
        if rec.state != State::Ongoing {
            return Ok(Outcome::Idle);
        }
        let span =
            info_span!("shipment", shipment.id = %rec.id, user.id = %rec.user_id, job = "process");
        async move {
            let mut advanced = false;
            // A step whose result a crash can have again is saved with the next step's first
            // write, one durable write fewer each: the poll that found the key shipped (it
            // only read) and the sealing (the vault seals a shipment's stored options once and
            // answers a repeat with the same requests; an Okta enrollment left marked in
            // flight is found and removed before enrolling again). The next steps, the order
            // and the registration, write first thing.
            let mut unsaved = false;
            loop {
                if self.stopping() {
                    if unsaved {
                        self.save_step(&rec).await?;
                    }
                    info!("Stopping between steps");
                    return Ok(if advanced {
                        Outcome::Advanced
                    } else {
                        Outcome::Waiting
                    });
                }
                let before = rec.step;
                // One trace per step: the vault's and the upstreams' spans hang under it.
                let step_span = info_span!(
                    parent: None,
                    "shipment.step",
                    shipment.id = %rec.id,
                    step = before.name(),
                    idp = idp_label(rec.idp),
                    trace_id = tracing::field::Empty,
                );
                step_span.follows_from(tracing::Span::current());
                step_span.in_scope(fpr_telemetry::trace::record_trace_id);
                let taken = self.step(&mut rec).instrument(step_span).await;
                match taken {
                    Ok(()) => {
                        unsaved = matches!(
                            (before, rec.step),
                            (Step::Ordered, Step::Shipped) | (Step::Accepted, Step::Sealed)
                        );
                        if !unsaved {
                            self.save_step(&rec).await?;
                        }
                        if rec.step != before {
                            reached(rec.idp, rec.step);
                        }
                        if rec.state == State::Complete {
                            info!("Shipment complete");
                            return Ok(Outcome::Completed);
                        }
                        advanced |= rec.step != before;
                    }
                    Err(Halt::Wait) => {
                        self.save_step(&rec).await?;
                        return Ok(if advanced {
                            Outcome::Advanced
                        } else {
                            Outcome::Waiting
                        });
                    }
                    Err(Halt::Fail(kind, message)) => {
                        warn!(error.kind = kind, %message, "Shipment failed");
                        if rec.step < Step::Registered {
                            with_flow!(self, rec.idp, |f| f.failed(&rec).await, ());
                        }
                        rec.fail(kind, &message, now());
                        self.save_step(&rec).await?;
                        metrics::counter!("fpr_shipment_errors_total", "idp" => idp_label(rec.idp), "kind" => kind)
                            .increment(1);
                        return Ok(Outcome::Errored);
                    }
                    Err(Halt::Retry(message, retry_after)) => {
                        let (base, max) = self.settings.retry;
                        let wait = backoff(base, max, rec.attempts, retry_after);
                        info!(%message, wait, "Transient failure; will retry");
                        rec.defer(&message, wait, now());
                        self.save_step(&rec).await?;
                        metrics::counter!("fpr_shipment_retries_total", "idp" => idp_label(rec.idp), "step" => rec.step.name())
                            .increment(1);
                        return Ok(Outcome::Deferred);
                    }
                    Err(Halt::Internal(e)) => return Err(e),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One step from `rec.step`; Ok means a step was taken (and must be saved).
    async fn step(&self, rec: &mut Record) -> Result<(), Halt> {
        match rec.step {
            Step::Accepted => with_flow!(
                self,
                rec.idp,
                |f| f.prepare(self, rec).await,
                Err(no_okta())
            ),
            Step::Sealed => self.order(rec).await,
            Step::Ordering => self.reconcile(rec).await,
            Step::Ordered => self.poll(rec).await,
            Step::Shipped => with_flow!(
                self,
                rec.idp,
                |f| f.register(self, rec).await,
                Err(no_okta())
            ),
            Step::Registered => {
                with_flow!(
                    self,
                    rec.idp,
                    |f| f.send_pin(self, rec, false).await,
                    Err(no_okta())
                )?;
                // No upstream call lies between the PIN and the end: one write for both.
                if rec.step == Step::PinSent {
                    Self::finish(rec);
                }
                Ok(())
            }
            Step::PinSent | Step::Complete => {
                Self::finish(rec);
                Ok(())
            }
        }
    }

    fn finish(rec: &mut Record) {
        rec.state = State::Complete;
        rec.reach(Step::Complete, now());
    }

    /// ordered → shipped: poll until shipped (103/104); error states and 404 end the shipment.
    async fn poll(&self, rec: &mut Record) -> Result<(), Halt> {
        let Some(id) = rec.ye_shipment_id.clone() else {
            return Err(Halt::Fail("internal", "no YubiEnterprise id".into()));
        };
        if rec.replaced_ye_ids.contains(&id) {
            // A re-issue's cancel was under way: finish it.
            return self.reissue(rec, &id).await;
        }
        let s = match self.yubienterprise.get_fpr_shipment(&id).await {
            Ok(s) => s,
            Err(UpstreamError::NotFound { .. }) => {
                return Err(Halt::Fail(
                    "yubienterprise_not_found",
                    format!(
                        "YubiEnterprise shipment {id} no longer exists (404); it is not processed again"
                    ),
                ));
            }
            Err(e) => return Err(upstream_halt("yubienterprise_failed", e)),
        };
        rec.ye_state_id = s.state_id;
        rec.ye_state_message = s.state_message.clone();
        if !s.tracking_link.is_empty() {
            rec.tracking_link = s.tracking_link.clone();
        }
        if fpr_yubienterprise::is_error_state(s.state_id) {
            let kind = match s.state_id {
                1 => "yubienterprise_state_1",
                6 => "yubienterprise_state_6",
                7 => "yubienterprise_state_7",
                8 => "yubienterprise_state_8",
                9 => "yubienterprise_state_9",
                99 => "yubienterprise_state_99",
                105 => "yubienterprise_state_105",
                _ => "yubienterprise_state_106",
            };
            return Err(Halt::Fail(
                kind,
                format!("YubiEnterprise state {}: {}", s.state_id, s.state_message),
            ));
        }
        let Some(pd) = s.product_data else {
            return match self.expiring(rec, s.state_id) {
                Some(true) => self.reissue(rec, &id).await,
                Some(false) => {
                    self.flag_expiring(rec, &id);
                    Err(Halt::Wait)
                }
                None => Err(Halt::Wait),
            };
        };
        let Some(cred) = pd.fido_credential_responses.first().cloned() else {
            return Err(Halt::Fail(
                "response_missing",
                "no credential response in product_data".into(),
            ));
        };
        rec.serial = pd.serial_number;
        rec.firmware = pd.firmware_version;
        rec.credential_response_jwe = Some(cred);
        rec.pin_response_jwe = Some(pd.fido_pin_response);
        rec.reach(Step::Shipped, now());
        Ok(())
    }

    /// The deliver step's shared part for both IdPs' checks: the vault's answer to a
    /// check-only DeliverPin, as a stop.
    async fn check_pin_response(&self, rec: &Record) -> Result<(), Halt> {
        self.vault
            .deliver_pin(rec, Delivery::Check)
            .await
            .map(|_| ())
            .map_err(|e| vault_halt("pin_response_rejected", e))
    }
}
