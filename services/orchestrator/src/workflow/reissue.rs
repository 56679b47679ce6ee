//! Re-issuing an expiring Entra ID challenge. Yubico may take days to program a key, and a
//! key programmed with a challenge that has expired cannot be registered. While the order is
//! still editable at YubiEnterprise (state 9 or below, no key programmed), a shipment whose
//! challenge expires within `entra.reissue_margin` is canceled there and ordered again with new
//! creation options, sealed under a new vault reference:
//!
//! 1. the old order's id joins `replaced_ye_ids` (durable): its cancel is under way;
//! 2. YubiEnterprise deletes it (404: already gone); a refusal (too late to edit) keeps the
//!    order, says so in the history, and is not tried again;
//! 3. the vault forgets the old requests' key; the record goes back to `accepted` with the
//!    next `vault_ref`, and the usual steps fetch new options, seal and order.
//!
//! The old order is deleted before the new one is placed, so at any time there is at most one
//! live order; a crash anywhere resumes at step 2 (the cancel is idempotent). Reconciliation
//! never adopts a replaced order. At most [`MAX_REISSUES`] re-issues a shipment. With
//! `entra.reissue_expiring = false` (or the re-issues spent) the shipment is only flagged.

use fpr_domain::model::{Idp, Record, Step};
use fpr_upstream::Error as UpstreamError;
use tracing::{info, warn};

use super::entra::rfc3339;
use super::{Halt, Workflow, now, upstream_halt, vault_halt};

/// Re-issues a shipment gets at most.
pub const MAX_REISSUES: u32 = 5;

// === impl Workflow ===

impl Workflow {
    /// Whether an order in YubiEnterprise state `state_id`, with no key programmed yet, has a
    /// challenge expiring within the margin while still editable: Some(re-issue it), or None.
    pub(super) fn expiring(&self, rec: &Record, state_id: u32) -> Option<bool> {
        let (margin, reissue) = self.settings.entra_expiry?;
        let due = rec.idp == Idp::Entra
            && state_id <= 9
            && rec
                .challenge_expires_at
                .is_some_and(|at| now() >= at.saturating_sub(margin));
        due.then_some(reissue && !rec.reissue_refused && rec.reissues < MAX_REISSUES)
    }

    /// With re-issue off (or spent): says once, in the history and the log, that the order's
    /// challenge nears expiry while it can still be canceled.
    pub(super) fn flag_expiring(&self, rec: &mut Record, order: &str) {
        const FLAG: &str = "not re-issued: the challenge expires at";
        let at = rfc3339(rec.challenge_expires_at.unwrap_or_default());
        if rec
            .history
            .iter()
            .any(|h| h.event.starts_with(FLAG) && h.event.contains(&at))
        {
            return;
        }
        warn!(yubienterprise.id = %order, expires = %at, "Challenge expiring while the order is editable");
        rec.note(
            now(),
            format!(
                "{FLAG} {at} and YubiEnterprise order {order} is still editable; it is not \
                 re-issued (entra.reissue_expiring = false, or a re-issue was refused or made \
                 too often): a key made after that time cannot be registered, so cancel and \
                 order again, or ask Yubico to expedite"
            ),
        );
    }

    /// Cancels order `old` and sends the shipment back to `accepted` (see the module).
    pub(super) async fn reissue(&self, rec: &mut Record, old: &str) -> Result<(), Halt> {
        if !rec.replaced_ye_ids.iter().any(|x| x == old) {
            let at = rec.challenge_expires_at.unwrap_or_default();
            rec.replaced_ye_ids.push(old.to_owned());
            rec.note(
                now(),
                format!(
                    "the challenge expires at {} and YubiEnterprise order {old} is still \
                     editable: canceling it to order again with a new challenge",
                    rfc3339(at)
                ),
            );
            self.save(rec).await.map_err(Halt::Internal)?;
            info!(yubienterprise.id = %old, "Challenge expiring; re-issuing the order");
        }
        match self.yubienterprise.delete_exact(old).await {
            Ok(()) | Err(UpstreamError::NotFound { .. }) => {}
            Err(e @ UpstreamError::Rejected { .. }) => {
                warn!(yubienterprise.id = %old, error = %e, "YubiEnterprise refused the re-issue's cancel");
                rec.replaced_ye_ids.retain(|x| x != old);
                rec.reissue_refused = true;
                rec.note(
                    now(),
                    format!(
                        "YubiEnterprise refused to cancel order {old} ({e}); it stays, and if \
                         the key is programmed after the challenge expires it cannot be \
                         registered"
                    ),
                );
                return Ok(());
            }
            Err(e) => return Err(upstream_halt("yubienterprise_failed", e)),
        }
        fpr_config::danger::crash_point("orchestrator.after_reissue_cancel");
        self.vault
            .purge(&rec.vault_ref())
            .await
            .map_err(|e| vault_halt("purge_failed", e))?;
        rec.reissues += 1;
        rec.ye_shipment_id = None;
        rec.ye_state_id = 0;
        rec.ye_state_message.clear();
        rec.tracking_link.clear();
        rec.creation_options = None;
        rec.challenge_expires_at = None;
        rec.request_id = None;
        rec.credential_request_jwe = None;
        rec.pin_request_jwe = None;
        rec.note(
            now(),
            format!(
                "order {old} canceled at YubiEnterprise; ordering again with a new challenge \
                 (re-issue {})",
                rec.reissues
            ),
        );
        rec.step_times.insert("reissued".into(), now());
        rec.step = Step::Accepted;
        rec.in_flight = None;
        rec.attempts = 0;
        rec.not_before = 0;
        Ok(())
    }
}
