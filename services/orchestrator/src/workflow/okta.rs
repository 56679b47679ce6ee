//! Okta's part of the workflow: Okta makes and encrypts the requests (`enroll`), checks the
//! responses and registers the credential (`activate`), and e-mails the PIN (`send-pin`). fpr
//! never holds an Okta PIN.
//!
//! Okta's calls are not idempotent, so each is marked in the record before it is made
//! ([`Effect`]); found marked, its outcome is read from Okta's list of the user's enrollments
//! where Okta shows it (enroll, activate). Okta shows nothing of a `send-pin`: one whose answer
//! was lost is reported as `pin_delivery_unknown`, never repeated unasked.

use fpr_domain::model::{Effect, Record, Step};
use tracing::{info, warn};

use super::{Halt, IdpFlow, PIN_DELIVERY_UNKNOWN, Workflow, now, upstream_halt, vault_halt};

/// Step time of a send-pin asked again after its answer was lost.
const RESENT: &str = "pin_resent_after_unknown";
use crate::Error;

/// Okta: the client, the RP ids to enroll for, and whether a send-pin whose answer was lost
/// is asked again (see `okta.resend_pin_when_unknown`).
pub(super) struct Okta {
    client: std::sync::Arc<fpr_okta::Client>,
    rp_ids: Vec<String>,
    resend_when_unknown: bool,
}

// === impl Okta ===

impl Okta {
    pub(super) fn new(
        client: fpr_okta::Client,
        rp_ids: Vec<String>,
        resend_when_unknown: bool,
    ) -> Self {
        Self {
            client: std::sync::Arc::new(client),
            rp_ids,
            resend_when_unknown,
        }
    }

    pub(super) fn client(&self) -> &fpr_okta::Client {
        &self.client
    }

    /// The client, shared (for look-ups answered by a task of their own).
    pub(super) fn shared_client(&self) -> std::sync::Arc<fpr_okta::Client> {
        self.client.clone()
    }

    /// The enrollment's status at Okta (None: Okta no longer lists it).
    async fn status(&self, rec: &Record) -> Result<Option<String>, Halt> {
        let (Some(user), Some(e)) = (&rec.idp_user_id, &rec.okta_enrollment_id) else {
            return Ok(None);
        };
        let factors = self
            .client
            .enrollments(user)
            .await
            .map_err(|e| upstream_halt("okta_enrollment_lookup_failed", e))?;
        Ok(factors.into_iter().find(|f| f.id == *e).map(|f| f.status))
    }

    /// After an `enroll` whose answer was lost: the enrollment it may have made is of no use
    /// (its requests were only in that answer), so pending enrollments of this user made since
    /// then that no shipment holds are deleted before enrolling again.
    async fn remove_orphans(&self, wf: &Workflow, rec: &Record, since: i64) -> Result<(), Halt> {
        let user = rec.idp_user_id.clone().unwrap_or_default();
        let held: Vec<String> = wf
            .store
            .all()
            .map_err(Halt::Internal)?
            .into_iter()
            .filter_map(|r| r.okta_enrollment_id)
            .collect();
        let factors = self
            .client
            .enrollments(&user)
            .await
            .map_err(|e| upstream_halt("okta_enrollment_lookup_failed", e))?;
        for f in factors {
            let recent = f.created.is_some_and(|c| c >= since - 60);
            if f.status == "PENDING_ACTIVATION" && recent && !held.contains(&f.id) {
                self.client
                    .delete_enrollment(&user, &f.id)
                    .await
                    .map_err(|e| upstream_halt("okta_enroll_rejected", e))?;
                info!(okta.enrollment = %f.id, "Deleted the enrollment of an enroll whose answer was lost");
            }
        }
        Ok(())
    }

    /// Marks an effect in flight, durably, before it is made.
    async fn mark(wf: &Workflow, rec: &mut Record, effect: Effect) -> Result<(), Halt> {
        rec.in_flight = Some((effect, now()));
        wf.save(rec).await.map_err(Halt::Internal)
    }

    fn unknown_pin(rec: &Record, why: &str) -> Halt {
        Halt::Fail(
            PIN_DELIVERY_UNKNOWN,
            format!(
                "{why} while asking Okta to e-mail the PIN to {}; Okta may or may not have sent it. Ask the user; ResendPin sends it (again)",
                rec.pin_recipients.join(", ")
            ),
        )
    }
}

