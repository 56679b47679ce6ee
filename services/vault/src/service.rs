//! `VaultService`: validation, then the JOSE work, then the store.

use std::collections::HashMap;
use std::sync::Arc;

use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::{
    self, CredentialRequest, CredentialResponse, PinRequest, PinResponse, PinSpec,
};
use fpr_jose::{Curve, PrivateKey, jws};
use fpr_proto::vault::v1 as pb;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};
use tracing::{Instrument as _, info, info_span, warn};

use crate::Error;
use crate::audit::{AuditLog, Event};
use crate::config::RecipientPolicy;
use crate::delivery::{self, Channel};
use crate::jwks::{KeySet, Kind, YubicoKeys};
use crate::keystore::{KeyStore, Receipt, Record};
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
    pub fn rotate_master_key(
        &self,
        new: fpr_jose::seal::MasterKey,
    ) -> Result<Option<(usize, String)>, Error> {
        if new.check_value() == self.0.keystore.check_value() {
            return Ok(None);
        }
        let n = self.0.keystore.rotate(new)?;
        Ok(Some((n, self.0.keystore.check_value())))
    }
}

const REF_RULE: &str = "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -";

fn check_ref(r: &str) -> Result<(), Error> {
    let ok = !r.is_empty()
        && r.len() <= 128
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidField {
            field: "shipment_ref",
            rule: REF_RULE.into(),
        })
    }
}

fn check_token(field: &'static str, t: &str) -> Result<(), Error> {
    if t.is_empty() {
        return Err(Error::InvalidField {
            field,
            rule: "is required".into(),
        });
    }
    if t.len() > fpr_jose::MAX_TOKEN_LEN {
        return Err(Error::InvalidField {
            field,
            rule: format!("is {} bytes, over the 65536-byte limit", t.len()),
        });
    }
    Ok(())
}

/// Checks the creation options are a WebAuthn PublicKeyCredentialCreationOptions object.
fn check_options(json: &str) -> Result<Value, Error> {
    const F: &str = "creation_options_json";
    let bad = |rule: &str| Error::InvalidField {
        field: F,
        rule: rule.into(),
    };
    if json.len() > fpr_jose::MAX_TOKEN_LEN {
        return Err(bad("is over the 65536-byte limit"));
    }
    let v: Value = serde_json::from_str(json).map_err(|_| bad("must be a JSON object"))?;
    // Graph wraps the options as {"publicKey": {...}}; accept that shape too.
    let opts = v.get("publicKey").cloned().unwrap_or(v);
    if !opts.is_object() {
        return Err(bad("must be a JSON object"));
    }
    let has_str = |ptr: &str| {
        opts.pointer(ptr)
            .and_then(Value::as_str)
            .is_some_and(|c| !c.is_empty())
    };
    for (ptr, rule) in [
        ("/challenge", "needs a non-empty string challenge"),
        ("/rp/id", "needs rp.id"),
        ("/user/id", "needs user.id"),
    ] {
        if !has_str(ptr) {
            return Err(bad(rule));
        }
    }
    if opts
        .get("pubKeyCredParams")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(bad("needs a non-empty pubKeyCredParams"));
    }
    Ok(opts)
}

fn caller<T>(req: &Request<T>) -> String {
    req.extensions()
        .get::<CallerId>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.clone())
}

/// Lower-cased and sorted: two lists naming the same addresses compare equal.
fn normalized(list: &[String]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|e| e.to_ascii_lowercase()).collect();
    v.sort();
    v.dedup();
    v
}

fn ts(t: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t,
        nanos: 0,
    }
}

fn rejected(field: &'static str, e: fpr_jose::Error) -> Error {
    use fpr_jose::Error as J;
    let reason = match &e {
        J::TooLarge { .. } => "too_large",
        J::Malformed(_) | J::Framing(_) => "malformed",
        J::ForbiddenAlgorithm { .. } => "forbidden_algorithm",
        J::ForbiddenHeader(_) => "forbidden_header",
        J::MissingHeader(_) => "missing_header",
        J::KidMismatch { .. } => "wrong_response_key",
        J::UnknownKid(_) => "unknown_signing_key",
        J::KeyAlgorithmMismatch { .. } => "key_algorithm_mismatch",
        J::InvalidEphemeralKey(_) => "invalid_ephemeral_key",
        J::KeyUnwrapFailed | J::DecryptionFailed => "decryption_failed",
        J::BadSignature { .. } => "bad_signature",
        J::Payload(_) => "bad_payload",
        _ => "rejected",
    };
    Error::ResponseRejected {
        field,
        reason,
        check: e.to_string(),
    }
}

