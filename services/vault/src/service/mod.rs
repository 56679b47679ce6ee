//! `VaultService`: validation, then the JOSE work, then the store; every operation recorded in
//! the audit log before it answers. The checks are in `checks`, the operations that bind,
//! check and send (seal, rebind, deliver) in `ops`.

use std::collections::HashMap;
use std::sync::Arc;

use fpr_jose::jwe::Algorithms;
use fpr_jose::protocol;
use fpr_proto::vault::v1 as pb;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};
use tracing::{Instrument as _, info, info_span, warn};

mod checks;
mod ops;

pub use fpr_jose::protocol::PinSpec;
pub use ops::{open_response, seal_requests};

use self::checks::{binding, check_ref, rejected};
use crate::Error;
use crate::audit::{AuditLog, Event};
use crate::config::RecipientPolicy;
use crate::delivery::Channel;
use crate::jwks::{KeySet, Kind, YubicoKeys};
use crate::keystore::{KeyRecord, KeyStore};
use crate::peer::CallerId;

/// The vault's own rules on PINs, whatever the caller asks, and its audit log.
#[derive(Debug)]
pub struct Guard {
    /// Who may receive a PIN.
    pub recipients: RecipientPolicy,
    /// Sends of one PIN after the first, at most.
    pub max_resends: u32,
    /// Least time between two sends of one PIN.
    pub resend_min_interval: std::time::Duration,
    /// Where every operation is recorded.
    pub audit: AuditLog,
    /// SHA-256 fingerprints of the TLS client certificates allowed.
    pub client_pins: Vec<String>,
}

/// Shared state of the service.
pub struct Vault {
    keystore: KeyStore,
    keys: YubicoKeys,
    channel: Channel,
    algorithms: Algorithms,
    settings: HashMap<String, String>,
    guard: Guard,
    /// Serialises work on one shipment (two DeliverPin calls must not both send).
    locks: Vec<Mutex<()>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

/// The tonic service.
#[derive(Clone, Debug)]
pub struct VaultService(Arc<Vault>);

/// A [`VaultService`] that may have stopped.
#[derive(Clone, Debug)]
pub struct WeakVaultService(std::sync::Weak<Vault>);

impl WeakVaultService {
    /// The service, while it still serves.
    pub fn upgrade(&self) -> Option<VaultService> {
        self.0.upgrade().map(VaultService)
    }
}

// === impl VaultService ===

impl VaultService {
    /// Builds the service.
    pub fn new(
        keystore: KeyStore,
        keys: YubicoKeys,
        channel: Channel,
        algorithms: Algorithms,
        settings: HashMap<String, String>,
        guard: Guard,
    ) -> Self {
        let locks = (0..64).map(|_| Mutex::new(())).collect();
        Self(Arc::new(Vault {
            keystore,
            keys,
            channel,
            algorithms,
            settings,
            guard,
            locks,
        }))
    }

    /// The TLS client certificate fingerprints allowed to call.
    pub fn client_pins(&self) -> Vec<String> {
        self.0.guard.client_pins.clone()
    }

    /// A handle that does not keep the vault (and its store) open.
    pub fn downgrade(&self) -> WeakVaultService {
        WeakVaultService(Arc::downgrade(&self.0))
    }

    /// Re-seals every stored key under `new` unless it is the key in use. Returns the number of
    /// keys re-sealed and the new check value, or None when nothing changed.
    pub async fn rotate_master_key(
        &self,
        new: fpr_jose::seal::MasterKey,
    ) -> Result<Option<(usize, String)>, Error> {
        if new.check_value() == self.0.keystore.check_value() {
            return Ok(None);
        }
        let n = self.0.keystore.rotate(new).await?;
        Ok(Some((n, self.0.keystore.check_value())))
    }
}

/// The audit event of `op` on `shipment_ref`, by whoever made `req`.
fn event<T>(req: &Request<T>, op: &'static str, shipment_ref: &str) -> Event {
    Event {
        caller: req
            .extensions()
            .get::<CallerId>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.clone()),
        op,
        shipment_ref: shipment_ref.to_owned(),
        ..Default::default()
    }
}

fn ts(t: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t,
        nanos: 0,
    }
}

impl Vault {
    /// 1 to 10 addresses, each within the e-mail rule and the recipient policy.
    fn check_recipients(&self, list: &[String]) -> Result<(), Error> {
        if list.is_empty() || list.len() > 10 {
            return Err(Error::InvalidField {
                field: "recipients",
                rule: format!("needs 1 to 10 addresses, got {}", list.len()),
            });
        }
        for (index, e) in list.iter().enumerate() {
            self.guard
                .recipients
                .check(e)
                .map_err(|rule| Error::RecipientRefused { index, rule })?;
        }
        Ok(())
    }

