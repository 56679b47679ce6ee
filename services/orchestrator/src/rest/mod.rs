//! The FIDO Connector's REST API (`/v1/...`), on its own HTTP listener: a script written for
//! Yubico's connector works against fpr unchanged. Every call goes through the same
//! [`ShipmentService`] handlers and the same token checks and roles as the gRPC API; nothing
//! here talks to an upstream. `/openapi.json` is the OpenAPI 3.1 document of the API, derived
//! from the types in [`body`].

pub mod body;
mod failure;
pub mod okta_hook;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use fpr_domain::model::{Record, ShipmentId, State as RecState};
use fpr_proto::v1 as pb;
use fpr_proto::v1::shipment_service_server::ShipmentService as _;
use tokio::net::TcpListener;
use tonic::Request;
use tracing::{info, warn};
use utoipa::OpenApi as _;

use crate::auth::{ROLE_ADMIN, ROLE_CREATE, ROLE_READ, Refusal, Verifier};
use crate::config::RestConfig;
use crate::service::ShipmentService;
use body::{ApiError, CreateRequest, Created, CreatedData, Settings, ShipmentStatus};
pub use failure::Failure;

/// The API's state.
struct Rest {
    service: ShipmentService,
    verifier: Arc<Verifier>,
    cfg: RestConfig,
    openapi: serde_json::Value,
}

/// The OpenAPI document of the API.
pub fn openapi() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    serde_json::to_value(doc).unwrap_or_default()
}

/// The OpenAPI document, indented (as `docs/rest-openapi.json` holds it).
pub fn openapi_pretty() -> String {
    serde_json::to_string_pretty(&openapi()).unwrap_or_default()
}

/// The router of the REST API.
pub fn router(service: ShipmentService, verifier: Arc<Verifier>, cfg: RestConfig) -> Router {
    let openapi = openapi();
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/fpr/shipments", post(create))
        .route("/v1/fpr/shipments/{shipment_id}", get(shipment))
        .route("/v1/operations/resend-pin/{shipment_id}", get(resend_pin))
        .route("/v1/operations/process-shipments", get(process))
        .route("/openapi.json", get(openapi_json))
        .fallback(|| async {
            Failure::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint".into(),
            )
        })
        .with_state(Arc::new(Rest {
            service,
            verifier,
            cfg,
            openapi,
        }))
}

/// Serves `router` on `listener` (TLS with `tls`) until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            use axum::serve::ListenerExt as _;
            // Nagle off: an answer goes out when written.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(acceptor) => {
            let addr = listener.local_addr()?;
            let tls = TlsListener {
                incoming: crate::tls::incoming(listener, acceptor),
                addr,
            };
            axum::serve(tls, router)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// TLS connections as axum's listener.
