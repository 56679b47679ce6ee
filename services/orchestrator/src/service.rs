//! `ShipmentService`: the RPC handlers. They validate, read or write records and call the
//! [`workflow`](crate::workflow); they never call an upstream themselves.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use fpr_domain::model::{Idp, Record, ShipmentId, State, Step};
use fpr_proto::v1 as pb;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::{Instrument as _, info, info_span};

use crate::Error;
use crate::convert::{state_pb, to_pb};
use crate::workflow::{Workflow, now};
use fpr_domain::shipping;

/// The service.
#[derive(Clone)]
pub struct ShipmentService {
    wf: Arc<Workflow>,
    settings: HashMap<String, String>,
    group_orders: Arc<crate::groups::Standing>,
}

impl std::fmt::Debug for ShipmentService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShipmentService").finish_non_exhaustive()
    }
}

/// A new shipment id, sortable by creation (a counter keeps ids made in the same nanosecond
/// apart).
fn new_id() -> ShipmentId {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let t = time::OffsetDateTime::now_utc()
        .unix_timestamp_nanos()
        .max(0) as u128;
    ShipmentId::generated(
        t,
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    )
}

/// For Okta, a violation on a field taken from the profile names the attribute to fill in
/// (the seed's FAQ case of missing shipping data).
fn annotate_okta(
    violations: Vec<fpr_domain::Violation>,
    from_profile: &[&str],
    okta: bool,
) -> Vec<fpr_domain::Violation> {
    if !okta {
        return violations;
    }
    violations
        .into_iter()
        .map(|mut v| {
            let leaf = v.field.rsplit('.').next().unwrap_or_default().to_owned();
            if from_profile.contains(&leaf.as_str())
                && let Some(attr) = shipping::field(&leaf).and_then(|f| f.okta)
            {
                v.rule = format!("{} (taken from the Okta profile attribute {attr}: fill it in Okta or set the field in the request)", v.rule);
            }
            v
        })
        .collect()
}

fn check_id(id: &str) -> Result<ShipmentId, Error> {
    ShipmentId::try_new(id).map_err(|v| Error::Invalid(vec![v]))
}

// === impl ShipmentService ===

impl ShipmentService {
    /// Builds the service.
    pub fn new(wf: Arc<Workflow>, settings: HashMap<String, String>) -> Self {
        Self {
            wf,
            settings,
            group_orders: Arc::default(),
        }
    }

    /// The service with standing group orders (run by [`ShipmentService::process`]).
    pub fn with_group_orders(mut self, cfg: crate::config::GroupOrdersConfig) -> Self {
        self.group_orders = Arc::new(crate::groups::Standing::new(cfg));
        self
    }

    /// The settings in effect, by the connector's names (secrets redacted).
    pub fn settings(&self) -> &HashMap<String, String> {
        &self.settings
    }

    /// The workflow behind the service.
    pub fn workflow(&self) -> &Arc<Workflow> {
        &self.wf
    }

    /// Runs the processing job now: the standing group orders when due, then
    /// [`Workflow::process`].
    pub async fn process(&self) -> Result<pb::ProcessShipmentsResponse, Error> {
        crate::groups::standing(self, &self.group_orders).await;
        self.wf.process().await
    }

    /// Removes completed shipments older than `days` (0: off) and purges their vault keys:
    /// the seed's `CRON_DATA_CLEANUP_COMPLETED_DAYS`.
    pub async fn cleanup(&self, days: u32) -> Result<u32, Error> {
        if days == 0 {
            return Ok(0);
        }
        self.wf
            .cleanup_before(now() - i64::from(days) * 86_400)
            .await
    }

    /// Removes completed shipments last changed before `cutoff` (unix seconds).
    pub async fn cleanup_before(&self, cutoff: i64) -> Result<u32, Error> {
        self.wf.cleanup_before(cutoff).await
    }

