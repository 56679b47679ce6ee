//! Building and serving the vault: config → state → listener → gRPC server with health and
//! reflection outside the peer check.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use fpr_jose::seal::MasterKey;
use fpr_proto::vault::v1::vault_service_server::VaultServiceServer;
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tracing::{info, warn};

use crate::Error;
use crate::config::{Config, Listen};
use crate::delivery::{Channel, read_secret};
use crate::jwks::YubicoKeys;
use crate::keystore::KeyStore;
use crate::peer::PeerCheckLayer;
use crate::service::VaultService;

/// Reads the master key named by the config.
pub fn load_master_key(config: &Config) -> Result<MasterKey, Error> {
    master_key_from(
        "store.master_key_file",
        config.store.master_key_file.as_ref(),
        config.store.master_key_env.as_deref(),
    )
}

/// A master key from a file or a variable; `key` names the setting in errors.
fn master_key_from(
    key: &'static str,
    file: Option<&PathBuf>,
    env: Option<&str>,
) -> Result<MasterKey, Error> {
    let secret = read_secret(key, file, env)?;
    MasterKey::from_encoded(secrecy::ExposeSecret::expose_secret(&secret).as_bytes()).map_err(|e| {
        Error::Config {
            key: key.into(),
            reason: e.to_string(),
        }
    })
}

/// Opens the store, loads the master key and the Yubico keys, and builds the service. Starts
/// the JWKS refresh task.
pub async fn build(config: &Config) -> Result<VaultService, Error> {
    if config.danger.allow_plaintext_http {
        warn!("danger.allow_plaintext_http is on: JWKS and webhook URLs may be plain http");
    }
    if config.danger.allow_plaintext_smtp {
        warn!("danger.allow_plaintext_smtp is on: PINs may travel to the relay without TLS");
    }
    let master = load_master_key(config)?;
    let previous = match &config.store.previous_master_key_file {
        Some(p) => Some(master_key_from(
            "store.previous_master_key_file",
            Some(p),
            None,
        )?),
        None => None,
    };
    let keystore = KeyStore::open_with_previous(&config.store.path, master, previous)?;
    let keys = YubicoKeys::start(&config.yubico).await?;
    keys.spawn_refresh(config.yubico.refresh_interval);
    let channel = Channel::new(config.delivery.clone())?;
    let settings = config.settings().into_iter().collect();
    if config.danger.allow_any_recipient {
        warn!("danger.allow_any_recipient is on: PINs may go to any well-formed address");
    }
    let audit = crate::audit::AuditLog::open(&config.audit_path())?;
    info!(path = %audit.path().display(), "Audit log open");
    let guard = crate::service::Guard {
        recipients: crate::config::RecipientPolicy::of(config),
        max_resends: config.delivery.max_resends,
        resend_min_interval: config.delivery.resend_min_interval,
        audit,
        client_pins: config
            .server
            .tls
            .as_ref()
            .map(|t| t.allowed_client_sha256.clone())
            .unwrap_or_default(),
    };
    if config.server.metrics_listen.is_some() || fpr_telemetry::installed() {
        gauges_on_scrape(&keys, config.store.path.clone());
    }
    let service = VaultService::new(
        keystore,
        keys,
        channel,
        config.algorithms()?,
        settings,
        guard,
    );
    spawn_master_key_watch(service.downgrade(), config.clone());
    Ok(service)
}

/// Gauges read at each scrape: the age of each Yubico key set and the size of the key store.
fn gauges_on_scrape(keys: &YubicoKeys, store: std::path::PathBuf) {
    fpr_telemetry::install();
    let keys = keys.clone();
    fpr_telemetry::on_scrape(move || {
        let now = time::OffsetDateTime::now_utc();
        for kind in [crate::jwks::Kind::Transport, crate::jwks::Kind::Signing] {
            if let Some(at) = keys.current(kind).fetched_at {
                metrics::gauge!("fpr_vault_jwks_age_seconds", "set" => kind.name())
                    .set((now - at).as_seconds_f64());
            }
        }
        metrics::gauge!("fpr_store_bytes", "store" => "vault")
            .set(fpr_telemetry::disk_bytes(&store) as f64);
    });
}

/// Serves Prometheus metrics on `server.metrics_listen` until `shutdown`, when it is set; the
/// bound address.
pub async fn serve_metrics(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<std::net::SocketAddr>, Error> {
    let Some(addr) = &config.server.metrics_listen else {
        return Ok(None);
    };
    fpr_telemetry::spawn(addr, shutdown)
        .await
        .map(Some)
        .map_err(|e| Error::Config {
            key: "server.metrics_listen".into(),
            reason: format!("bind {addr}: {e}"),
        })
}

/// Rotation while serving: on SIGHUP, and every `store.master_key_check_interval`, the master
/// key is read again; when it is a new key, every stored key is re-sealed under it (one atomic
/// batch; seals and opens wait for it). A key that cannot be read is logged and the current
/// one kept.
fn spawn_master_key_watch(service: crate::service::WeakVaultService, config: Config) {
    tokio::spawn(async move {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let every = config.store.master_key_check_interval;
        loop {
            let tick = async {
                if every.is_zero() {
                    std::future::pending::<()>().await;
                } else {
                    tokio::time::sleep(every).await;
                }
            };
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = tick => {}
                () = hangup => info!("SIGHUP: reading the master key again"),
            }
            if service.upgrade().is_none() {
                return;
            }
            let key = match load_master_key(&config) {
                Ok(k) => k,
                Err(e) => {
                    warn!(error = %e, "Cannot read the master key: keeping the current one");
                    continue;
                }
            };
            let Some(svc) = service.upgrade() else {
                return;
            };
            match tokio::spawn(async move { svc.rotate_master_key(key).await }).await {
                Ok(Ok(Some((n, kcv)))) => {
                    info!(keys = n, check_value = %kcv, "Master key rotated: every stored key re-sealed under the new key");
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    warn!(error = %e, "Master key rotation failed: keeping the current key")
                }
                Err(e) => warn!(error = %e, "Master key rotation task failed"),
            }
        }
    });
}

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// A Unix socket, with its path (removed on drop of the server).
    Unix(UnixListener, PathBuf),
    /// A TCP socket and the TLS settings it requires.
    Tcp(TcpListener, ServerTlsConfig),
}

