//! The vault as the workflow calls it: every call has a deadline, and a refusal keeps its gRPC
//! code and `ErrorInfo` reason so that retry decisions are made on types, not on text.

use std::time::Duration;

use fpr_domain::model::Record;
use fpr_proto::vault::v1 as vpb;
use fpr_proto::vault::v1::vault_service_client::VaultServiceClient;

/// The channel to the vault, sending the caller's trace context with each call.
type Traced =
    tonic::service::interceptor::InterceptedService<Channel, fpr_telemetry::trace::Inject>;
use tonic::transport::Channel;

/// A failed vault call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("vault {code:?}{}: {message}", if reason.is_empty() { String::new() } else { format!(" ({reason})") })]
pub struct VaultError {
    /// The gRPC code (`DeadlineExceeded` when our own deadline passed).
    pub code: tonic::Code,
    /// The vault's `ErrorInfo` reason (`bad_signature`, `delivery_outcome_unknown`, …), or empty.
    pub reason: String,
    /// The vault's message (ids and check names; never a secret).
    pub message: String,
    /// The first field violation the vault named (field, rule), if any.
    pub violation: Option<(String, String)>,
}

// === impl VaultError ===

impl VaultError {
    /// True when the vault looked at the request and refused it: asking again the same way
    /// gets the same answer. False for unavailability, deadlines and internal faults.
    pub fn is_refusal(&self) -> bool {
        use tonic::Code::*;
        matches!(
            self.code,
            InvalidArgument | NotFound | AlreadyExists | FailedPrecondition | PermissionDenied
        )
    }
}

impl From<tonic::Status> for VaultError {
    fn from(s: tonic::Status) -> Self {
        use tonic_types::StatusExt as _;
        Self {
            code: s.code(),
            reason: s
                .get_details_error_info()
                .map(|i| i.reason)
                .unwrap_or_default(),
            message: s.message().chars().take(300).collect(),
            violation: s.get_details_bad_request().and_then(|b| {
                b.field_violations
                    .into_iter()
                    .next()
                    .map(|v| (v.field, v.description))
            }),
        }
    }
}

/// The vault client with a deadline per call.
#[derive(Clone, Debug)]
pub struct Vault {
    client: VaultServiceClient<Traced>,
    deadline: Duration,
}

/// What DeliverPin is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Check the PIN response and the recipients; send nothing.
    Check,
    /// Send once (a repeated call answers with the first receipt).
    Once,
    /// Send again: an explicit admin action.
    Resend,
}

// === impl Vault ===

impl Vault {
    /// A client whose calls fail with `DeadlineExceeded` after `deadline`.
    pub fn new(channel: Channel, deadline: Duration) -> Self {
        Self {
            client: VaultServiceClient::with_interceptor(channel, fpr_telemetry::trace::Inject),
            deadline,
        }
    }

    async fn call<T, F>(
        &self,
        f: impl FnOnce(VaultServiceClient<Traced>) -> F,
    ) -> Result<T, VaultError>
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match tokio::time::timeout(self.deadline, f(self.client.clone())).await {
            Ok(r) => r.map(tonic::Response::into_inner).map_err(VaultError::from),
            Err(_) => Err(VaultError {
                code: tonic::Code::DeadlineExceeded,
                reason: String::new(),
                message: format!("no answer within {:?}", self.deadline),
                violation: None,
            }),
        }
    }

    /// SealRequests for a shipment.
    pub async fn seal(
        &self,
        rec: &Record,
        creation_options_json: String,
    ) -> Result<vpb::SealRequestsResponse, VaultError> {
        let req = vpb::SealRequestsRequest {
            shipment_ref: rec.vault_ref(),
            creation_options_json,
            pin_policy: Some(vpb::PinPolicy {
                length: rec.pin_length,
                force_change: rec.force_change,
            }),
            recipients: rec.pin_recipients.clone(),
        };
        self.call(|mut c| async move { c.seal_requests(req).await })
            .await
    }

    /// CheckRecipients: are these addresses within the vault's PIN recipient policy?
    pub async fn check_recipients(&self, recipients: &[String]) -> Result<(), VaultError> {
        let req = vpb::CheckRecipientsRequest {
            recipients: recipients.to_vec(),
        };
        self.call(|mut c| async move { c.check_recipients(req).await })
            .await
            .map(drop)
    }

    /// OpenCredentialResponse of a shipped shipment.
    pub async fn open_credential(
        &self,
        rec: &Record,
    ) -> Result<vpb::OpenCredentialResponseResponse, VaultError> {
        let req = vpb::OpenCredentialResponseRequest {
            shipment_ref: rec.vault_ref(),
            credential_response_jwe: rec.credential_response_jwe.clone().unwrap_or_default(),
        };
        self.call(|mut c| async move { c.open_credential_response(req).await })
            .await
    }

    /// DeliverPin of a shipped shipment to its resolved recipients.
    pub async fn deliver_pin(
        &self,
        rec: &Record,
        mode: Delivery,
    ) -> Result<vpb::DeliverPinResponse, VaultError> {
        let req = vpb::DeliverPinRequest {
            shipment_ref: rec.vault_ref(),
            pin_response_jwe: rec.pin_response_jwe.clone().unwrap_or_default(),
            expected_serial: rec.serial.clone(),
            recipients: rec.pin_recipients.clone(),
            context: Some(vpb::MessageContext {
                user_display_name: rec.display_name.clone(),
                user_principal_name: rec.upn.clone(),
                shipment_id: rec.id.clone(),
            }),
            resend: mode == Delivery::Resend,
            validate_only: mode == Delivery::Check,
        };
        self.call(|mut c| async move { c.deliver_pin(req).await })
            .await
    }

    /// The pinned Yubico key sets as JWK arrays (transport, signing).
    pub async fn yubico_keys(
        &self,
    ) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), VaultError> {
        let k = self
            .call(|mut c| async move { c.get_yubico_keys(vpb::GetYubicoKeysRequest {}).await })
            .await?;
        let keys = |j: &str| {
            serde_json::from_str::<serde_json::Value>(j)
                .ok()
                .and_then(|v| v.get("keys").and_then(serde_json::Value::as_array).cloned())
                .unwrap_or_default()
        };
        Ok((keys(&k.transport_jwks_json), keys(&k.signing_jwks_json)))
    }

    /// PurgeShipment: forgets the shipment's response key.
    pub async fn purge(&self, shipment_ref: &str) -> Result<bool, VaultError> {
        let req = vpb::PurgeShipmentRequest {
            shipment_ref: shipment_ref.to_owned(),
        };
        self.call(|mut c| async move { c.purge_shipment(req).await })
            .await
            .map(|r| r.purged)
    }

    /// GetStatus, for the orchestrator's own status.
    pub async fn status(&self) -> Result<vpb::GetStatusResponse, VaultError> {
        self.call(|mut c| async move { c.get_status(vpb::GetStatusRequest {}).await })
            .await
    }
}
