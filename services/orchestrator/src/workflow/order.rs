//! The YubiEnterprise order and its reconciliation.
//!
//! `ordering` is flushed before the create is sent. If the answer is lost (fpr stopped, a
//! timeout, a 5xx, a reset connection after the request went out, a 2xx fpr cannot read), the
//! order may or may not exist, and it is never placed again blindly: after `reconcile_after`
//! the workflow lists YubiEnterprise's shipments (the Delivery API lists FPR shipments too)
//! and compares them with the order's recipient and address, placed no earlier than the
//! order's `ordering` time less a margin:
//! - exactly one match that no other fpr shipment holds → adopted as this shipment's order;
//! - none, with the whole list read → no order was made: ordered again;
//! - several, or the list could not be read to its end → left to a person, with the
//!   candidates in `error_message` (`order_ambiguous`).
//!
//! See `docs/decisions/0006-order-reconciliation.md`.

use fpr_domain::model::{Record, Step};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::{Halt, Workflow, now, upstream_halt};

/// Orders placed up to this long before `ordering` still count as candidates (clock skew
/// between fpr and YubiEnterprise).
const SKEW_SECS: i64 = 600;
/// Pages of 100 read at most while reconciling one order.
const MAX_PAGES: u64 = 100;

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The order's recipient and address as YubiEnterprise lists them.
fn fingerprint(shipping: &Value) -> [String; 6] {
    let s = |p: &str| {
        norm(
            shipping
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )
    };
    [
        s("/recipient/recipient_email"),
        s("/recipient/recipient_firstname"),
        s("/recipient/recipient_lastname"),
        s("/mailing_address/street_line1"),
        s("/mailing_address/postal_code"),
        s("/mailing_address/country_code_2"),
    ]
}

fn listed_fingerprint(l: &fpr_yubienterprise::Listed) -> [String; 6] {
    [
        norm(&l.email),
        norm(&l.firstname),
        norm(&l.lastname),
        norm(&l.street_line1),
        norm(&l.postal_code),
        norm(&l.country_code_2),
    ]
}

// === impl Workflow ===

impl Workflow {
    /// sealed → ordering → ordered: the YubiEnterprise create, `ordering` durable first.
    pub(super) async fn order(&self, rec: &mut Record) -> Result<(), Halt> {
        let mut body = rec.shipping.clone();
        let (Some(pin), Some(cred)) = (&rec.pin_request_jwe, &rec.credential_request_jwe) else {
            return Err(Halt::Fail("internal", "sealed requests missing".into()));
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
        rec.reach(Step::Ordering, now());
        self.save_step(rec).await.map_err(Halt::Internal)?;
        match self.yubienterprise.create_fpr_shipment(&body).await {
            Ok((id, state)) => {
                fpr_config::danger::crash_point("orchestrator.after_order");
                info!(yubienterprise.id = %id, "Ordered at YubiEnterprise");
                rec.ye_shipment_id = Some(id);
                rec.ye_state_id = state;
                rec.reach(Step::Ordered, now());
                Ok(())
            }
            Err(e) if e.maybe_applied() => {
                // Stays `ordering`: reconciled on a later run, never ordered again blindly.
                warn!(error = %e, "The order's outcome is unknown; it will be reconciled");
                Err(Halt::Retry(
                    format!("{e}; the order's outcome is unknown and will be reconciled"),
                    Some(self.settings.reconcile_after),
                ))
            }
            Err(e) => {
                // YubiEnterprise certainly made nothing (a 4xx, a 429, no connection).
                rec.step = Step::Sealed;
                Err(upstream_halt("yubienterprise_rejected", e))
            }
        }
    }

    /// ordering → ordered (adopted) or sealed (none made; ordered again in the same run).
    pub(super) async fn reconcile(&self, rec: &mut Record) -> Result<(), Halt> {
        let since = rec
            .step_times
            .get("ordering")
            .copied()
            .unwrap_or(rec.created_at);
        let age = now() - since;
        if age < self.settings.reconcile_after {
            return Err(Halt::Retry(
                "waiting before reconciling an order whose outcome is unknown".into(),
                Some(self.settings.reconcile_after - age),
            ));
        }
        let want = fingerprint(&rec.shipping);
        // Orders other shipments hold, and orders canceled to be replaced (a re-issue's old
        // order has the same recipient and address, and may still be listed).
        let mut held: Vec<String> = rec.replaced_ye_ids.clone();
        for r in self.store.all().map_err(Halt::Internal)? {
            if r.id != rec.id {
                held.extend(r.ye_shipment_id);
                held.extend(r.replaced_ye_ids);
            }
        }
        let mut matches = Vec::new();
        let mut complete = false;
        let mut offset = 0u64;
        for _ in 0..MAX_PAGES {
            let page = self
                .yubienterprise
                .list_shipments(offset, 100)
                .await
                .map_err(|e| upstream_halt("order_reconcile_failed", e))?;
            let n = page.shipments.len() as u64;
            matches.extend(
                page.shipments
                    .into_iter()
                    .filter(|l| listed_fingerprint(l) == want)
                    .filter(|l| l.requested_at.is_none_or(|t| t >= since - SKEW_SECS))
                    .filter(|l| !held.contains(&l.shipment_id))
                    .map(|l| l.shipment_id),
            );
            offset += n;
            if n == 0 || page.total_count.is_some_and(|t| offset >= t) {
                complete = true;
                break;
            }
        }
        match (matches.as_slice(), complete) {
            ([one], _) => {
                info!(yubienterprise.id = %one, "Reconciled: adopted the order YubiEnterprise made");
                rec.ye_shipment_id = Some(one.clone());
                rec.step_times.insert("reconciled".into(), now());
                rec.reach(Step::Ordered, now());
                Ok(())
            }
            ([], true) => {
                info!("Reconciled: YubiEnterprise made no order; ordering again");
                rec.step_times.insert("reconciled".into(), now());
                rec.reach(Step::Sealed, now());
                Ok(())
            }
            ([], false) => Err(Halt::Fail(
                "order_ambiguous",
                format!(
                    "the order's answer was lost and YubiEnterprise's list was longer than the {} shipments read; check the console for an order to {} placed after the shipment's ordering time, then RetryShipment to order again or CancelShipment",
                    MAX_PAGES * 100,
                    want[0]
                ),
            )),
            (many, _) => Err(Halt::Fail(
                "order_ambiguous",
                format!(
                    "the order's answer was lost and YubiEnterprise has {} matching orders ({}); cancel the extra ones in the console, then RetryShipment",
                    many.len(),
                    many.join(", ")
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compare_trimmed_and_caseless() {
        let shipping = json!({"recipient": {"recipient_email": "Ada@Example.com ", "recipient_firstname": "Ada", "recipient_lastname": "L"},
            "mailing_address": {"street_line1": "1 Main St", "postal_code": "02026", "country_code_2": "US"}});
        let listed = fpr_yubienterprise::Listed {
            shipment_id: "x".into(),
            email: "ada@example.com".into(),
            firstname: "ADA".into(),
            lastname: "l".into(),
            street_line1: " 1 main st".into(),
            postal_code: "02026".into(),
            country_code_2: "us".into(),
            requested_at: None,
        };
        assert_eq!(fingerprint(&shipping), listed_fingerprint(&listed));
    }
}
