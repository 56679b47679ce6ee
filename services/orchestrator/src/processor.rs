//! The shipment state machine (ARCHITECTURE.md, Entra flow steps 1–9). Each step is durable
//! before the next upstream call; every external effect is idempotent across a crash:
//! the vault's SealRequests is idempotent per shipment; YubiEnterprise create is guarded by the
//! `ordering` step (found after a crash, its outcome is unknown and an admin decides); Graph
//! registration is looked up before it is made; the vault sends a PIN once.

use std::sync::Arc;

use fpr_domain::model::{Idp, Record, State, Step, backoff};
use fpr_proto::vault::v1 as vpb;
use fpr_proto::vault::v1::vault_service_client::VaultServiceClient;
use fpr_upstream::Error as Up;
use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast};
use tonic::transport::Channel;
use tracing::{Instrument as _, info, info_span, warn};

use crate::Error;
use crate::store::Shipments;

/// Everything the processor talks to.
pub struct Deps {
    /// Shipment records.
    pub store: Shipments,
    /// The vault.
    pub vault: VaultServiceClient<Channel>,
    /// YubiEnterprise.
    pub ye: fpr_yubienterprise::Client,
    /// Entra / Graph.
    pub entra: fpr_entra::Client,
    /// Okta and the RP ids to enroll for, when configured.
    pub okta: Option<(fpr_okta::Client, Vec<String>)>,
    /// Backoff base and cap in seconds.
    pub retry: (i64, i64),
    /// Display name template of registered keys.
    pub display_name: String,
    /// Change notifications (shipment ids) for WatchShipment.
    pub changes: broadcast::Sender<String>,
    /// Serialises work on one shipment.
    pub locks: Vec<Mutex<()>>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
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
enum Stop {
    /// Permanent: the shipment goes to error with this kind and message.
    Fail(&'static str, String),
    /// Transient: try again later.
    Retry(String, Option<i64>),
    /// Nothing more to do now.
    Wait,
    /// Internal (store) failure: leave the record as it is.
    Internal(Error),
}

fn up(kind: &'static str, e: Up) -> Stop {
    match e {
        Up::Transient { retry_after, .. } => Stop::Retry(e.to_string(), retry_after),
        Up::NotFound { .. } | Up::Rejected { .. } => Stop::Fail(kind, e.to_string()),
        Up::Unauthorized { .. } | Up::Malformed { .. } | Up::Secret { .. } => {
            Stop::Retry(e.to_string(), None)
        }
    }
}

fn vault(kind: &'static str, s: tonic::Status) -> Stop {
    use tonic_types::StatusExt as _;
    match s.code() {
        tonic::Code::InvalidArgument | tonic::Code::NotFound | tonic::Code::AlreadyExists => {
            let reason = s
                .get_details_error_info()
                .map(|i| i.reason)
                .unwrap_or_default();
            Stop::Fail(
                kind,
                format!(
                    "vault refused ({}): {}",
                    if reason.is_empty() {
                        "invalid"
                    } else {
                        &reason
                    },
                    s.message()
                ),
            )
        }
        _ => Stop::Retry(format!("vault: {} {}", s.code(), s.message()), None),
    }
}

/// Now, unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Deps {
    fn lock_for(&self, id: &str) -> &Mutex<()> {
        let h = id
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.locks[h % self.locks.len()]
    }

    /// Saves a record and tells watchers.
    pub fn save(&self, rec: &Record) -> Result<(), Error> {
        self.store.put(rec)?;
        let _ = self.changes.send(rec.id.clone());
        Ok(())
    }

