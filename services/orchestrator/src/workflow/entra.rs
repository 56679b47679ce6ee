//! Microsoft Entra ID's part of the workflow: creation options from Graph, requests sealed by
//! the vault, the credential opened and checked by the vault, registered through Graph, and
//! the PIN delivered by the vault.

use fpr_domain::model::{Record, Step};
use fpr_proto::vault::v1 as vpb;
use serde_json::Value;
use tracing::info;

use super::vault::Delivery;
use super::{Halt, IdpFlow, PIN_DELIVERY_UNKNOWN, Workflow, now, upstream_halt, vault_halt};
use crate::Error;

/// Entra ID: the Graph client and the display name template of registered keys.
pub(super) struct Entra {
    client: fpr_entra::Client,
    display_name: String,
}

// === impl Entra ===

impl Entra {
    pub(super) fn new(client: fpr_entra::Client, display_name: String) -> Self {
        Self {
            client,
            display_name,
        }
    }

    pub(super) fn client(&self) -> &fpr_entra::Client {
        &self.client
    }

    /// The user, the PIN recipients (the request's, else the manager) and creation options.
    async fn resolve(&self, rec: &mut Record) -> Result<Value, Halt> {
        let user = self
            .client
            .user(&rec.user_id)
            .await
            .map_err(|e| upstream_halt("user_not_found", e))?;
        rec.idp_user_id = Some(user.id.clone());
        rec.display_name = user.display_name.clone();
        rec.upn = user.upn.clone();
        rec.pin_recipients = if rec.emails_to.is_empty() {
            let manager = self
                .client
                .manager(&user.id)
                .await
                .map_err(|e| upstream_halt("manager_lookup_failed", e))?;
            let Some(manager) = manager else {
                return Err(Halt::Fail(
                    "no_pin_recipient",
                    format!(
                        "{} has no manager to receive the PIN; set enrollment_contacts.emails_to",
                        user.upn
                    ),
                ));
            };
            let Some(mail) = manager.mail_address() else {
                return Err(Halt::Fail(
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
            .client
            .creation_options(&user.id)
            .await
            .map_err(|e| upstream_halt("creation_options_failed", e))?;
        rec.challenge_expires_at = options.expires_at;
        Ok(options.public_key)
    }
}

impl IdpFlow for Entra {
    async fn prepare(&self, wf: &Workflow, rec: &mut Record) -> Result<(), Halt> {
        let options = match &rec.creation_options {
            Some(o) => o.clone(),
            None => {
                let options = self.resolve(rec).await?;
                // Durable before the vault seals: a retry after a lost answer sends the same
                // options, which the vault answers with the requests it already sealed.
                rec.creation_options = Some(options.clone());
                wf.save(rec).await.map_err(Halt::Internal)?;
                options
            }
        };
        let sealed = wf.vault.seal(rec, options.to_string()).await.map_err(|e| {
            if e.reason == "recipient_not_allowed" {
                Halt::Fail("recipient_not_allowed", e.to_string())
            } else {
                vault_halt("seal_failed", e)
            }
        })?;
        fpr_config::danger::crash_point("orchestrator.after_seal");
        rec.request_id = Some(sealed.request_id);
        rec.credential_request_jwe = Some(sealed.credential_request_jwe);
        rec.pin_request_jwe = Some(sealed.pin_request_jwe);
        rec.reach(Step::Sealed, now());
        Ok(())
    }

    async fn register(&self, wf: &Workflow, rec: &mut Record) -> Result<(), Halt> {
        let opened = wf
            .vault
            .open_credential(rec)
            .await
            .map_err(|e| vault_halt("response_rejected", e))?;
        if opened.serial_number != rec.serial {
            return Err(Halt::Fail(
                "response_rejected",
                "the credential response's serial differs from YubiEnterprise's".into(),
            ));
        }
        let cred = opened.credential.ok_or(Halt::Fail(
            "response_rejected",
            "no credential in the response".into(),
        ))?;
        let options = rec.creation_options.clone().unwrap_or_default();
        check_against_options(&options, &cred, &rec.upn)
            .map_err(|m| Halt::Fail("response_mismatch", m))?;
        let rp_id = options
            .pointer("/rp/id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let product = rec
            .shipping
            .pointer("/shipment_items/0/product_id")
            .and_then(Value::as_u64);
        wf.settings
            .attestation
            .check(
                rp_id,
                product,
                &cred.id,
                &cred.client_data_json,
                &cred.attestation_object,
            )
            .map_err(|r| {
                tracing::warn!(shipment.id = %rec.id, check = r.check, "Attestation refused; not registering");
                Halt::Fail("attestation_failed", r.to_string())
            })?;
        let cred_id = fpr_webauthn::b64d_any(&cred.id).ok_or(Halt::Fail(
            "response_rejected",
            "credential id is not base64url".into(),
        ))?;
        // The PIN response too, before Entra holds the credential: a PIN that cannot be
        // delivered must not leave a registered key behind.
        wf.check_pin_response(rec).await?;
        let user = rec.idp_user_id.clone().unwrap_or_default();
        let method_id = fpr_entra::method_id(&cred_id);
        // Looked up first: a registration whose answer was lost is found, not made twice.
        let existing = self
            .client
            .methods(&user)
            .await
            .map_err(|e| upstream_halt("registration_failed", e))?;
        if !existing.iter().any(|m| m.id == method_id) {
            if let Some(at) = rec.challenge_expires_at.filter(|at| now() >= *at) {
                return Err(Halt::Fail("challenge_expired", expired_message(rec, at)));
            }
            let aaguid = fpr_webauthn::AttestationObject::parse(
                &fpr_webauthn::b64d_any(&cred.attestation_object).unwrap_or_default(),
            )
            .ok()
            .and_then(|o| o.auth_data.attested.map(|a| a.aaguid))
            .map(|a| fpr_webauthn::aaguid_string(&a));
            let product_id = rec.shipping["shipment_items"][0]["product_id"]
                .as_u64()
                .and_then(|id| u32::try_from(id).ok());
            let model = model_name(product_id, aaguid.as_deref());
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
                .client
                .register(
                    &user,
                    &display,
                    &fpr_webauthn::b64e(&cred_id),
                    &cred.client_data_json,
                    &cred.attestation_object,
                )
                .await
                .map_err(|e| upstream_halt("registration_rejected", e))?;
            info!(method.id = %m.id, "Registered in Entra ID");
            fpr_config::danger::crash_point("orchestrator.after_register");
        }
        rec.credential_id = fpr_webauthn::b64e(&cred_id);
        rec.reach(Step::Registered, now());
        Ok(())
    }

    async fn send_pin(&self, wf: &Workflow, rec: &mut Record, resend: bool) -> Result<(), Halt> {
        let mode = if resend {
            Delivery::Resend
        } else {
            Delivery::Once
        };
        let r = wf.vault.deliver_pin(rec, mode).await.map_err(|e| {
            if e.reason == "delivery_outcome_unknown" {
                Halt::Fail(
                    PIN_DELIVERY_UNKNOWN,
                    format!(
                        "the vault stopped while sending the PIN to {}; it may or may not have arrived. Ask the recipient; ResendPin sends it (again)",
                        rec.pin_recipients.join(", ")
                    ),
                )
            } else if e.reason == "resend_limited" {
                Halt::Fail("resend_limited", format!("the vault refused the resend: {}", e.message))
            } else {
                vault_halt("pin_delivery_rejected", e)
            }
        })?;
        fpr_config::danger::crash_point("orchestrator.after_deliver_pin");
        rec.pin_deliveries = r.receipt.map_or(rec.pin_deliveries, |x| x.deliveries);
        if !resend {
            rec.reach(Step::PinSent, now());
        }
        Ok(())
    }

    async fn failed(&self, _rec: &Record) {}

    async fn cancel(&self, _rec: &Record) -> Result<(), Error> {
        // Nothing is registered in Entra ID before the key ships.
        Ok(())
    }
}

/// Unix seconds as RFC 3339, for people.
pub(super) fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// What an admin reads when a key was programmed after its challenge expired.
fn expired_message(rec: &Record, at: i64) -> String {
    let when = rfc3339(at);
    format!(
        "key {} was programmed with a challenge that expired at {when}: Entra ID will not \
         register it. The key cannot be used; order a new one for the user (and raise \
         ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES, up to 43200 on the beta API, so that \
         fulfilment fits in it)",
        if rec.serial.is_empty() {
            "-"
        } else {
            &rec.serial
        }
    )
}

/// The name `{model}` stands for in a registered key's display name: the product that was
/// ordered, else the model the AAGUID names, both from the workspace's one table
/// (`fpr_domain::yubikey`).
pub fn model_name(product_id: Option<u32>, aaguid: Option<&str>) -> &'static str {
    product_id
        .and_then(fpr_domain::yubikey::product_by_id)
        .map(|p| p.name)
        .or_else(|| {
            aaguid
                .and_then(fpr_domain::yubikey::model_by_aaguid)
                .map(|m| m.name)
        })
        .unwrap_or("Security key")
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