struct TlsListener {
    incoming: tokio_stream::wrappers::ReceiverStream<
        std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
    >,
    addr: std::net::SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        use tokio_stream::StreamExt as _;
        loop {
            match self.incoming.next().await {
                Some(Ok(io)) => {
                    let peer = io.get_ref().0.peer_addr().unwrap_or(self.addr);
                    return (io, peer);
                }
                Some(Err(_)) => continue,
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

// === impl Rest ===

impl Rest {
    /// Checks the bearer token for `role`, as the gRPC API does.
    async fn authorize(&self, headers: &HeaderMap, role: &'static str) -> Result<(), Failure> {
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let checked = match token {
            None => Err(Refusal::Unauthenticated("missing bearer token".into())),
            Some(t) => self.verifier.verify(t, role).await,
        };
        match checked {
            Ok(caller) => {
                info!(caller.app = %caller.app, caller.oid = %caller.oid, role, "REST caller");
                Ok(())
            }
            Err(refusal) => {
                info!(reason = ?refusal, role, "REST caller refused");
                Err(Failure::refused(refusal))
            }
        }
    }

    /// The record `id` names: fpr's id or YubiEnterprise's.
    fn find(&self, id: &str) -> Result<Record, Failure> {
        let store = self.service.workflow().store();
        let by_fpr = match ShipmentId::try_new(id) {
            Ok(_) => store.get(id).map_err(Failure::internal)?,
            Err(_) => None,
        };
        let rec = match by_fpr {
            Some(r) => Some(r),
            None if id.len() <= 128 && !id.contains(char::is_control) => {
                match store.by_ye_id(id).map_err(Failure::internal)? {
                    Some(fpr_id) => store.get(&fpr_id).map_err(Failure::internal)?,
                    None => None,
                }
            }
            None => None,
        };
        rec.ok_or_else(|| {
            Failure::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("Shipment not found: {id}"),
            )
        })
    }
}

/// The idempotency key of a create: the caller's `Idempotency-Key` header, or a new one
/// (then a repeated POST is a second order, as with the connector).
fn idempotency_key(headers: &HeaderMap) -> String {
    if let Some(k) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) {
        return k.to_owned();
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("rest-{t:x}-{n:x}")
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "fpr REST API",
        description = "The Yubico FIDO Connector's API, served by the fpr orchestrator (with fpr's additions, marked so). Every call but /openapi.json needs a bearer token with the app role named in its description."
    ),
    paths(status, create, shipment, resend_pin, process, openapi_json),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
struct ApiDoc;

/// Adds the bearer scheme.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
    }
}

/// Check Deployment Component Status (role Shipments.Read).
#[utoipa::path(get, path = "/v1/status", responses(
    (status = 200, description = "The settings in effect, by the connector's names", body = Settings),
    (status = 401, description = "No valid token", body = ApiError),
    (status = 403, description = "The token lacks the role", body = ApiError),
    (status = 500, description = "fpr failed (logged)", body = ApiError),
))]
async fn status(
    State(rest): State<Arc<Rest>>,
    headers: HeaderMap,
) -> Result<Json<Settings>, Failure> {
    rest.authorize(&headers, ROLE_READ).await?;
    let mut settings: BTreeMap<String, String> = rest
        .service
        .settings()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    connector_keys(
        &mut settings,
        rest.service.workflow().vault().status().await,
    );
    Ok(Json(Settings(settings)))
}

/// Every key of the connector's status, with what stands for it in fpr: the store for Azure
/// Tables, the vault for Key Vault, the vault's delivery channel for the mail API, the vault's
/// Yubico key URLs.
fn connector_keys(
    s: &mut BTreeMap<String, String>,
    vault: Result<fpr_proto::vault::v1::GetStatusResponse, crate::workflow::vault::VaultError>,
) {
    let get = |s: &BTreeMap<String, String>, k: &str| s.get(k).cloned().unwrap_or_default();
    let store = get(s, "FPR_STORE_PATH");
    let socket = get(s, "FPR_VAULT_SOCKET");
    s.insert("AZURE_TABLES_ENDPOINT".into(), format!("file:{store}"));
    s.insert(
        "AZURE_TABLES_SHIPMENTS_TABLE_NAME".into(),
        "shipments".into(),
    );
    s.insert("AZURE_KEY_VAULT_ENDPOINT".into(), format!("unix:{socket}"));
    s.insert(
        "LOGGING_LEVEL_COM_YUBICO".into(),
        std::env::var("FPR_LOG").unwrap_or_else(|_| "info".into()),
    );
    match vault {
        Ok(v) => {
            let vs = &v.settings;
            let pick = |k: &str| vs.get(k).cloned().unwrap_or_default();
            s.insert(
                "YE_JWKS_TRANSPORT_ENDPOINT".into(),
                pick("YE_JWKS_TRANSPORT_ENDPOINT"),
            );
            s.insert(
                "YE_JWKS_SIGN_ENDPOINT".into(),
                pick("YE_JWKS_SIGN_ENDPOINT"),
            );
            let send = match vs.get("SEND_PIN_URL") {
                Some(url) => url.clone(),
                None => format!("smtp:{}", pick("FPR_VAULT_SMTP")),
            };
            s.insert("EMAIL_API_SEND_ENDPOINT".into(), send);
        }
        Err(e) => {
            for k in [
                "YE_JWKS_TRANSPORT_ENDPOINT",
                "YE_JWKS_SIGN_ENDPOINT",
                "EMAIL_API_SEND_ENDPOINT",
            ] {
                s.insert(
                    k.into(),
                    format!("unknown: the vault did not answer ({})", e.code),
                );
            }
        }
    }
}