    /// Drives one shipment as far as it goes now.
    pub async fn drive(self: &Arc<Self>, id: &str) -> Result<Outcome, Error> {
        let _guard = self.lock_for(id).lock().await;
        let mut rec = self
            .store
            .get(id)?
            .ok_or_else(|| Error::ShipmentNotFound(id.to_owned()))?;
        if rec.state != State::Ongoing {
            return Ok(Outcome::Idle);
        }
        let span =
            info_span!("shipment", shipment.id = %rec.id, user.id = %rec.user_id, job = "process");
        async move {
            let mut advanced = false;
            loop {
                let before = rec.step;
                match self.step(&mut rec).await {
                    Ok(()) => {
                        self.save(&rec)?;
                        if rec.state == State::Complete {
                            info!("Shipment complete");
                            return Ok(Outcome::Completed);
                        }
                        advanced |= rec.step != before;
                    }
                    Err(Stop::Wait) => {
                        self.save(&rec)?;
                        return Ok(if advanced {
                            Outcome::Advanced
                        } else {
                            Outcome::Waiting
                        });
                    }
                    Err(Stop::Fail(kind, message)) => {
                        warn!(error.kind = kind, %message, "Shipment failed");
                        self.mark_okta_error(&rec).await;
                        rec.fail(kind, &message, now());
                        self.save(&rec)?;
                        return Ok(Outcome::Errored);
                    }
                    Err(Stop::Retry(message, retry_after)) => {
                        let wait = backoff(self.retry.0, self.retry.1, rec.attempts, retry_after);
                        info!(%message, wait, "Transient failure; will retry");
                        rec.defer(&message, wait, now());
                        self.save(&rec)?;
                        return Ok(Outcome::Deferred);
                    }
                    Err(Stop::Internal(e)) => return Err(e),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One step from `rec.step`; Ok means a step was taken (and must be saved).
    async fn step(&self, rec: &mut Record) -> Result<(), Stop> {
        match rec.step {
            Step::Accepted => self.prepare(rec).await,
            Step::Sealed => self.order(rec).await,
            Step::Ordering => Err(Stop::Fail(
                "order_outcome_unknown",
                "the YubiEnterprise order was interrupted and may or may not exist; check the YubiEnterprise console, then RetryShipment to order again or CancelShipment".into(),
            )),
            Step::Ordered => self.poll(rec).await,
            Step::Shipped => self.register(rec).await,
            Step::Registered => self.deliver(rec, false).await,
            Step::PinSent => {
                rec.state = State::Complete;
                rec.reach(Step::Complete, now());
                Ok(())
            }
            Step::Complete => {
                rec.state = State::Complete;
                Ok(())
            }
        }
    }

    /// Steps 1–3: the user, the PIN recipients, creation options, sealed requests.
    async fn prepare(&self, rec: &mut Record) -> Result<(), Stop> {
        if rec.idp == Idp::Okta {
            return self.prepare_okta(rec).await;
        }
        let user = self
            .entra
            .user(&rec.user_id)
            .await
            .map_err(|e| up("user_not_found", e))?;
        rec.idp_user_id = Some(user.id.clone());
        rec.display_name = user.display_name.clone();
        rec.upn = user.upn.clone();
        rec.pin_recipients = if rec.emails_to.is_empty() {
            let manager = self
                .entra
                .manager(&user.id)
                .await
                .map_err(|e| up("manager_lookup_failed", e))?;
            let Some(manager) = manager else {
                return Err(Stop::Fail(
                    "no_pin_recipient",
                    format!(
                        "{} has no manager to receive the PIN; set enrollment_contacts.emails_to",
                        user.upn
                    ),
                ));
            };
            let Some(mail) = manager.mail_address() else {
                return Err(Stop::Fail(
                    "no_pin_recipient",
                    format!(
                        "{}'s manager {} has no mail address; set enrollment_contacts.emails_to",
                        user.upn, manager.upn
                    ),
                ));
            };
            vec![mail.to_owned()]
        } else {
            rec.emails_to.clone()
        };
        let options = self
            .entra
            .creation_options(&user.id)
            .await
            .map_err(|e| up("creation_options_failed", e))?;
        let sealed = self
            .vault
            .clone()
            .seal_requests(vpb::SealRequestsRequest {
                shipment_ref: rec.id.clone(),
                creation_options_json: options.to_string(),
                pin_policy: Some(vpb::PinPolicy {
                    length: rec.pin_length,
                    force_change: rec.force_change,
                }),
            })
            .await
            .map_err(|s| vault("seal_failed", s))?
            .into_inner();
        rec.creation_options = Some(options);
        rec.request_id = Some(sealed.request_id);
        rec.credential_request_jwe = Some(sealed.credential_request_jwe);
        rec.pin_request_jwe = Some(sealed.pin_request_jwe);
        rec.reach(Step::Sealed, now());
        Ok(())
    }

    fn okta(&self) -> Result<&(fpr_okta::Client, Vec<String>), Stop> {
        self.okta.as_ref().ok_or(Stop::Fail(
            "idp_not_configured",
            "Okta is not configured on this fpr".into(),
        ))
    }

    /// The pinned Yubico key sets from the vault, as JWK arrays (transport, signing).
    async fn yubico_keys(&self) -> Result<(Vec<Value>, Vec<Value>), Stop> {
        let k = self
            .vault
            .clone()
            .get_yubico_keys(vpb::GetYubicoKeysRequest {})
            .await
            .map_err(|s| vault("yubico_keys_unavailable", s))?
            .into_inner();
        let keys = |j: &str| {
            serde_json::from_str::<Value>(j)
                .ok()
                .and_then(|v| v.get("keys").and_then(Value::as_array).cloned())
                .unwrap_or_default()
        };
        Ok((keys(&k.transport_jwks_json), keys(&k.signing_jwks_json)))
    }

    /// Okta steps 1–3: the user, then Okta's enroll with a Yubico transport key (Okta makes and
    /// encrypts the requests; the vault seals nothing).
    async fn prepare_okta(&self, rec: &mut Record) -> Result<(), Stop> {
        let (okta, rp_ids) = self.okta()?;
        let user = okta
            .user(&rec.user_id)
            .await
            .map_err(|e| up("user_not_found", e))?;
        let p = |k: &str| user.profile.get(k).cloned().unwrap_or_default();
        rec.idp_user_id = Some(user.id.clone());
        rec.display_name = format!("{} {}", p("firstName"), p("lastName"))
            .trim()
            .to_owned();
        rec.upn = p("login");
        // Okta e-mails the PIN itself: staged users at secondEmail, others at email.
        let to = if user.status == "STAGED" {
            p("secondEmail")
        } else {
            p("email")
        };
        rec.pin_recipients = vec![format!("okta:{to}")];
        let (transport, _) = self.yubico_keys().await?;
        if transport.is_empty() {
            return Err(Stop::Retry(
                "no Yubico transport key pinned in the vault yet".into(),
                None,
            ));
        }
        let pick = (time::OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .unsigned_abs() as usize)
            % transport.len();
        let e = okta
            .enroll(&user.id, rp_ids, &transport[pick])
            .await
            .map_err(|e| up("okta_enroll_rejected", e))?;
        info!(okta.enrollment = %e.id, "Enrolled at Okta");
        rec.okta_enrollment_id = Some(e.id);
        rec.credential_request_jwe = Some(e.cred_request_jwe);
        rec.pin_request_jwe = Some(e.pin_request_jwe);
        rec.reach(Step::Sealed, now());
        Ok(())
    }

    /// Marks the Okta enrollment of a failing shipment (best effort).
    async fn mark_okta_error(&self, rec: &Record) {
        if let (Some((okta, _)), Some(e), Some(u)) =
            (&self.okta, &rec.okta_enrollment_id, &rec.idp_user_id)
            && let Err(err) = okta.mark_error(u, e).await
        {
            warn!(error = %err, "Okta mark-error failed");
        }
    }

    /// Step 4: the YubiEnterprise order.
    async fn order(&self, rec: &mut Record) -> Result<(), Stop> {
        let mut body = rec.shipping.clone();
        let (Some(pin), Some(cred)) = (&rec.pin_request_jwe, &rec.credential_request_jwe) else {
            return Err(Stop::Fail("internal", "sealed requests missing".into()));
        };
        if let Some(item) = body
            .pointer_mut("/shipment_items/0")
            .and_then(Value::as_object_mut)
        {
            item.insert(
                "product_customizations".into(),
                json!([{"fido_pin_request": pin, "fido_credential_requests": [cred]}]),
            );
        }
        // Durable before the call: a crash from here on cannot order twice unnoticed.
        rec.reach(Step::Ordering, now());
        self.save(rec).map_err(Stop::Internal)?;
        match self.ye.create_fpr_shipment(&body).await {
            Ok((id, state)) => {
                info!(yubienterprise.id = %id, "Ordered at YubiEnterprise");
                rec.ye_shipment_id = Some(id);
                rec.ye_state_id = state;
                rec.reach(Step::Ordered, now());
                Ok(())
            }
            Err(
                e @ Up::Transient {
                    maybe_applied: false,
                    ..
                },
            ) => {
                // Throttled or never connected: nothing was created; back to sealed.
                rec.step = Step::Sealed;
                Err(up("", e))
            }
            Err(e @ Up::Transient { .. }) => Err(Stop::Fail(
                "order_outcome_unknown",
                format!("{e}; check the YubiEnterprise console before RetryShipment"),
            )),
            Err(e) => {
                rec.step = Step::Sealed;
                Err(up("yubienterprise_rejected", e))
            }
        }
    }

    /// Step 5: poll until shipped (103/104); error states and 404 end the shipment.
    async fn poll(&self, rec: &mut Record) -> Result<(), Stop> {
        let Some(id) = rec.ye_shipment_id.clone() else {
            return Err(Stop::Fail("internal", "no YubiEnterprise id".into()));
        };
        let s = match self.ye.get_fpr_shipment(&id).await {
            Ok(s) => s,
            Err(Up::NotFound { .. }) => {
                return Err(Stop::Fail(
                    "yubienterprise_not_found",
                    format!(
                        "YubiEnterprise shipment {id} no longer exists (404); it is not processed again"
                    ),
                ));
            }
            Err(e) => return Err(up("yubienterprise_failed", e)),
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
            return Err(Stop::Fail(
                kind,
                format!("YubiEnterprise state {}: {}", s.state_id, s.state_message),
            ));
        }
        let Some(pd) = s.product_data else {
            return Err(Stop::Wait);
        };
        let Some(cred) = pd.fido_credential_responses.first().cloned() else {
            return Err(Stop::Fail(
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

    /// Steps 6–7: open the credential response, check it against the creation options,
    /// register it (looking it up first).
    async fn register(&self, rec: &mut Record) -> Result<(), Stop> {
        if rec.idp == Idp::Okta {
            let (okta, _) = self.okta()?;
            let (_, signing) = self.yubico_keys().await?;
            okta.activate(
                rec.idp_user_id.as_deref().unwrap_or_default(),
                rec.okta_enrollment_id.as_deref().unwrap_or_default(),
                &rec.serial,
                &rec.firmware,
                rec.credential_response_jwe.as_deref().unwrap_or_default(),
                rec.pin_response_jwe.as_deref().unwrap_or_default(),
                &signing,
            )
            .await
            .map_err(|e| up("okta_activation_rejected", e))?;
            info!("Activated at Okta");
            rec.reach(Step::Registered, now());
            return Ok(());
        }
        let jwe = rec.credential_response_jwe.clone().unwrap_or_default();
        let opened = self
            .vault
            .clone()
            .open_credential_response(vpb::OpenCredentialResponseRequest {
                shipment_ref: rec.id.clone(),
                credential_response_jwe: jwe,
            })
            .await
            .map_err(|s| vault("response_rejected", s))?
            .into_inner();
        if opened.serial_number != rec.serial {
            return Err(Stop::Fail(
                "response_rejected",
                "the credential response's serial differs from YubiEnterprise's".into(),
            ));
        }
        let cred = opened.credential.ok_or(Stop::Fail(
            "response_rejected",
            "no credential in the response".into(),
        ))?;
        let options = rec.creation_options.clone().unwrap_or_default();
        check_against_options(&options, &cred, &rec.upn)
            .map_err(|m| Stop::Fail("response_mismatch", m))?;
        let cred_id = fpr_webauthn::b64d_any(&cred.id).ok_or(Stop::Fail(
            "response_rejected",
            "credential id is not base64url".into(),
        ))?;
        let user = rec.idp_user_id.clone().unwrap_or_default();
        let method_id = fpr_entra::method_id(&cred_id);
        let existing = self
            .entra
            .methods(&user)
            .await
            .map_err(|e| up("registration_failed", e))?;
        if !existing.iter().any(|m| m.id == method_id) {
            let model = fpr_webauthn::AttestationObject::parse(
                &fpr_webauthn::b64d_any(&cred.attestation_object).unwrap_or_default(),
            )
            .ok()
            .and_then(|o| o.auth_data.attested.map(|a| a.aaguid))
            .map(|a| model_name(&fpr_webauthn::aaguid_string(&a)))
            .unwrap_or("Security key");
            let display = self
                .display_name
                .replace("{model}", model)
                .replace("{serial}", &rec.serial);
            let display: String = if display.chars().count() > 30 {
                format!("YubiKey {}", rec.serial)
            } else {
                display
            };
            let m = self
                .entra
                .register(
                    &user,
                    &display,
                    &fpr_webauthn::b64e(&cred_id),
                    &cred.client_data_json,
                    &cred.attestation_object,
                )
                .await
                .map_err(|e| up("registration_rejected", e))?;
            info!(method.id = %m.id, "Registered in Entra ID");
        }
        rec.credential_id = fpr_webauthn::b64e(&cred_id);
        rec.reach(Step::Registered, now());
        Ok(())
    }

    /// Step 8: the PIN, through the vault, only after registration.
    async fn deliver(&self, rec: &mut Record, resend: bool) -> Result<(), Stop> {
        if rec.idp == Idp::Okta {
            let (okta, _) = self.okta()?;
            okta.send_pin(
                rec.idp_user_id.as_deref().unwrap_or_default(),
                rec.okta_enrollment_id.as_deref().unwrap_or_default(),
            )
            .await
            .map_err(|e| up("okta_send_pin_rejected", e))?;
            rec.pin_deliveries += 1;
            if !resend {
                rec.reach(Step::PinSent, now());
            }
            return Ok(());
        }
        let r = self
            .vault
            .clone()
            .deliver_pin(vpb::DeliverPinRequest {
                shipment_ref: rec.id.clone(),
                pin_response_jwe: rec.pin_response_jwe.clone().unwrap_or_default(),
                expected_serial: rec.serial.clone(),
                recipients: rec.pin_recipients.clone(),
                context: Some(vpb::MessageContext {
                    user_display_name: rec.display_name.clone(),
                    user_principal_name: rec.upn.clone(),
                    shipment_id: rec.id.clone(),
                }),
                resend,
            })
            .await
            .map_err(|s| vault("pin_delivery_rejected", s))?
            .into_inner();
        rec.pin_deliveries = r.receipt.map_or(rec.pin_deliveries, |x| x.deliveries);
        if !resend {
            rec.reach(Step::PinSent, now());
        }
        Ok(())
    }

    /// ResendPin: an explicit second delivery.
    pub async fn resend(self: &Arc<Self>, id: &str) -> Result<Record, Error> {
        let _guard = self.lock_for(id).lock().await;
        let mut rec = self
            .store
            .get(id)?
            .ok_or_else(|| Error::ShipmentNotFound(id.to_owned()))?;
        if rec.step < Step::PinSent || rec.pin_response_jwe.is_none() {
            return Err(Error::Precondition(
                "the PIN has not been delivered yet; ResendPin works after the first delivery"
                    .into(),
            ));
        }
        match self.deliver(&mut rec, true).await {
            Ok(()) => {
                self.save(&rec)?;
                Ok(rec)
            }
            Err(Stop::Fail(_, m) | Stop::Retry(m, _)) => Err(Error::Vault(m)),
            Err(Stop::Internal(e)) => Err(e),
            Err(Stop::Wait) => Ok(rec),
        }
    }

    /// Runs `f` on a record under its lock, saves it.
    pub async fn update<T>(
        self: &Arc<Self>,
        id: &str,
        f: impl FnOnce(&mut Record) -> Result<T, Error>,
    ) -> Result<(Record, T), Error> {
        let _guard = self.lock_for(id).lock().await;
        let mut rec = self
            .store
            .get(id)?
            .ok_or_else(|| Error::ShipmentNotFound(id.to_owned()))?;
        let out = f(&mut rec)?;
        rec.updated_at = now();
        self.save(&rec)?;
        Ok((rec, out))
    }

    /// Takes the lock of a shipment (for calls that talk to upstreams before updating).
    pub async fn locked(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock_for(id).lock().await
    }
}

/// The model name for an AAGUID (FIDO MDS descriptions of YubiKeys).
pub fn model_name(aaguid: &str) -> &'static str {
    match aaguid {
        "a25342c0-3cdc-4414-8e46-f4807fca511c"
        | "d7781e5d-e353-46aa-afe2-3ca49f13332a"
        | "2fc0579f-8113-47ea-b116-bb5a8db9202a" => "YubiKey 5 NFC",
        "fcc0118f-cd45-435b-8da1-9782b2da0715"
        | "79f3c8ba-9e35-484b-8f47-53a5a0f5c630"
        | "c1f9a0bc-1dd2-404a-b27f-8e29047a43fd" => "YubiKey 5 NFC FIPS",
        _ => "YubiKey",
    }
}

/// Checks a credential against the creation options it answers: clientData type and
/// challenge, rpIdHash, and that the options were made for this user.
pub fn check_against_options(
    options: &Value,
    cred: &vpb::RegistrationResponse,
    upn: &str,
) -> Result<(), String> {
    let client_data =
        fpr_webauthn::b64d_any(&cred.client_data_json).ok_or("clientDataJSON is not base64url")?;
    let cd = fpr_webauthn::ClientData::parse(&client_data).map_err(|e| e.to_string())?;
    if cd.kind != "webauthn.create" {
        return Err(format!("clientDataJSON type is {:?}", cd.kind));
    }
    let challenge = options
        .get("challenge")
        .and_then(Value::as_str)
        .ok_or("creation options have no challenge")?;
    let want = fpr_entra::decode_graph_b64(challenge, true)
        .or_else(|| fpr_entra::decode_graph_b64(challenge, false))
        .ok_or("challenge not decodable")?;
    if fpr_webauthn::b64d_any(&cd.challenge).as_deref() != Some(want.as_slice()) {
        return Err(
            "the credential answers another challenge than the one fetched for this shipment"
                .into(),
        );
    }
    let rp_id = options
        .pointer("/rp/id")
        .and_then(Value::as_str)
        .ok_or("creation options have no rp.id")?;
    let att = fpr_webauthn::b64d_any(&cred.attestation_object)
        .ok_or("attestationObject is not base64url")?;
    let obj = fpr_webauthn::AttestationObject::parse(&att).map_err(|e| e.to_string())?;
    if obj.auth_data.rp_id_hash != fpr_webauthn::sha256(rp_id.as_bytes()) {
        return Err(format!("rpIdHash is not SHA-256 of {rp_id}"));
    }
    let name = options
        .pointer("/user/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !upn.is_empty() && !name.eq_ignore_ascii_case(upn) {
        return Err(format!(
            "the creation options were made for {name}, not {upn}"
        ));
    }
    Ok(())
}