    async fn get(&self, id: &str) -> Result<Record, Error> {
        let id = check_id(id)?;
        let id = id.as_str();
        self.wf
            .store()
            .get(id)?
            .ok_or_else(|| Error::ShipmentNotFound(id.to_owned()))
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Shipment, Status>> + Send>>;

#[tonic::async_trait]
impl pb::shipment_service_server::ShipmentService for ShipmentService {
    async fn get_status(
        &self,
        _r: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        Ok(Response::new(pb::GetStatusResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            settings: self.settings.clone(),
            dependencies: self
                .wf
                .dependencies()
                .await
                .into_iter()
                .map(|(name, r)| pb::Dependency {
                    name: name.into(),
                    healthy: r.is_ok(),
                    detail: r.unwrap_or_else(|e| e),
                })
                .collect(),
        }))
    }

    async fn create_shipment(
        &self,
        req: Request<pb::CreateShipmentRequest>,
    ) -> Result<Response<pb::CreateShipmentResponse>, Status> {
        let mut r = req.into_inner();
        // A retried call returns the first result, before any check: an Okta request is
        // checked only after its profile fills it, which a replay does not repeat.
        if let Some(id) = self
            .wf
            .store()
            .by_idempotency_key(&r.idempotency_key)
            .map_err(Status::from)?
        {
            let rec = self.get(&id).await?;
            // The first call may have failed to flush (a full disk): what it left in memory
            // is acknowledged only once it is on disk.
            self.wf.store().flush().await.map_err(Status::from)?;
            return Ok(Response::new(pb::CreateShipmentResponse {
                shipment_id: rec.id,
                shipment_state: state_pb(rec.state) as i32,
                yubienterprise_shipment_id: rec.ye_shipment_id.unwrap_or_default(),
            }));
        }
        let okta = r.idp == pb::Idp::Okta as i32;
        let mut from_profile = Vec::new();
        if okta && !r.user_id.is_empty() {
            let profile = self.wf.okta_profile(&r.user_id).await?;
            from_profile = shipping::fill_from_okta_profile(
                r.yubico_shipment_request
                    .get_or_insert_with(Default::default),
                &profile,
            );
        }
        let v = fpr_domain::validate::create(&r)
            .map_err(|vs| Error::Invalid(annotate_okta(vs, &from_profile, okta)))?;
        if v.idp != pb::Idp::Okta && !v.emails_to.is_empty() {
            // The vault's recipient policy, asked now: a recipient it would refuse is refused
            // before anything is ordered.
            self.wf.check_recipients(&v.emails_to).await.map_err(|e| {
                match (&e.violation, e.code) {
                    (Some((field, rule)), tonic::Code::InvalidArgument) => {
                        let field = field.replace("recipients", "enrollment_contacts.emails_to");
                        Error::Invalid(vec![fpr_domain::Violation::new(field, rule.clone())])
                    }
                    _ => Error::Vault(e),
                }
            })?;
        }
        if r.validate_only {
            return Ok(Response::new(pb::CreateShipmentResponse::default()));
        }
        let t = now();
        let idp = if v.idp == pb::Idp::Okta {
            Idp::Okta
        } else {
            Idp::Entra
        };
        let mut rec = Record {
            id: new_id().to_string(),
            idempotency_key: r.idempotency_key.clone(),
            idp,
            user_id: r.user_id.clone(),
            idp_user_id: None,
            display_name: String::new(),
            upn: String::new(),
            state: State::Ongoing,
            step: Step::Accepted,
            error_kind: String::new(),
            error_message: String::new(),
            last_error: String::new(),
            not_before: 0,
            attempts: 0,
            pin_length: v.pin_length,
            force_change: v.force_change,
            emails_to: v.emails_to,
            shipping: shipping::to_fpr_body(
                r.yubico_shipment_request
                    .as_ref()
                    .ok_or(Error::Invalid(vec![]))?,
            ),
            pin_recipients: Vec::new(),
            creation_options: None,
            challenge_expires_at: None,
            request_id: None,
            credential_request_jwe: None,
            pin_request_jwe: None,
            okta_enrollment_id: None,
            ye_shipment_id: None,
            ye_state_id: 0,
            ye_state_message: String::new(),
            serial: String::new(),
            firmware: String::new(),
            tracking_link: String::new(),
            credential_response_jwe: None,
            pin_response_jwe: None,
            credential_id: String::new(),
            pin_deliveries: 0,
            step_times: Default::default(),
            created_at: t,
            updated_at: t,
            admin_reason: String::new(),
            in_flight: None,
            history: Vec::new(),
            reissues: 0,
            replaced_ye_ids: Vec::new(),
            reissue_refused: false,
        };
        rec.reach(Step::Accepted, t);
        let stored = self.wf.store().create(&rec).await.map_err(Status::from)?;
        if stored == rec.id {
            crate::workflow::reached(rec.idp, Step::Accepted);
        }
        let id = check_id(&stored)?;
        fpr_config::danger::crash_point("orchestrator.after_accept");
        let span = info_span!("create_shipment", shipment.id = %id, user.id = %r.user_id);
        if r.accept_only {
            span.in_scope(|| info!("Shipment accepted; processing places the order"));
            self.wf.wake_processing();
            return Ok(Response::new(pb::CreateShipmentResponse {
                shipment_id: id.to_string(),
                shipment_state: pb::ShipmentState::Ongoing as i32,
                yubienterprise_shipment_id: String::new(),
            }));
        }
        async {
            info!("Shipment accepted");
            self.wf.drive(&id).await
        }
        .instrument(span)
        .await?;
        let rec = self.get(id.as_str()).await?;
        Ok(Response::new(pb::CreateShipmentResponse {
            shipment_id: rec.id,
            shipment_state: state_pb(rec.state) as i32,
            yubienterprise_shipment_id: rec.ye_shipment_id.unwrap_or_default(),
        }))
    }

    async fn get_shipment(
        &self,
        req: Request<pb::GetShipmentRequest>,
    ) -> Result<Response<pb::Shipment>, Status> {
        Ok(Response::new(to_pb(
            &self.get(&req.into_inner().shipment_id).await?,
        )))
    }

    async fn list_shipments(
        &self,
        req: Request<pb::ListShipmentsRequest>,
    ) -> Result<Response<pb::ListShipmentsResponse>, Status> {
        let r = req.into_inner();
        let mut bad = Vec::new();
        if r.page_size > 500 {
            bad.push(fpr_domain::Violation::new("page_size", "at most 500"));
        }
        if pb::ShipmentState::try_from(r.state).is_err() {
            bad.push(fpr_domain::Violation::new(
                "state",
                format!("{} is not a ShipmentState", r.state),
            ));
        }
        if pb::Idp::try_from(r.idp).is_err() {
            bad.push(fpr_domain::Violation::new(
                "idp",
                format!("{} is not an Idp", r.idp),
            ));
        }
        if r.user_id.len() > 256 || r.user_id.contains(char::is_control) {
            bad.push(fpr_domain::Violation::new(
                "user_id",
                "at most 256 characters, no control characters",
            ));
        }
        if !r.page_token.is_empty() && ShipmentId::try_new(&r.page_token).is_err() {
            bad.push(fpr_domain::Violation::new(
                "page_token",
                "a next_page_token from an earlier ListShipments",
            ));
        }
        if let (Some(a), Some(b)) = (&r.created_after, &r.created_before)
            && a.seconds >= b.seconds
        {
            bad.push(fpr_domain::Violation::new(
                "created_before",
                "must be after created_after",
            ));
        }
        if !bad.is_empty() {
            return Err(Error::Invalid(bad).into());
        }
        let size = if r.page_size == 0 {
            100
        } else {
            r.page_size as usize
        };
        let state = pb::ShipmentState::try_from(r.state).unwrap_or(pb::ShipmentState::Unspecified);
        let idp = pb::Idp::try_from(r.idp).unwrap_or(pb::Idp::Unspecified);
        let after = r.created_after.map(|t| t.seconds);
        let before = r.created_before.map(|t| t.seconds);
        let keep = |x: &Record| {
            (state == pb::ShipmentState::Unspecified || state_pb(x.state) == state)
                && (r.user_id.is_empty() || x.user_id.eq_ignore_ascii_case(&r.user_id))
                && (idp == pb::Idp::Unspecified || (idp == pb::Idp::Entra) == (x.idp == Idp::Entra))
                && after.is_none_or(|a| x.created_at >= a)
                && before.is_none_or(|b| x.created_at < b)
        };
        let (page, more) = self
            .wf
            .store()
            .page(
                state == pb::ShipmentState::Ongoing,
                (!r.page_token.is_empty()).then_some(r.page_token.as_str()),
                size,
                keep,
            )
            .map_err(Status::from)?;
        let next = if more {
            page.last().map(|x| x.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListShipmentsResponse {
            shipments: page.iter().map(to_pb).collect(),
            next_page_token: next,
        }))
    }

    type WatchShipmentStream = WatchStream;

    async fn watch_shipment(
        &self,
        req: Request<pb::WatchShipmentRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let id = req.into_inner().shipment_id;
        let first = self.get(&id).await?;
        let mut rx = self.wf.subscribe();
        let store = self.wf.store().clone();
        let stream = async_stream(first, move |tx| async move {
            loop {
                // Our record changed, or notifications were missed and it may have: send it.
                let relevant = match rx.recv().await {
                    Ok(changed) => changed == id,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(_) => return,
                };
                if !relevant {
                    continue;
                }
                let Ok(Some(rec)) = store.get(&id) else {
                    return;
                };
                let done = rec.state != State::Ongoing;
                if tx.send(Ok(to_pb(&rec))).await.is_err() || done {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn update_shipment(
        &self,
        req: Request<pb::UpdateShipmentRequest>,
    ) -> Result<Response<pb::Shipment>, Status> {
        let r = req.into_inner();
        let id = check_id(&r.shipment_id)?;
        let mut violations = fpr_domain::validate::update(&r);
        // What can be judged without the record is judged first: bad input is
        // INVALID_ARGUMENT whether or not the shipment exists.
        if !violations.is_empty() {
            return Err(Error::Invalid(violations).into());
        }
        let rec = self.get(&r.shipment_id).await?;
        let current: pb::YubicoShipmentRequest = shipping::from_fpr_body(&rec.shipping);
        let next = pb::YubicoShipmentRequest {
            delivery_type: if r.delivery_type == 0 {
                current.delivery_type
            } else {
                r.delivery_type
            },
            recipient: r.recipient.clone().or(current.recipient),
            mailing_address: r.mailing_address.clone().or(current.mailing_address),
            shipment_items: current.shipment_items,
        };
        violations.extend(fpr_domain::validate::contact_fields(
            next.recipient.as_ref(),
            next.mailing_address.as_ref(),
            "",
        ));
        if !violations.is_empty() {
            return Err(Error::Invalid(violations).into());
        }
        drop(rec);
        let rec = self
            .wf
            .edit_shipping(&id, shipping::to_fpr_body(&next))
            .await?;
        Ok(Response::new(to_pb(&rec)))
    }

    async fn cancel_shipment(
        &self,
        req: Request<pb::CancelShipmentRequest>,
    ) -> Result<Response<pb::Shipment>, Status> {
        let r = req.into_inner();
        let id = check_id(&r.shipment_id)?;
        if r.reason.chars().count() > 500 {
            return Err(Error::Invalid(vec![fpr_domain::Violation::new(
                "reason",
                "at most 500 characters",
            )])
            .into());
        }
        Ok(Response::new(to_pb(&self.wf.cancel(&id, &r.reason).await?)))
    }

    async fn retry_shipment(
        &self,
        req: Request<pb::RetryShipmentRequest>,
    ) -> Result<Response<pb::Shipment>, Status> {
        let id = check_id(&req.into_inner().shipment_id)?;
        self.wf
            .update(&id, |x| {
                if x.state != State::Error {
                    return Err(Error::Precondition(
                        "only a shipment in error can be retried".into(),
                    ));
                }
                x.state = State::Ongoing;
                x.error_kind.clear();
                x.error_message.clear();
                x.attempts = 0;
                x.not_before = 0;
                // A shipment stopped at `ordering` stays there: the retry reconciles with
                // YubiEnterprise again (adopting the one order, or ordering when there is none).
                Ok(())
            })
            .await?;
        self.wf.drive(&id).await?;
        Ok(Response::new(to_pb(&self.get(id.as_str()).await?)))
    }

    async fn complete_shipment(
        &self,
        req: Request<pb::CompleteShipmentRequest>,
    ) -> Result<Response<pb::Shipment>, Status> {
        let r = req.into_inner();
        let id = check_id(&r.shipment_id)?;
        if r.reason.trim().is_empty() || r.reason.len() > 500 {
            return Err(Error::Invalid(vec![fpr_domain::Violation::new(
                "reason",
                "1 to 500 characters",
            )])
            .into());
        }
        let (rec, ()) = self
            .wf
            .update(&id, |x| {
                if matches!(x.state, State::Complete | State::Canceled) {
                    return Err(Error::Precondition("the shipment already ended".into()));
                }
                x.state = State::Complete;
                x.admin_reason = r.reason.clone();
                x.step_times.insert("completed_by_hand".into(), now());
                Ok(())
            })
            .await?;
        Ok(Response::new(to_pb(&rec)))
    }

    async fn resend_pin(
        &self,
        req: Request<pb::ResendPinRequest>,
    ) -> Result<Response<pb::Shipment>, Status> {
        let id = check_id(&req.into_inner().shipment_id)?;
        Ok(Response::new(to_pb(&self.wf.resend(&id).await?)))
    }

    async fn process_shipments(
        &self,
        _r: Request<pb::ProcessShipmentsRequest>,
    ) -> Result<Response<pb::ProcessShipmentsResponse>, Status> {
        Ok(Response::new(self.process().await?))
    }

    async fn get_catalog(
        &self,
        _r: Request<pb::GetCatalogRequest>,
    ) -> Result<Response<pb::GetCatalogResponse>, Status> {
        let wf = &self.wf;
        let c = crate::catalog::catalog(wf.yubienterprise(), wf.store()).await?;
        Ok(Response::new(c))
    }

    async fn plan_group_order(
        &self,
        r: Request<pb::GroupOrderRequest>,
    ) -> Result<Response<pb::GroupOrderResponse>, Status> {
        let plan = crate::groups::plan(&self.wf, r.get_ref()).await?;
        Ok(Response::new(plan))
    }

    async fn order_group(
        &self,
        r: Request<pb::GroupOrderRequest>,
    ) -> Result<Response<pb::GroupOrderResponse>, Status> {
        Ok(Response::new(
            crate::groups::order(self, r.get_ref()).await?,
        ))
    }
}

/// A stream that yields `first`, then what `produce` sends.
fn async_stream<F, Fut>(first: Record, produce: F) -> WatchStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<pb::Shipment, Status>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let done = first.state != State::Ongoing;
    let first = to_pb(&first);
    tokio::spawn(async move {
        if tx.send(Ok(first)).await.is_err() || done {
            return;
        }
        produce(tx).await;
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