/// Create Shipment Request (role Shipments.Create). The shipment is on disk before anything is
/// ordered; the call then waits up to `rest.order_wait` for the YubiEnterprise order. Send an
/// `Idempotency-Key` header to make a retried POST return the first shipment (fpr's addition).
#[utoipa::path(post, path = "/v1/fpr/shipments", request_body = CreateRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "fpr's addition: 1 to 128 printable ASCII characters; the same key returns the same shipment")),
    responses(
    (status = 201, description = "Created: the YubiEnterprise shipment id", body = Created),
    (status = 400, description = "Bad request: api_error (the request), ye_error (YubiEnterprise refused it) or idp_error (the IdP refused it or does not know the user)", body = ApiError),
    (status = 401, description = "No valid token", body = ApiError),
    (status = 403, description = "The token lacks the role", body = ApiError),
    (status = 404, description = "The Idempotency-Key's shipment was cleaned up since (fpr's addition)", body = ApiError),
    (status = 409, description = "The vault refuses the PIN's recipients (fpr's addition)", body = ApiError),
    (status = 500, description = "fpr failed (logged)", body = ApiError),
    (status = 503, description = "fpr cannot record it now (nothing was recorded): try again", body = ApiError),
))]
async fn create(
    State(rest): State<Arc<Rest>>,
    headers: HeaderMap,
    body: Result<Json<CreateRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Created>), Failure> {
    rest.authorize(&headers, ROLE_CREATE).await?;
    let Json(body) = body.map_err(Failure::bad_json)?;
    let req = body.into_pb(idempotency_key(&headers), rest.cfg.default_idp);
    let user = req.user_id.clone();
    let created = rest
        .service
        .create_shipment(Request::new(req))
        .await
        .map_err(|s| Failure::from_create(&s, &user))?
        .into_inner();
    let id = ShipmentId::try_new(&created.shipment_id).map_err(|v| Failure::internal(v.rule))?;
    if created.yubienterprise_shipment_id.is_empty() {
        // The order is placed on a task of its own: a caller who hangs up does not stop it,
        // and one who waits past `order_wait` is answered while it goes on.
        let wf = rest.service.workflow().clone();
        let placing = tokio::spawn(async move {
            if let Err(e) = wf.drive(&id).await {
                warn!(error = %e, "Placing the order failed; processing retries it");
            }
        });
        let _ = tokio::time::timeout(rest.cfg.order_wait, placing).await;
    }
    let rec = rest.find(&created.shipment_id)?;
    if rec.state == RecState::Error {
        return Err(Failure::from_record(&rec));
    }
    info!(shipment.id = %rec.id, ordered = rec.ye_shipment_id.is_some(), "REST shipment created");
    let data = match &rec.ye_shipment_id {
        Some(ye) => CreatedData {
            shipment_id: ye.clone(),
            fpr_shipment_id: rec.id.clone(),
            order_placed: true,
        },
        None => CreatedData {
            shipment_id: rec.id.clone(),
            fpr_shipment_id: rec.id.clone(),
            order_placed: false,
        },
    };
    Ok((StatusCode::CREATED, Json(Created { data })))
}

