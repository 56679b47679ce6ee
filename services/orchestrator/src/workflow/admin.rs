//! What an admin does to one shipment: resend the PIN, edit the shipping data while
//! YubiEnterprise allows it, cancel. Each takes the shipment's lock and saves before it answers.

use super::*;

// === impl Workflow ===

impl Workflow {
    /// ResendPin: an explicit further delivery. It also settles a shipment whose first
    /// delivery's outcome was unknown (`pin_delivery_unknown`): the admin has decided to send.
    pub async fn resend(&self, id: &ShipmentId) -> Result<Record, Error> {
        let _guard = self.lock_for(id).lock().await;
        let mut rec = self.load(id)?;
        let unknown = rec.state == State::Error && rec.error_kind == PIN_DELIVERY_UNKNOWN;
        // Entra ID's PIN is sent from the stored PIN response; Okta sends its own.
        let no_pin = rec.idp == Idp::Entra && rec.pin_response_jwe.is_none();
        if !(rec.step >= Step::PinSent || unknown) || no_pin {
            return Err(Error::Precondition(
                "the PIN has not been delivered yet; ResendPin works after the first delivery"
                    .into(),
            ));
        }
        let sent = with_flow!(
            self,
            rec.idp,
            |f| f.send_pin(self, &mut rec, true).await,
            Err(no_okta())
        );
        match sent {
            Ok(()) => {
                if unknown {
                    // The admin's send settles it: the shipment completes.
                    rec.error_kind.clear();
                    rec.error_message.clear();
                    rec.reach(Step::PinSent, now());
                    rec.reach(Step::Complete, now());
                    rec.state = State::Complete;
                }
                rec.updated_at = now();
                self.save(&rec).await?;
                info!(shipment.id = %rec.id, deliveries = rec.pin_deliveries, "PIN sent again on request");
                Ok(rec)
            }
            Err(Halt::Fail(_, m)) => Err(Error::Precondition(m)),
            Err(Halt::Retry(m, _)) => Err(Error::Unavailable(m)),
            Err(Halt::Internal(e)) => Err(e),
            Err(Halt::Wait) => Ok(rec),
        }
    }

    /// Runs `f` on a record under its lock, then saves it.
    pub async fn update<T>(
        &self,
        id: &ShipmentId,
        f: impl FnOnce(&mut Record) -> Result<T, Error>,
    ) -> Result<(Record, T), Error> {
        let _guard = self.lock_for(id).lock().await;
        let mut rec = self.load(id)?;
        let out = f(&mut rec)?;
        rec.updated_at = now();
        self.save(&rec).await?;
        Ok((rec, out))
    }

    /// Edits recipient, address or delivery type: at YubiEnterprise first (Delivery API, flat
    /// body) when the order exists, then in the record. `shipping` is the new nested body.
    pub async fn edit_shipping(
        &self,
        id: &ShipmentId,
        shipping: serde_json::Value,
    ) -> Result<Record, Error> {
        let _guard = self.lock_for(id).lock().await;
        let mut rec = self.load(id)?;
        if rec.state != State::Ongoing {
            return Err(Error::Precondition(
                format!(
                    "the shipment is {:?}; only ongoing shipments can be edited",
                    rec.state
                )
                .to_lowercase(),
            ));
        }
        if rec.step == Step::Ordering {
            return Err(Error::Unavailable(
                "the YubiEnterprise order is being confirmed; edit again in a minute".into(),
            ));
        }
        if let Some(yubienterprise) = &rec.ye_shipment_id {
            self.yubienterprise
                .update_exact(
                    yubienterprise,
                    &fpr_domain::shipping::to_flat_body(&shipping),
                )
                .await
                .map_err(|e| match e {
                    UpstreamError::Rejected { .. } => {
                        Error::Precondition(format!("YubiEnterprise no longer allows edits: {e}"))
                    }
                    other => Error::Upstream(other),
                })?;
        }
        rec.shipping = shipping;
        rec.updated_at = now();
        self.save(&rec).await?;
        Ok(rec)
    }

    /// Cancels a shipment: the YubiEnterprise order (while it can be), the IdP's part, the
    /// vault's key; then the record. Each part is idempotent, so a cancel that fails halfway
    /// can be called again; the record says canceled only when every part is done.
    pub async fn cancel(&self, id: &ShipmentId, reason: &str) -> Result<Record, Error> {
        let _guard = self.lock_for(id).lock().await;
        let mut rec = self.load(id)?;
        if matches!(rec.state, State::Complete | State::Canceled) {
            return Err(Error::Precondition(format!(
                "the shipment is already {}",
                if rec.state == State::Complete {
                    "complete"
                } else {
                    "canceled"
                }
            )));
        }
        if rec.state == State::Ongoing && rec.step == Step::Ordering {
            // Its order may exist without fpr knowing its id yet: cancel once it is known.
            return Err(Error::Unavailable(
                "the YubiEnterprise order is being confirmed; cancel again in a minute".into(),
            ));
        }
        if let Some(yubienterprise) = &rec.ye_shipment_id {
            match self.yubienterprise.delete_exact(yubienterprise).await {
                Ok(()) | Err(UpstreamError::NotFound { .. }) => {}
                Err(e @ UpstreamError::Rejected { .. }) => {
                    return Err(Error::Precondition(format!(
                        "YubiEnterprise no longer allows cancel: {e}"
                    )));
                }
                Err(e) => return Err(Error::Upstream(e)),
            }
        }
        with_flow!(self, rec.idp, |f| f.cancel(&rec).await?, ());
        self.vault
            .purge(&rec.vault_ref())
            .await
            .map_err(Error::Vault)?;
        rec.state = State::Canceled;
        rec.admin_reason = reason.to_owned();
        rec.updated_at = now();
        self.save(&rec).await?;
        info!(shipment.id = %rec.id, "Shipment canceled");
        Ok(rec)
    }
}