    /// Records `op`'s outcome in the audit log (flushed), and a refused Yubico response at
    /// WARN. An audit log that cannot be written fails the operation's answer. The line is
    /// written and synced on a blocking thread: a sync (or the wait for another call's) held a
    /// runtime thread for the disk's time, and with two of them the vault's other calls
    /// waited.
    async fn audit<T>(
        self: &Arc<Self>,
        event: Event,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        metrics::counter!("fpr_vault_operations_total", "op" => event.op, "outcome" => outcome)
            .increment(1);
        let mut event = event;
        match &result {
            Ok(_) => event.outcome = "ok".into(),
            Err(e) => {
                event.outcome = format!("refused:{}", e.reason());
                if let Error::ResponseRejected {
                    field,
                    reason,
                    check,
                } = e
                {
                    let kids: Vec<String> =
                        event.kids.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    warn!(
                        shipment.id = %event.shipment_ref,
                        field,
                        reason,
                        %check,
                        kids = %kids.join(","),
                        "Yubico response refused",
                    );
                    event.detail = check.clone();
                } else if event.detail.is_empty() {
                    event.detail = e.to_string();
                }
            }
        }
        let vault = self.clone();
        tokio::task::spawn_blocking(move || vault.guard.audit.record(event))
            .await
            .map_err(|e| Error::Audit(format!("the audit line's writer stopped: {e}")))??;
        result
    }

    /// Audits `result` (see [`Vault::audit`]) and turns it into the gRPC answer.
    async fn answer<T>(
        self: &Arc<Self>,
        event: Event,
        result: Result<T, Error>,
    ) -> Result<Response<T>, Status> {
        self.audit(event, result)
            .await
            .map(Response::new)
            .map_err(Status::from)
    }

    fn record(&self, shipment_ref: &str) -> Result<KeyRecord, Error> {
        self.keystore
            .get(shipment_ref)?
            .ok_or_else(|| Error::ShipmentNotFound(shipment_ref.to_owned()))
    }

    /// Decrypts with the shipment's response key, then verifies Yubico's signature (refreshing
    /// the signing set once if the kid is unknown).
    async fn open(
        &self,
        field: &'static str,
        shipment_ref: &str,
        rec: &KeyRecord,
        token: &str,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, String), Error> {
        let key = self.keystore.response_key(shipment_ref, rec)?;
        let signing = self.keys.current(Kind::Signing);
        let verified = match ops::open_response(token, &key, &signing.jwks) {
            Err(fpr_jose::Error::UnknownKid(_))
                if self.keys.refresh_for_unknown_kid(Kind::Signing).await =>
            {
                ops::open_response(token, &key, &self.keys.current(Kind::Signing).jwks)
            }
            other => other,
        }
        .map_err(|e| rejected(field, e))?;
        Ok((verified.payload, verified.kid))
    }

    fn check_header(
        field: &'static str,
        typ: &str,
        want_typ: &str,
        v: u32,
        request_id: &str,
        rec: &KeyRecord,
    ) -> Result<(), Error> {
        if typ != want_typ {
            return Err(binding(
                field,
                "wrong_type",
                // The value is not echoed: a hostile response could carry a secret in it.
                format!("typ is not {want_typ:?}"),
            ));
        }
        if v != protocol::VERSION {
            return Err(binding(
                field,
                "wrong_version",
                format!("v is not {}", protocol::VERSION),
            ));
        }
        if request_id != rec.request_id {
            return Err(binding(
                field,
                "wrong_request_id",
                "request_id does not match this shipment's request".into(),
            ));
        }
        Ok(())
    }

    fn lock_for(&self, shipment_ref: &str) -> &Mutex<()> {
        let h = shipment_ref
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.locks[h % self.locks.len()]
    }
}