/// Refuses a payload whose `typ` names another message before its shape is parsed, so a
/// credential response sent as a PIN response (or the reverse) is named for what it is.
fn expect_typ(field: &'static str, payload: &[u8], want: &str) -> Result<(), Error> {
    #[derive(serde::Deserialize)]
    struct Typ {
        typ: Option<Value>,
    }
    if let Ok(Typ { typ: Some(t) }) = serde_json::from_slice::<Typ>(payload)
        && t.as_str() != Some(want)
    {
        return Err(binding(field, "wrong_type", format!("typ is not {want:?}")));
    }
    Ok(())
}

fn binding(field: &'static str, reason: &'static str, check: String) -> Error {
    Error::ResponseRejected {
        field,
        reason,
        check,
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
    /// WARN. An audit log that cannot be written fails the operation's answer.
    fn audit<T>(&self, event: Event, result: Result<T, Error>) -> Result<T, Error> {
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
                    warn!(shipment.id = %event.shipment_ref, field, reason, %check, kid = %event.kids.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","), "Yubico response refused");
                    event.detail = check.clone();
                } else if event.detail.is_empty() {
                    event.detail = e.to_string();
                }
            }
        }
        self.guard.audit.record(event)?;
        result
    }

    fn record(&self, shipment_ref: &str) -> Result<Record, Error> {
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
        rec: &Record,
        token: &str,
    ) -> Result<(zeroize::Zeroizing<Vec<u8>>, String), Error> {
        let key = self.keystore.response_key(shipment_ref, rec)?;
        let inner = jwe::decrypt(token, &key).map_err(|e| rejected(field, e))?;
        let inner = std::str::from_utf8(&inner)
            .map_err(|_| binding(field, "malformed", "inner JWS is not UTF-8".into()))?;
        let signing = self.keys.current(Kind::Signing);
        let verified = match jws::verify(inner, &signing.jwks) {
            Err(fpr_jose::Error::UnknownKid(_))
                if self.keys.refresh_for_unknown_kid(Kind::Signing).await =>
            {
                jws::verify(inner, &self.keys.current(Kind::Signing).jwks)
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
        rec: &Record,
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

    /// SealRequests: checks, recipients bound, then the JOSE work and the durable record.
    async fn seal(&self, r: pb::SealRequestsRequest) -> Result<pb::SealRequestsResponse, Error> {
        check_ref(&r.shipment_ref)?;
        let options = check_options(&r.creation_options_json)?;
        let policy = r.pin_policy.ok_or(Error::InvalidField {
            field: "pin_policy",
            rule: "is required".into(),
        })?;
        if !protocol::PIN_LENGTH.contains(&policy.length) {
            return Err(Error::InvalidField {
                field: "pin_policy.length",
                rule: format!("{} is outside 4 to 63", policy.length),
            });
        }
        self.check_recipients(&r.recipients)?;
        let pin = PinSpec {
            kind: "generate".into(),
            length: policy.length,
            force_change: policy.force_change,
        };
        let base = [
            r.creation_options_json.as_bytes(),
            &policy.length.to_be_bytes(),
            &[u8::from(policy.force_change)],
        ];
        let bound = normalized(&r.recipients).join("\n");
        let inputs = digest(&[base[0], base[1], base[2], bound.as_bytes()]);

        let _guard = self.lock_for(&r.shipment_ref).lock().await;
        if let Some(mut rec) = self.keystore.get(&r.shipment_ref)? {
            if rec.inputs_digest == inputs {
                return Ok(sealed_response(&rec));
            }
            // Sealed before recipients were bound: the same inputs bind them now.
            if rec.recipients.is_empty() && rec.inputs_digest == digest(&base) {
                rec.recipients = r.recipients.clone();
                rec.inputs_digest = inputs;
                self.keystore.update(&r.shipment_ref, &rec)?;
                return Ok(sealed_response(&rec));
            }
            return Err(Error::AlreadySealed(r.shipment_ref.clone()));
        }
        let transport_set = self.keys.current(Kind::Transport);
        let transport = transport_set
            .jwks
            .choose_encryption_key()
            .map_err(Error::Crypto)?
            .ok_or(Error::NoYubicoKeys("transport"))?
            .clone();
        let (key, cred_jwe, pin_jwe) =
            seal_requests(&options, &pin, &transport, self.algorithms).map_err(Error::Crypto)?;
        let rec = self.keystore.insert_new(
            &r.shipment_ref,
            &key,
            inputs,
            transport.kid().to_owned(),
            cred_jwe,
            pin_jwe,
            r.recipients.clone(),
            OffsetDateTime::now_utc().unix_timestamp(),
        )?;
        fpr_config::danger::crash_point("vault.after_seal");
        info!(request.id = %rec.request_id, transport.kid = %rec.transport_kid, recipients = rec.recipients.len(), "Requests sealed");
        Ok(sealed_response(&rec))
    }

    /// Replaces a sealed shipment's bound recipients (policy-checked).
    async fn rebind(
        &self,
        r: &pb::RebindRecipientsRequest,
    ) -> Result<pb::RebindRecipientsResponse, Error> {
        check_ref(&r.shipment_ref)?;
        self.check_recipients(&r.recipients)?;
        let reason = r.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::InvalidField {
                field: "reason",
                rule: "must be 1 to 500 characters".into(),
            });
        }
        let _guard = self.lock_for(&r.shipment_ref).lock().await;
        let mut rec = self.record(&r.shipment_ref)?;
        let previous = std::mem::replace(&mut rec.recipients, r.recipients.clone());
        self.keystore.update(&r.shipment_ref, &rec)?;
        warn!(shipment.id = %r.shipment_ref, before = previous.len(), after = rec.recipients.len(), "PIN recipients rebound");
        Ok(pb::RebindRecipientsResponse {
            previous,
            recipients: rec.recipients,
        })
    }

    fn lock_for(&self, shipment_ref: &str) -> &Mutex<()> {
        let h = shipment_ref
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.locks[h % self.locks.len()]
    }

    /// DeliverPin: every check, then (unless `validate_only`) the intent, the send and the
    /// receipt. A PIN is sent once: a repeated call answers with the receipt, and a delivery
    /// found interrupted is reported, never repeated unasked (`resend` is the explicit ask).
    /// `event` gets the shipment's request id (the response key's kid) once the record is read.
    async fn deliver(
        &self,
        r: pb::DeliverPinRequest,
        event: &mut Event,
    ) -> Result<pb::DeliverPinResponse, Error> {
        const F: &str = "pin_response_jwe";
        check_ref(&r.shipment_ref)?;
        check_token(F, &r.pin_response_jwe)?;
        if r.expected_serial.is_empty()
            || r.expected_serial.len() > 20
            || !r.expected_serial.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Error::InvalidField {
                field: "expected_serial",
                rule: "must be 1 to 20 decimal digits".into(),
            });
        }
        if r.recipients.len() > 10 {
            return Err(Error::InvalidField {
                field: "recipients",
                rule: format!("needs 1 to 10 addresses, got {}", r.recipients.len()),
            });
        }
        let _guard = self.lock_for(&r.shipment_ref).lock().await;
        let mut rec = self.record(&r.shipment_ref)?;
        event.kids = vec![("request", rec.request_id.clone())];
        // Only the addresses bound at SealRequests; a record sealed before binding existed
        // binds the first list it is asked to send to (still within the policy).
        let recipients = if rec.recipients.is_empty() {
            r.recipients.clone()
        } else {
            if !r.recipients.is_empty() {
                let bound = normalized(&rec.recipients);
                if let Some(i) = r
                    .recipients
                    .iter()
                    .position(|e| !bound.contains(&e.to_ascii_lowercase()))
                {
                    return Err(Error::RecipientNotBound(i));
                }
            }
            rec.recipients.clone()
        };
        self.check_recipients(&recipients)?;
        if r.resend
            && !r.validate_only
            && let Some(last) = &rec.receipt
        {
            let resends = last.deliveries.saturating_sub(1);
            if resends >= self.guard.max_resends {
                return Err(Error::ResendLimited(format!(
                    "shipment {:?}'s PIN was sent {} times; at most {} resends are allowed (delivery.max_resends)",
                    r.shipment_ref, last.deliveries, self.guard.max_resends
                )));
            }
            let since = OffsetDateTime::now_utc().unix_timestamp() - last.delivered_at;
            let min = self.guard.resend_min_interval.as_secs() as i64;
            if since < min {
                return Err(Error::ResendLimited(format!(
                    "shipment {:?}'s PIN was sent {since} s ago; resend in {} s (delivery.resend_min_interval)",
                    r.shipment_ref,
                    min - since
                )));
            }
        }
        if !r.resend && !r.validate_only {
            if let Some(receipt) = &rec.receipt {
                info!(request.id = %rec.request_id, "PIN already delivered; not sending again");
                return Ok(pb::DeliverPinResponse {
                    receipt: Some(receipt_pb(receipt)),
                    already_delivered: true,
                });
            }
            if let Some(started) = rec.delivery_started {
                warn!(request.id = %rec.request_id, started, "An earlier PIN delivery was interrupted; not sending again unasked");
                return Err(Error::DeliveryOutcomeUnknown(
                    r.shipment_ref.clone(),
                    started,
                ));
            }
        }
        let (payload, _kid) = self
            .open(F, &r.shipment_ref, &rec, &r.pin_response_jwe)
            .await?;
        expect_typ(F, &payload, protocol::PIN_RESPONSE)?;
        let resp: PinResponse =
            serde_json::from_slice(&payload).map_err(|e| rejected(F, fpr_jose::Error::from(e)))?;
        drop(payload);
        Vault::check_header(
            F,
            &resp.typ,
            protocol::PIN_RESPONSE,
            resp.v,
            &resp.request_id,
            &rec,
        )?;
        if resp.serial_number != r.expected_serial {
            return Err(binding(
                F,
                "serial_mismatch",
                "serial_number differs from expected_serial".into(),
            ));
        }
        if let Some(cs) = &rec.credential_serial
            && *cs != resp.serial_number
        {
            return Err(binding(
                F,
                "serial_mismatch",
                "serial_number differs from the credential response's".into(),
            ));
        }
        let pin_len = resp.pin().len();
        if !protocol::PIN_LENGTH.contains(&(pin_len as u32))
            || !resp.pin().bytes().all(|b| b.is_ascii_digit())
        {
            return Err(binding(
                F,
                "bad_payload",
                format!("the PIN must be 4 to 63 digits (has {pin_len} characters)"),
            ));
        }
        if r.validate_only {
            info!(request.id = %rec.request_id, "PIN response checked; nothing sent");
            return Ok(pb::DeliverPinResponse {
                receipt: None,
                already_delivered: rec.receipt.is_some(),
            });
        }
        let ctx = r.context.unwrap_or_default();
        let ctx = delivery::Context {
            display_name: ctx.user_display_name,
            upn: ctx.user_principal_name,
            shipment_id: ctx.shipment_id,
            serial: resp.serial_number.clone(),
        };
        // Durable intent before the send: a stop between here and the receipt is found later.
        rec.delivery_started = Some(OffsetDateTime::now_utc().unix_timestamp());
        self.keystore.update(&r.shipment_ref, &rec)?;
        let sent = match self.channel.send(resp.pin(), &recipients, &ctx).await {
            Ok(sent) => sent,
            Err(e) => {
                // The channel refused: nothing went out, so the intent is withdrawn.
                rec.delivery_started = None;
                self.keystore.update(&r.shipment_ref, &rec)?;
                return Err(e);
            }
        };
        drop(resp);
        fpr_config::danger::crash_point("vault.after_send");
        let receipt = Receipt {
            channel: sent.channel.into(),
            recipients: recipients.clone(),
            message_id: sent.message_id,
            delivered_at: sent.at.unix_timestamp(),
            deliveries: rec.receipt.as_ref().map_or(0, |x| x.deliveries) + 1,
        };
        rec.receipt = Some(receipt.clone());
        rec.delivery_started = None;
        rec.recipients = recipients;
        self.keystore.update(&r.shipment_ref, &rec)?;
        info!(request.id = %rec.request_id, channel = sent.channel, deliveries = receipt.deliveries, "PIN delivered");
        Ok(pb::DeliverPinResponse {
            receipt: Some(receipt_pb(&receipt)),
            already_delivered: false,
        })
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