/// Get Shipment Request Status (role Shipments.Read), by YubiEnterprise or fpr shipment id.
#[utoipa::path(get, path = "/v1/fpr/shipments/{shipment_id}",
    params(("shipment_id" = String, Path, description = "YubiEnterprise or fpr shipment id")),
    responses(
    (status = 200, description = "The shipment's state", body = ShipmentStatus),
    (status = 401, description = "No valid token", body = ApiError),
    (status = 403, description = "The token lacks the role", body = ApiError),
    (status = 404, description = "No such shipment", body = ApiError),
    (status = 500, description = "fpr failed (logged)", body = ApiError),
))]
async fn shipment(
    State(rest): State<Arc<Rest>>,
    headers: HeaderMap,
    Path(shipment_id): Path<String>,
) -> Result<Json<ShipmentStatus>, Failure> {
    rest.authorize(&headers, ROLE_READ).await?;
    let rec = rest.find(&shipment_id)?;
    Ok(Json(ShipmentStatus::of(&rec, &shipment_id)))
}

/// Resend PIN (role Shipments.Admin): a completed shipment's PIN again, by the same channel.
#[utoipa::path(get, path = "/v1/operations/resend-pin/{shipment_id}",
    params(("shipment_id" = String, Path, description = "YubiEnterprise or fpr shipment id")),
    responses(
    (status = 204, description = "The PIN was sent again"),
    (status = 401, description = "No valid token", body = ApiError),
    (status = 403, description = "The token lacks the role", body = ApiError),
    (status = 404, description = "No such shipment", body = ApiError),
    (status = 409, description = "The shipment is not complete, or a resend is refused now", body = ApiError),
    (status = 500, description = "fpr failed (logged)", body = ApiError),
    (status = 503, description = "An upstream or the vault is unavailable: try again", body = ApiError),
))]
async fn resend_pin(
    State(rest): State<Arc<Rest>>,
    headers: HeaderMap,
    Path(shipment_id): Path<String>,
) -> Result<StatusCode, Failure> {
    rest.authorize(&headers, ROLE_ADMIN).await?;
    let rec = rest.find(&shipment_id)?;
    rest.service
        .resend_pin(Request::new(pb::ResendPinRequest {
            shipment_id: rec.id,
        }))
        .await
        .map_err(|s| Failure::from_status(&s))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Process Shipments (role Shipments.Admin): runs the processing job now.
#[utoipa::path(get, path = "/v1/operations/process-shipments", responses(
    (status = 204, description = "The run ended"),
    (status = 401, description = "No valid token", body = ApiError),
    (status = 403, description = "The token lacks the role", body = ApiError),
    (status = 500, description = "fpr failed (logged)", body = ApiError),
    (status = 503, description = "A run could not start now: try again", body = ApiError),
))]
async fn process(State(rest): State<Arc<Rest>>, headers: HeaderMap) -> Result<StatusCode, Failure> {
    rest.authorize(&headers, ROLE_ADMIN).await?;
    rest.service
        .process_shipments(Request::new(pb::ProcessShipmentsRequest {}))
        .await
        .map_err(|s| Failure::from_status(&s))?;
    Ok(StatusCode::NO_CONTENT)
}

/// This document (no token needed).
#[utoipa::path(get, path = "/openapi.json", security(()), responses(
    (status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object),
))]
async fn openapi_json(State(rest): State<Arc<Rest>>) -> Response {
    Json(rest.openapi.clone()).into_response()
}

#[cfg(test)]
mod tests {
    /// `docs/rest-openapi.json` is the document the code serves (regenerate it with
    /// `cargo run -p fpr-orchestrator -- openapi > docs/rest-openapi.json`).
    #[test]
    fn the_documented_openapi_is_the_served_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/rest-openapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        // Compared as values: key order depends on serde_json's features in the build.
        let committed: serde_json::Value = serde_json::from_str(&committed).unwrap_or_default();
        assert_eq!(
            committed,
            super::openapi(),
            "docs/rest-openapi.json is stale: cargo run -p fpr-orchestrator -- openapi > docs/rest-openapi.json"
        );
    }
}
