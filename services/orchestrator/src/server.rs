//! Building and serving the orchestrator.

use std::path::Path;
use std::sync::Arc;

use fpr_proto::v1::shipment_service_server::ShipmentServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint};

use crate::Error;
use crate::auth::{AuthLayer, Verifier};
use crate::config::Config;
use crate::service::ShipmentService;
use crate::store::Shipments;
use crate::workflow::{self, Workflow};

/// A lazily connecting channel to the vault's Unix socket.
pub fn vault_channel(socket: &Path) -> Result<Channel, Error> {
    let path = socket.to_owned();
    Ok(
        Endpoint::try_from("http://vault.invalid")?.connect_with_connector_lazy(tower::service_fn(
            move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            },
        )),
    )
}

/// The running parts, for `serve` and for tests.
pub struct ServerParts {
    /// The gRPC service.
    pub service: ShipmentService,
    /// The inbound token verifier.
    pub verifier: Arc<Verifier>,
    /// TLS for the listener, when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The health-only plaintext listener's address, when configured.
    pub health_listen: Option<std::net::SocketAddr>,
    /// The REST API's listener (bound), its settings and TLS, when configured.
    pub rest: Option<(
        TcpListener,
        crate::config::RestConfig,
        Option<tokio_rustls::TlsAcceptor>,
    )>,
    /// The metrics listener (bound), when configured.
    pub metrics: Option<TcpListener>,
    /// The Okta event hook's routes, served on the REST listener, when configured.
    pub okta_event_hook: Option<axum::Router>,
}

impl ServerParts {
    /// The address the REST API listens on, when configured.
    pub fn rest_addr(&self) -> Option<std::net::SocketAddr> {
        self.rest.as_ref().and_then(|(l, _, _)| l.local_addr().ok())
    }