impl IdpFlow for Okta {
    async fn prepare(&self, wf: &Workflow, rec: &mut Record) -> Result<(), Halt> {
        let user = wf
            .okta_user(&rec.user_id)
            .await
            .map_err(|e| upstream_halt("user_not_found", e))?;
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
        let (transport, _) = wf
            .vault
            .yubico_keys()
            .await
            .map_err(|e| vault_halt("yubico_keys_unavailable", e))?;
        if transport.is_empty() {
            return Err(Halt::Retry(
                "no Yubico transport key pinned in the vault yet".into(),
                None,
            ));
        }
        if let Some((Effect::OktaEnroll, since)) = rec.in_flight {
            self.remove_orphans(wf, rec, since).await?;
        }
        let pick = (time::OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .unsigned_abs() as usize)
            % transport.len();
        Self::mark(wf, rec, Effect::OktaEnroll).await?;
        let e = match self
            .client
            .enroll(&user.id, &self.rp_ids, &transport[pick])
            .await
        {
            Ok(e) => e,
            Err(e) => {
                if !e.maybe_applied() {
                    rec.in_flight = None;
                }
                return Err(upstream_halt("okta_enroll_rejected", e));
            }
        };
        fpr_config::danger::crash_point("orchestrator.after_okta_enroll");
        info!(okta.enrollment = %e.id, "Enrolled at Okta");
        rec.okta_enrollment_id = Some(e.id);
        rec.credential_request_jwe = Some(e.cred_request_jwe);
        rec.pin_request_jwe = Some(e.pin_request_jwe);
        rec.reach(Step::Sealed, now());
        Ok(())
    }

    async fn register(&self, wf: &Workflow, rec: &mut Record) -> Result<(), Halt> {
        // An activate whose answer was lost may have worked: Okta's list says.
        if matches!(rec.in_flight, Some((Effect::OktaActivate, _)))
            && self.status(rec).await?.as_deref() == Some("ACTIVE")
        {
            info!("Found the enrollment active at Okta; not activating again");
            rec.reach(Step::Registered, now());
            return Ok(());
        }
        let (_, signing) = wf
            .vault
            .yubico_keys()
            .await
            .map_err(|e| vault_halt("yubico_keys_unavailable", e))?;
        Self::mark(wf, rec, Effect::OktaActivate).await?;
        let activated = self
            .client
            .activate(
                rec.idp_user_id.as_deref().unwrap_or_default(),
                rec.okta_enrollment_id.as_deref().unwrap_or_default(),
                &rec.serial,
                &rec.firmware,
                rec.credential_response_jwe.as_deref().unwrap_or_default(),
                rec.pin_response_jwe.as_deref().unwrap_or_default(),
                &signing,
            )
            .await;
        match activated {
            Ok(()) => {
                fpr_config::danger::crash_point("orchestrator.after_okta_activate");
                info!("Activated at Okta");
            }
            Err(e) => {
                // Refused or lost: an enrollment that is active anyway was activated before.
                if self.status(rec).await?.as_deref() != Some("ACTIVE") {
                    if !e.maybe_applied() {
                        rec.in_flight = None;
                    }
                    return Err(upstream_halt("okta_activation_rejected", e));
                }
                warn!(error = %e, "Activate failed, but the enrollment is active at Okta; going on");
            }
        }
        rec.reach(Step::Registered, now());
        Ok(())
    }

    async fn send_pin(&self, wf: &Workflow, rec: &mut Record, resend: bool) -> Result<(), Halt> {
        // A send-pin whose answer was lost earlier, or is lost now: reported, or (when the
        // operator chose so) asked once more.
        let mut unknown = (!resend && matches!(rec.in_flight, Some((Effect::OktaSendPin, _))))
            .then(|| "fpr stopped".to_owned());
        loop {
            if let Some(why) = unknown.take() {
                if !self.resend_when_unknown || rec.step_times.contains_key(RESENT) {
                    return Err(Self::unknown_pin(rec, &why));
                }
                warn!(%why, "A send-pin's answer was lost; asking Okta once more, as configured");
                rec.step_times.insert(RESENT.into(), now());
            }
            Self::mark(wf, rec, Effect::OktaSendPin).await?;
            let sent = self
                .client
                .send_pin(
                    rec.idp_user_id.as_deref().unwrap_or_default(),
                    rec.okta_enrollment_id.as_deref().unwrap_or_default(),
                )
                .await;
            match sent {
                Ok(()) => {
                    fpr_config::danger::crash_point("orchestrator.after_okta_send_pin");
                    rec.pin_deliveries += 1;
                    rec.in_flight = None;
                    if !resend {
                        rec.reach(Step::PinSent, now());
                    }
                    return Ok(());
                }
                Err(e) if e.maybe_applied() => unknown = Some(format!("Okta answered {e}")),
                Err(e) => {
                    rec.in_flight = None;
                    return Err(upstream_halt("okta_send_pin_rejected", e));
                }
            }
        }
    }

    async fn failed(&self, rec: &Record) {
        if let (Some(e), Some(u)) = (&rec.okta_enrollment_id, &rec.idp_user_id)
            && let Err(err) = self.client.mark_error(u, e).await
        {
            warn!(error = %err, "Okta mark-error failed");
        }
    }

    async fn cancel(&self, rec: &Record) -> Result<(), Error> {
        if let (Some(e), Some(u)) = (&rec.okta_enrollment_id, &rec.idp_user_id) {
            self.client
                .delete_enrollment(u, e)
                .await
                .map_err(Error::Upstream)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use fpr_domain::model::Effect;

    #[test]
    fn effect_names_are_stable() {
        assert_eq!(
            serde_json::to_string(&Effect::OktaSendPin).unwrap_or_default(),
            "\"okta_send_pin\""
        );
    }
}
