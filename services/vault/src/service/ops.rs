//! SealRequests, RebindRecipients and DeliverPin: the vault operations that bind, check and
//! send, each under the shipment's lock.

use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::{
    self, CredentialRequest, CredentialResponse, PinRequest, PinResponse, PinSpec,
};
use fpr_jose::{Curve, PrivateKey};
use fpr_proto::vault::v1 as pb;
use serde_json::Value;
use time::OffsetDateTime;
use tracing::{info, warn};

use super::checks::{
    binding, check_options, check_ref, check_token, digest, expect_typ, normalized, rejected,
};
use super::{Vault, ts};
use crate::Error;
use crate::audit::Event;
use crate::delivery;
use crate::jwks::Kind;
use crate::keystore::{KeyRecord, Receipt};

impl Vault {
    /// OpenCredentialResponse: decrypt, verify Yubico's signature and the request binding,
    /// remember the serial.
    pub(super) async fn open_credential(
        &self,
        r: &pb::OpenCredentialResponseRequest,
    ) -> Result<pb::OpenCredentialResponseResponse, Error> {
        const FIELD: &str = "credential_response_jwe";
        check_ref(&r.shipment_ref)?;
        check_token(FIELD, &r.credential_response_jwe)?;
        let _guard = self.lock_for(&r.shipment_ref).lock().await;
        let mut rec = self.record(&r.shipment_ref)?;
        let (payload, kid) = self
            .open(FIELD, &r.shipment_ref, &rec, &r.credential_response_jwe)
            .await?;
        expect_typ(FIELD, &payload, protocol::CREDENTIAL_RESPONSE)?;
        let resp: CredentialResponse = serde_json::from_slice(&payload)
            .map_err(|e| rejected(FIELD, fpr_jose::Error::from(e)))?;
        Vault::check_header(
            FIELD,
            &resp.typ,
            protocol::CREDENTIAL_RESPONSE,
            resp.v,
            &resp.request_id,
            &rec,
        )?;
        if resp.serial_number.is_empty() || !resp.serial_number.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(binding(
                FIELD,
                "bad_payload",
                "serial_number must be decimal digits".into(),
            ));
        }
        if rec.credential_serial.as_deref() != Some(resp.serial_number.as_str()) {
            rec.credential_serial = Some(resp.serial_number.clone());
            self.keystore.update(&r.shipment_ref, &rec).await?;
        }
        info!(
            request.id = %rec.request_id,
            signing.kid = %kid,
            serial = %resp.serial_number,
            "Credential response opened",
        );
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

    /// SealRequests: checks, recipients bound, then the JOSE work and the durable record.
    pub(super) async fn seal(
        &self,
        r: pb::SealRequestsRequest,
    ) -> Result<pb::SealRequestsResponse, Error> {
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
                self.keystore.update(&r.shipment_ref, &rec).await?;
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
        let rec = self
            .keystore
            .insert_new(
                &r.shipment_ref,
                &key,
                inputs,
                transport.kid().to_owned(),
                cred_jwe,
                pin_jwe,
                r.recipients.clone(),
                OffsetDateTime::now_utc().unix_timestamp(),
            )
            .await?;
        fpr_config::danger::crash_point("vault.after_seal");
        info!(
            request.id = %rec.request_id,
            transport.kid = %rec.transport_kid,
            recipients = rec.recipients.len(),
            "Requests sealed",
        );
        Ok(sealed_response(&rec))
    }

    /// Replaces a sealed shipment's bound recipients (policy-checked).
    pub(super) async fn rebind(
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
        self.keystore.update(&r.shipment_ref, &rec).await?;
        warn!(
            shipment.id = %r.shipment_ref,
            before = previous.len(),
            after = rec.recipients.len(),
            "PIN recipients rebound",
        );
        Ok(pb::RebindRecipientsResponse {
            previous,
            recipients: rec.recipients,
        })
    }