fn jwks_status(s: &KeySet) -> pb::JwksStatus {
    pb::JwksStatus {
        kids: s.jwks.kids(),
        fetched_at: s.fetched_at.map(|t| ts(t.unix_timestamp())),
        source: s.source.clone(),
        last_error: s.last_error.clone().unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::vault_service_server::VaultService for VaultService {
    async fn get_status(
        &self,
        _req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let v = &self.0;
        let key_store = match v.keystore.stats() {
            Ok((n, size)) => pb::KeyStoreStatus {
                healthy: true,
                sealed_keys: n,
                master_key_check: v.keystore.check_value(),
                size_on_disk: size,
            },
            Err(e) => {
                warn!(error = %e, "Key store unhealthy");
                pb::KeyStoreStatus {
                    healthy: false,
                    master_key_check: v.keystore.check_value(),
                    ..Default::default()
                }
            }
        };
        Ok(Response::new(pb::GetStatusResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            key_store: Some(key_store),
            transport_jwks: Some(jwks_status(&v.keys.current(Kind::Transport))),
            signing_jwks: Some(jwks_status(&v.keys.current(Kind::Signing))),
            settings: v.settings.clone(),
        }))
    }

    async fn get_yubico_keys(
        &self,
        _req: Request<pb::GetYubicoKeysRequest>,
    ) -> Result<Response<pb::GetYubicoKeysResponse>, Status> {
        let t = self.0.keys.current(Kind::Transport);
        let s = self.0.keys.current(Kind::Signing);
        if t.jwks.keys().is_empty() {
            return Err(Error::NoYubicoKeys("transport").into());
        }
        if s.jwks.keys().is_empty() {
            return Err(Error::NoYubicoKeys("signing").into());
        }
        Ok(Response::new(pb::GetYubicoKeysResponse {
            transport_jwks_json: t.jwks.to_json().to_string(),
            signing_jwks_json: s.jwks.to_json().to_string(),
            transport: Some(jwks_status(&t)),
            signing: Some(jwks_status(&s)),
        }))
    }

    async fn seal_requests(
        &self,
        req: Request<pb::SealRequestsRequest>,
    ) -> Result<Response<pb::SealRequestsResponse>, Status> {
        let mut event = event(&req, "SealRequests", &req.get_ref().shipment_ref);
        let r = req.into_inner();
        event.detail = format!("recipients={}", r.recipients.len());
        let span = info_span!("seal_requests", shipment.id = %r.shipment_ref);
        let result = self.0.seal(r).instrument(span).await;
        if let Ok(s) = &result {
            event.kids = vec![
                ("request", s.request_id.clone()),
                ("transport", s.transport_kid.clone()),
            ];
        }
        self.0.answer(event, result).await
    }

    async fn open_credential_response(
        &self,
        req: Request<pb::OpenCredentialResponseRequest>,
    ) -> Result<Response<pb::OpenCredentialResponseResponse>, Status> {
        let mut event = event(&req, "OpenCredentialResponse", &req.get_ref().shipment_ref);
        let r = req.into_inner();
        let span = info_span!("open_credential_response", shipment.id = %r.shipment_ref);
        let result = self.0.open_credential(&r).instrument(span).await;
        if let Ok(o) = &result {
            event.kids = vec![
                ("request", o.request_id.clone()),
                ("signing", o.signing_kid.clone()),
            ];
            event.detail = format!("serial={}", o.serial_number);
        }
        self.0.answer(event, result).await
    }

    async fn deliver_pin(
        &self,
        req: Request<pb::DeliverPinRequest>,
    ) -> Result<Response<pb::DeliverPinResponse>, Status> {
        let r = req.get_ref();
        let op = if r.validate_only {
            "DeliverPin(validate_only)"
        } else if r.resend {
            "DeliverPin(resend)"
        } else {
            "DeliverPin"
        };
        let mut event = event(&req, op, &r.shipment_ref);
        let r = req.into_inner();
        let span = info_span!("deliver_pin", shipment.id = %r.shipment_ref);
        // The delivery and its audit line run on their own task: a caller that goes away (a
        // deadline, a killed orchestrator) must not cut them between the send and the receipt.
        let vault = self.0.clone();
        tokio::spawn(
            async move {
                let result = vault.deliver(r, &mut event).await;
                if let Ok(d) = &result
                    && let Some(receipt) = &d.receipt
                {
                    event.receipt_id = receipt.message_id.clone();
                    event.detail = format!(
                        "channel={} recipients={} deliveries={} already_delivered={}",
                        receipt.channel,
                        receipt.recipients.len(),
                        receipt.deliveries,
                        d.already_delivered
                    );
                }
                vault.audit(event, result).await
            }
            .instrument(span),
        )
        .await
        .map_err(|_| Status::internal("internal error"))?
        .map(Response::new)
        .map_err(Status::from)
    }

    async fn purge_shipment(
        &self,
        req: Request<pb::PurgeShipmentRequest>,
    ) -> Result<Response<pb::PurgeShipmentResponse>, Status> {
        let event = event(&req, "PurgeShipment", &req.get_ref().shipment_ref);
        let r = req.into_inner();
        let result = async {
            check_ref(&r.shipment_ref)?;
            let _guard = self.0.lock_for(&r.shipment_ref).lock().await;
            let purged = self.0.keystore.purge(&r.shipment_ref).await?;
            info!(shipment.id = %r.shipment_ref, purged, "Shipment purged");
            Ok(pb::PurgeShipmentResponse { purged })
        }
        .await;
        self.0.answer(event, result).await
    }

    async fn check_recipients(
        &self,
        req: Request<pb::CheckRecipientsRequest>,
    ) -> Result<Response<pb::CheckRecipientsResponse>, Status> {
        let mut event = event(&req, "CheckRecipients", "");
        let r = req.into_inner();
        event.detail = format!("recipients={}", r.recipients.len());
        let result = self
            .0
            .check_recipients(&r.recipients)
            .map(|()| pb::CheckRecipientsResponse {});
        self.0.answer(event, result).await
    }

    async fn rebind_recipients(
        &self,
        req: Request<pb::RebindRecipientsRequest>,
    ) -> Result<Response<pb::RebindRecipientsResponse>, Status> {
        let mut event = event(&req, "RebindRecipients", &req.get_ref().shipment_ref);
        let r = req.into_inner();
        let result = self.0.rebind(&r).await;
        if let Ok(b) = &result {
            event.detail = format!(
                "recipients {} -> {}; reason: {}",
                b.previous.len(),
                b.recipients.len(),
                r.reason.trim()
            );
        }
        self.0.answer(event, result).await
    }
}