/// Binds the configured listener: a Unix socket in a 0700 directory, or TCP with mTLS.
pub async fn bind(config: &Config) -> Result<Listener, Error> {
    match config.listen()? {
        Listen::Unix(path) => bind_unix(&path).map(|l| Listener::Unix(l, path)),
        Listen::Tcp(addr) => {
            let tls = config.server.tls.as_ref().ok_or(Error::Config {
                key: "server.tls".into(),
                reason: "required for tcp".into(),
            })?;
            let read = |p: &Path, key: &str| {
                std::fs::read(p).map_err(|e| Error::Config {
                    key: key.into(),
                    reason: format!("{}: {}", p.display(), e.kind()),
                })
            };
            let tls_config = ServerTlsConfig::new()
                .identity(Identity::from_pem(
                    read(&tls.cert_file, "server.tls.cert_file")?,
                    read(&tls.key_file, "server.tls.key_file")?,
                ))
                .client_ca_root(Certificate::from_pem(read(
                    &tls.client_ca_file,
                    "server.tls.client_ca_file",
                )?))
                .client_auth_optional(false);
            let l = TcpListener::bind(addr).await.map_err(|source| Error::Io {
                what: format!("bind {addr}"),
                source,
            })?;
            Ok(Listener::Tcp(l, tls_config))
        }
    }
}

/// Binds a Unix socket at `path`, creating its directory with mode 0700 and replacing a stale
/// socket file.
pub fn bind_unix(path: &Path) -> Result<UnixListener, Error> {
    let io = |what: String| move |source| Error::Io { what, source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(format!("create {}", dir.display())))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("chmod {}", dir.display())))?;
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt as _;
        if meta.file_type().is_socket() {
            std::fs::remove_file(path).map_err(io(format!("remove stale {}", path.display())))?;
        } else {
            return Err(Error::Config {
                key: "server.listen".into(),
                reason: format!("{} exists and is not a socket", path.display()),
            });
        }
    }
    UnixListener::bind(path).map_err(io(format!("bind {}", path.display())))
}

/// The uids allowed on the Unix socket: the configured list, or else the vault's own uid (read
/// as the owner of the socket it just created, which needs no `unsafe` call).
pub fn allowed_uids(config: &Config, listener: &Listener) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt as _;
    if !config.server.allowed_uids.is_empty() {
        return config.server.allowed_uids.clone();
    }
    match listener {
        Listener::Unix(_, path) => std::fs::metadata(path)
            .map(|m| vec![m.uid()])
            .unwrap_or_default(),
        Listener::Tcp(..) => Vec::new(),
    }
}

/// One span per RPC, from the request line and headers only (never the body), continuing the
/// caller's trace when the call carries one.
fn rpc_span(req: &http::Request<()>) -> tracing::Span {
    fpr_telemetry::trace::rpc_span(req)
}

/// Serves `service` on `listener` until `shutdown` completes, then drains.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), fpr_vault::Error> {
/// use fpr_vault::{Config, config::Env, server};
/// let config = Config::load(Some("vault.toml".as_ref()), &Env)?;
/// let service = server::build(&config).await?;
/// let listener = server::bind(&config).await?;
/// let uids = server::allowed_uids(&config, &listener);
/// server::serve(service, listener, uids, std::future::pending()).await
/// # }
/// ```
pub async fn serve(
    service: VaultService,
    listener: Listener,
    allowed_uids: Vec<u32>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<VaultServiceServer<VaultService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fpr_proto::VAULT_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Config {
            key: "reflection".into(),
            reason: e.to_string(),
        })?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fpr_proto::VAULT_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Config {
            key: "reflection".into(),
            reason: e.to_string(),
        })?;
    let vault = tower::ServiceBuilder::new()
        .layer(PeerCheckLayer::new(allowed_uids, service.client_pins()))
        .service(VaultServiceServer::new(service));

    let shutdown = async move {
        shutdown.await;
        health
            .set_not_serving::<VaultServiceServer<VaultService>>()
            .await;
        info!("Shutting down");
    };
    match listener {
        Listener::Unix(l, path) => {
            info!(listen = %path.display(), "Vault serving on a Unix socket");
            let result = tonic::transport::Server::builder()
                .trace_fn(rpc_span)
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(vault)
                .serve_with_incoming_shutdown(UnixListenerStream::new(l), shutdown)
                .await;
            let _ = std::fs::remove_file(&path);
            result?;
        }
        Listener::Tcp(l, tls) => {
            info!(listen = ?l.local_addr().ok(), "Vault serving on TCP with mutual TLS");
            tonic::transport::Server::builder()
                .trace_fn(rpc_span)
                .tls_config(tls)?
                .add_service(health_service)
                .add_service(reflection_v1)
                .add_service(reflection_v1alpha)
                .add_service(vault)
                .serve_with_incoming_shutdown(
                    {
                        use tokio_stream::StreamExt as _;
                        // Nagle off: an answer goes out when written (see the orchestrator).
                        TcpListenerStream::new(l).map(|s| {
                            if let Ok(s) = &s {
                                let _ = s.set_nodelay(true);
                            }
                            s
                        })
                    },
                    shutdown,
                )
                .await?;
        }
    }
    Ok(())
}