    /// The address metrics are served on (`/metrics`), when configured.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// Opens the store and builds clients and the service; `vault` is the channel to the vault.
pub async fn build(config: &Config, vault: Channel) -> Result<ServerParts, Error> {
    if config.danger_allow_plaintext_http {
        tracing::warn!("danger_allow_plaintext_http is on: upstream URLs may be plain http");
    }
    for (key, inline) in config.inline_secrets() {
        if inline {
            tracing::warn!(
                setting = key,
                "Secret given inline (danger_inline): use a file or an environment variable in production"
            );
        }
    }
    let shipments = Shipments::open_dir(&config.store_path, config.store_cache_mb << 20)?;
    let yubienterprise = fpr_yubienterprise::Client::new(
        config.yubienterprise.base_url.clone(),
        config.ye_token()?,
        config.upstream_timeout,
    )?;
    let entra = fpr_entra::Client::new(fpr_entra::Settings {
        login_base: config.entra.login_base.clone(),
        graph_base: config.entra.graph_base.clone(),
        tenant: config.entra.tenant.clone(),
        client_id: config.entra.client_id.clone(),
        client_secret: config.entra_secret()?,
        version: if config.entra.api_version == "v1.0" {
            fpr_entra::ApiVersion::V1
        } else {
            fpr_entra::ApiVersion::Beta
        },
        challenge_timeout_minutes: config.entra.challenge_timeout_minutes,
        timeout: config.upstream_timeout,
    })?;
    let okta = match &config.okta {
        Some(o) => Some((
            fpr_okta::Client::with_auth(o.base_url.clone(), o.auth()?, config.upstream_timeout)?,
            o.rp_ids(),
        )),
        None => None,
    };
    let wf = Arc::new(Workflow::new(
        shipments,
        workflow::vault::Vault::new(vault, config.vault_timeout),
        yubienterprise,
        entra,
        okta,
        workflow::Settings {
            retry: (
                config.retry.base.as_secs() as i64,
                config.retry.max.as_secs() as i64,
            ),
            reconcile_after: config
                .reconcile_after
                .max(config.upstream_timeout)
                .as_secs() as i64,
            display_name: config.key_display_name.clone(),
            okta_resend_pin_when_unknown: config
                .okta
                .as_ref()
                .is_some_and(|o| o.resend_pin_when_unknown),
            concurrency: config.jobs.process_concurrency,
            attestation: crate::attestation::Policy::load(&config.attestation)?,
            entra_challenge: (
                config.entra.challenge_timeout_minutes,
                config.entra.challenge_warning(),
            ),
            entra_expiry: config.entra.expiry_margin(),
        },
    ));
    let service =
        ShipmentService::new(wf, config.settings()).with_group_orders(config.group_orders.clone());
    fpr_upstream::set_max_body(config.max_response_bytes);
    if let Some(w) = config.entra.challenge_warning() {
        tracing::warn!("{w}");
    }
    if config.attestation.danger_unpinned_trust_anchors {
        tracing::warn!(
            "attestation.danger_unpinned_trust_anchors is on: configured trust anchors are not pinned"
        );
    }
    if config.auth.allowed_client_apps.is_empty() {
        tracing::warn!(
            "auth.danger_allow_any_client_app is on: any app of the issuer with a role may call"
        );
    }
    let verifier = Verifier::start(config.auth.clone()).await;
    let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
    let rest = match &config.rest {
        None => None,
        Some(r) => {
            let l = TcpListener::bind(&r.listen)
                .await
                .map_err(|e| Error::Config {
                    key: "rest.listen".into(),
                    reason: format!("bind {}: {e}", r.listen),
                })?;
            let tls = config
                .tls
                .as_ref()
                .map(crate::tls::rest_acceptor)
                .transpose()?;
            Some((l, r.clone(), tls))
        }
    };
    let metrics = match &config.metrics_listen {
        None => None,
        Some(addr) => {
            let l = TcpListener::bind(addr).await.map_err(|e| Error::Config {
                key: "metrics_listen".into(),
                reason: format!("bind {addr}: {e}"),
            })?;
            fpr_telemetry::install();
            let file = config.store_path.join("shipments.redb");
            let store = service.workflow().store().clone();
            fpr_telemetry::on_scrape(move || {
                metrics::gauge!("fpr_store_bytes", "store" => "orchestrator")
                    .set(fpr_telemetry::disk_bytes(&file) as f64);
                // 0 when nothing is ongoing, so an alert on its age never fires then.
                let oldest = store.oldest_ongoing_created_at().ok().flatten();
                metrics::gauge!("fpr_shipment_oldest_ongoing_created_seconds")
                    .set(oldest.map_or(0.0, |t| t as f64));
            });
            Some(l)
        }
    };
    let okta_event_hook = config
        .okta_event_hook
        .clone()
        .map(|h| crate::rest::okta_hook::routes(service.clone(), h))
        .transpose()?;
    Ok(ServerParts {
        service,
        verifier,
        tls,
        health_listen: config.health_listen.as_deref().and_then(|h| h.parse().ok()),
        rest,
        metrics,
        okta_event_hook,
    })
}

/// Serves on `listener` (with health and reflection outside auth) until `shutdown`.
pub async fn serve(
    built: ServerParts,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ShipmentServiceServer<ShipmentService>>()
        .await;
    // One shutdown for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    if let Some(addr) = built.health_listen {
        let l = TcpListener::bind(addr).await.map_err(|e| Error::Config {
            key: "health_listen".into(),
            reason: format!("bind {addr}: {e}"),
        })?;
        tracing::info!(listen = %addr, "Health (plaintext, no API) serving");
        let server = tonic::transport::Server::builder()
            .add_service(health_service.clone())
            .serve_with_incoming_shutdown(no_delay(l), stopped(stop_rx.clone()));
        tokio::spawn(server);
    }
    if let Some(l) = built.metrics {
        tracing::info!(listen = ?l.local_addr().ok(), "Metrics serving at /metrics");
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = fpr_telemetry::serve(l, stop).await {
                tracing::warn!(error = %e, "The metrics listener stopped");
            }
        });
    }
    if let Some((l, cfg, tls)) = built.rest {
        let addr = l.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(listen = %addr, "REST API (the connector's /v1) serving on {scheme}");
        let mut router = crate::rest::router(built.service.clone(), built.verifier.clone(), cfg);
        if let Some(hook) = built.okta_event_hook {
            tracing::info!(
                "Okta event hook serving at {}",
                crate::rest::okta_hook::PATH
            );
            router = router.merge(hook);
        }
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move {
            if let Err(e) = crate::rest::serve(l, router, tls, stop).await {
                tracing::warn!(error = %e, "The REST listener stopped");
            }
        });
    }
    let shutdown = stopped(stop_rx);
    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(fpr_proto::SHIPMENTS_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(|e| Error::Config {
            key: "reflection".into(),
            reason: e.to_string(),
        })?;
    let v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(|e| Error::Config {
            key: "reflection".into(),
            reason: e.to_string(),
        })?;
    let api = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(built.verifier))
        .service(ShipmentServiceServer::new(built.service));
    let router = tonic::transport::Server::builder()
        .trace_fn(fpr_telemetry::trace::rpc_span)
        .add_service(health_service)
        .add_service(v1)
        .add_service(v1alpha)
        .add_service(api);
    match built.tls {
        Some(acceptor) => {
            router
                .serve_with_incoming_shutdown(crate::tls::incoming(listener, acceptor), shutdown)
                .await?
        }
        None => {
            router
                .serve_with_incoming_shutdown(no_delay(listener), shutdown)
                .await?
        }
    }
    Ok(())
}

/// The connections `l` accepts, with Nagle's algorithm off: an answer goes out when written,
/// not after the client's delayed acknowledgement (40 ms on Linux) of the frame before it.
pub(crate) fn no_delay(
    l: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt as _;
    TcpListenerStream::new(l).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    })
}