    /// DeliverPin: every check, then (unless `validate_only`) the intent, the send and the
    /// receipt. A PIN is sent once: a repeated call answers with the receipt, and a delivery
    /// found interrupted is reported, never repeated unasked (`resend` is the explicit ask).
    /// `event` gets the shipment's request id (the response key's kid) once the record is read.
    pub(super) async fn deliver(
        &self,
        r: pb::DeliverPinRequest,
        event: &mut Event,
    ) -> Result<pb::DeliverPinResponse, Error> {
        const FIELD: &str = "pin_response_jwe";
        check_ref(&r.shipment_ref)?;
        check_token(FIELD, &r.pin_response_jwe)?;
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
                    "shipment {:?}'s PIN was sent {} times; at most {} resends are allowed \
                     (delivery.max_resends)",
                    r.shipment_ref, last.deliveries, self.guard.max_resends
                )));
            }
            let since = OffsetDateTime::now_utc().unix_timestamp() - last.delivered_at;
            let min = self.guard.resend_min_interval.as_secs() as i64;
            if since < min {
                return Err(Error::ResendLimited(format!(
                    "shipment {:?}'s PIN was sent {since} s ago; resend in {} s \
                     (delivery.resend_min_interval)",
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
                warn!(
                    request.id = %rec.request_id,
                    started,
                    "An earlier PIN delivery was interrupted; not sending again unasked",
                );
                return Err(Error::DeliveryOutcomeUnknown(
                    r.shipment_ref.clone(),
                    started,
                ));
            }
        }
        let (payload, _kid) = self
            .open(FIELD, &r.shipment_ref, &rec, &r.pin_response_jwe)
            .await?;
        expect_typ(FIELD, &payload, protocol::PIN_RESPONSE)?;
        let resp: PinResponse = serde_json::from_slice(&payload)
            .map_err(|e| rejected(FIELD, fpr_jose::Error::from(e)))?;
        drop(payload);
        Vault::check_header(
            FIELD,
            &resp.typ,
            protocol::PIN_RESPONSE,
            resp.v,
            &resp.request_id,
            &rec,
        )?;
        if resp.serial_number != r.expected_serial {
            return Err(binding(
                FIELD,
                "serial_mismatch",
                "serial_number differs from expected_serial".into(),
            ));
        }
        if let Some(cs) = &rec.credential_serial
            && *cs != resp.serial_number
        {
            return Err(binding(
                FIELD,
                "serial_mismatch",
                "serial_number differs from the credential response's".into(),
            ));
        }
        let pin_len = resp.pin().len();
        if !protocol::PIN_LENGTH.contains(&(pin_len as u32))
            || !resp.pin().bytes().all(|b| b.is_ascii_digit())
        {
            return Err(binding(
                FIELD,
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
        self.keystore.update(&r.shipment_ref, &rec).await?;
        let sent = match self.channel.send(resp.pin(), &recipients, &ctx).await {
            Ok(sent) => sent,
            Err(e) => {
                // The channel refused: nothing went out, so the intent is withdrawn.
                rec.delivery_started = None;
                self.keystore.update(&r.shipment_ref, &rec).await?;
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
        self.keystore.update(&r.shipment_ref, &rec).await?;
        info!(
            request.id = %rec.request_id,
            channel = sent.channel,
            deliveries = receipt.deliveries,
            "PIN delivered",
        );
        Ok(pb::DeliverPinResponse {
            receipt: Some(receipt_pb(&receipt)),
            already_delivered: false,
        })
    }
}

pub(super) fn sealed_response(rec: &KeyRecord) -> pb::SealRequestsResponse {
    pb::SealRequestsResponse {
        request_id: rec.request_id.clone(),
        transport_kid: rec.transport_kid.clone(),
        credential_request_jwe: rec.credential_request_jwe.clone(),
        pin_request_jwe: rec.pin_request_jwe.clone(),
        response_public_jwk_json: rec.response_public_jwk.to_string(),
    }
}

pub(super) fn receipt_pb(r: &Receipt) -> pb::DeliveryReceipt {
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

/// Opens a Yubico response: decrypts the JWE with the shipment's response key, then verifies
/// the JWS inside against the pinned signing set. The caller checks the payload's binding.
pub fn open_response(
    token: &str,
    key: &PrivateKey,
    signing: &fpr_jose::Jwks,
) -> Result<fpr_jose::jws::Verified, fpr_jose::Error> {
    let inner = jwe::decrypt(token, key)?;
    let inner = std::str::from_utf8(&inner)
        .map_err(|_| fpr_jose::Error::Malformed("inner JWS is not UTF-8"))?;
    fpr_jose::jws::verify(inner, signing)
}