fn digest(parts: &[&[u8]]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(&(p.len() as u64).to_be_bytes());
        all.extend_from_slice(p);
    }
    fpr_jose::util::sha256(&all)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sealed_response(rec: &Record) -> pb::SealRequestsResponse {
    pb::SealRequestsResponse {
        request_id: rec.request_id.clone(),
        transport_kid: rec.transport_kid.clone(),
        credential_request_jwe: rec.credential_request_jwe.clone(),
        pin_request_jwe: rec.pin_request_jwe.clone(),
        response_public_jwk_json: rec.response_public_jwk.to_string(),
    }
}

fn receipt_pb(r: &Receipt) -> pb::DeliveryReceipt {
    pb::DeliveryReceipt {
        channel: r.channel.clone(),
        recipients: r.recipients.clone(),
        message_id: r.message_id.clone(),
        delivered_at: Some(ts(r.delivered_at)),
        deliveries: r.deliveries,
    }
}

/// The pure JOSE work of SealRequests: a new response key and both request JWEs. Public so the
/// benchmark measures exactly this.
pub fn seal_requests(
    options: &Value,
    pin: &PinSpec,
    transport: &fpr_jose::PublicJwk,
    algorithms: Algorithms,
) -> Result<(PrivateKey, String, String), fpr_jose::Error> {
    let request_id = fpr_jose::util::random_id()?;
    let key = PrivateKey::generate(Curve::P384, &request_id)?;
    let response_key = key.public().to_json();
    let cred = CredentialRequest {
        typ: protocol::CREDENTIAL_REQUEST.into(),
        v: protocol::VERSION,
        request_id: request_id.clone(),
        response_key: response_key.clone(),
        public_key: options.clone(),
    };
    let pin_req = PinRequest {
        typ: protocol::PIN_REQUEST.into(),
        v: protocol::VERSION,
        request_id,
        response_key,
        pin: pin.clone(),
    };
    let cred_jwe = jwe::encrypt(
        &serde_json::to_vec(&cred).map_err(fpr_jose::Error::from)?,
        transport,
        algorithms,
    )?;
    let pin_jwe = jwe::encrypt(
        &serde_json::to_vec(&pin_req).map_err(fpr_jose::Error::from)?,
        transport,
        algorithms,
    )?;
    Ok((key, cred_jwe, pin_jwe))
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
        let who = caller(&req);
        let r = req.into_inner();
        let span = info_span!("seal_requests", shipment.id = %r.shipment_ref);
        let event = Event {
            caller: who,
            op: "SealRequests",
            shipment_ref: r.shipment_ref.clone(),
            detail: format!("recipients={}", r.recipients.len()),
            ..Default::default()
        };
        let result = self.0.seal(r).instrument(span).await;
        let mut event = event;
        if let Ok(s) = &result {
            event.kids = vec![
                ("request", s.request_id.clone()),
                ("transport", s.transport_kid.clone()),
            ];
        }
        self.0
            .audit(event, result)
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn open_credential_response(
        &self,
        req: Request<pb::OpenCredentialResponseRequest>,
    ) -> Result<Response<pb::OpenCredentialResponseResponse>, Status> {
        const F: &str = "credential_response_jwe";
        let who = caller(&req);
        let r = req.into_inner();
        let span = info_span!("open_credential_response", shipment.id = %r.shipment_ref);
        let event = Event {
            caller: who,
            op: "OpenCredentialResponse",
            shipment_ref: r.shipment_ref.clone(),
            ..Default::default()
        };
        let result = async {
            check_ref(&r.shipment_ref)?;
            check_token(F, &r.credential_response_jwe)?;
            let v = &self.0;
            let _guard = self.0.lock_for(&r.shipment_ref).lock().await;
            let mut rec = v.record(&r.shipment_ref)?;
            let (payload, kid) = v.open(F, &r.shipment_ref, &rec, &r.credential_response_jwe).await?;
            expect_typ(F, &payload, protocol::CREDENTIAL_RESPONSE)?;
            let resp: CredentialResponse = serde_json::from_slice(&payload).map_err(|e| rejected(F, fpr_jose::Error::from(e)))?;
            Vault::check_header(F, &resp.typ, protocol::CREDENTIAL_RESPONSE, resp.v, &resp.request_id, &rec)?;
            if resp.serial_number.is_empty() || !resp.serial_number.bytes().all(|b| b.is_ascii_digit()) {
                return Err(binding(F, "bad_payload", "serial_number must be decimal digits".into()));
            }
            if rec.credential_serial.as_deref() != Some(resp.serial_number.as_str()) {
                rec.credential_serial = Some(resp.serial_number.clone());
                v.keystore.update(&r.shipment_ref, &rec)?;
            }
            info!(request.id = %rec.request_id, signing.kid = %kid, serial = %resp.serial_number, "Credential response opened");
            let c = resp.credential;
            Ok(pb::OpenCredentialResponseResponse {
                request_id: resp.request_id,
                serial_number: resp.serial_number,
                firmware_version: resp.firmware_version,
                credential: Some(pb::RegistrationResponse {
                    id: c.id,
                    raw_id: c.raw_id,
                    r#type: c.kind,
                    authenticator_attachment: c.authenticator_attachment.unwrap_or_default(),
                    client_data_json: c.response.client_data_json,
                    attestation_object: c.response.attestation_object,
                    transports: c.response.transports,
                    client_extension_results_json: c.client_extension_results.to_string(),
                }),
                signing_kid: kid,
            })
        }
        .instrument(span)
        .await;
        let mut event = event;
        if let Ok(o) = &result {
            event.kids = vec![
                ("request", o.request_id.clone()),
                ("signing", o.signing_kid.clone()),
            ];
            event.detail = format!("serial={}", o.serial_number);
        }
        self.0
            .audit(event, result)
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn deliver_pin(
        &self,
        req: Request<pb::DeliverPinRequest>,
    ) -> Result<Response<pb::DeliverPinResponse>, Status> {
        let who = caller(&req);
        let r = req.into_inner();
        let span = info_span!("deliver_pin", shipment.id = %r.shipment_ref);
        let op = if r.validate_only {
            "DeliverPin(validate_only)"
        } else if r.resend {
            "DeliverPin(resend)"
        } else {
            "DeliverPin"
        };
        // The delivery and its audit line run on their own task: a caller that goes away (a
        // deadline, a killed orchestrator) must not cut them between the send and the receipt.
        let vault = self.0.clone();
        tokio::spawn(
            async move {
                let mut event = Event {
                    caller: who,
                    op,
                    shipment_ref: r.shipment_ref.clone(),
                    ..Default::default()
                };
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
                vault.audit(event, result)
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
        let who = caller(&req);
        let r = req.into_inner();
        let event = Event {
            caller: who,
            op: "PurgeShipment",
            shipment_ref: r.shipment_ref.clone(),
            ..Default::default()
        };
        let result = async {
            check_ref(&r.shipment_ref)?;
            let _guard = self.0.lock_for(&r.shipment_ref).lock().await;
            let purged = self.0.keystore.purge(&r.shipment_ref)?;
            info!(shipment.id = %r.shipment_ref, purged, "Shipment purged");
            Ok(pb::PurgeShipmentResponse { purged })
        }
        .await;
        self.0
            .audit(event, result)
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn check_recipients(
        &self,
        req: Request<pb::CheckRecipientsRequest>,
    ) -> Result<Response<pb::CheckRecipientsResponse>, Status> {
        let who = caller(&req);
        let r = req.into_inner();
        let event = Event {
            caller: who,
            op: "CheckRecipients",
            detail: format!("recipients={}", r.recipients.len()),
            ..Default::default()
        };
        let result = self
            .0
            .check_recipients(&r.recipients)
            .map(|()| pb::CheckRecipientsResponse {});
        self.0
            .audit(event, result)
            .map(Response::new)
            .map_err(Status::from)
    }

    async fn rebind_recipients(
        &self,
        req: Request<pb::RebindRecipientsRequest>,
    ) -> Result<Response<pb::RebindRecipientsResponse>, Status> {
        let who = caller(&req);
        let r = req.into_inner();
        let mut event = Event {
            caller: who,
            op: "RebindRecipients",
            shipment_ref: r.shipment_ref.clone(),
            ..Default::default()
        };
        let result = self.0.rebind(&r).await;
        if let Ok(b) = &result {
            event.detail = format!(
                "recipients {} -> {}; reason: {}",
                b.previous.len(),
                b.recipients.len(),
                r.reason.trim()
            );
        }
        self.0
            .audit(event, result)
            .map(Response::new)
            .map_err(Status::from)
    }
}
