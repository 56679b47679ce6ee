//! TLS for the orchestrator's gRPC listener (rustls on aws-lc-rs): the certificate chain and
//! key are read from files and read again when either file changes (checked at each
//! handshake, a `stat` each), so a renewed certificate is served without a restart. A renewal
//! that does not load keeps the current certificate and logs why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;

use crate::Error;

/// `[tls]` in the orchestrator's config.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (leaf first).
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub key_file: PathBuf,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

fn stamp(c: &TlsConfig) -> Stamp {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&c.cert_file), m(&c.key_file))
}

fn load(c: &TlsConfig) -> Result<Arc<CertifiedKey>, String> {
    let certs = CertificateDer::pem_file_iter(&c.cert_file)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", c.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", c.cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&c.key_file)
        .map_err(|e| format!("{}: {e}", c.key_file.display()))?;
    let signing = aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("{}: {e}", c.key_file.display()))?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match()
        .map_err(|e| format!("the key does not match the certificate: {e}"))?;
    Ok(Arc::new(ck))
}

/// Serves the certificate in force, loading the files again when they change.
#[derive(Debug)]
struct Reloading {
    cfg: TlsConfig,
    current: RwLock<(Stamp, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let now = stamp(&self.cfg);
        let (seen, key) = self.current.read().ok()?.clone();
        if now == seen {
            return Some(key);
        }
        match load(&self.cfg) {
            Ok(k) => {
                tracing::info!(cert = %self.cfg.cert_file.display(), "TLS certificate reloaded");
                if let Ok(mut slot) = self.current.write() {
                    *slot = (now, k.clone());
                }
                Some(k)
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate changed but does not load; serving the previous one");
                if let Ok(mut slot) = self.current.write() {
                    slot.0 = now;
                }
                Some(key)
            }
        }
    }
}

/// The acceptor for `cfg`, for gRPC (the files are read now: a bad one fails the start).
pub fn acceptor(cfg: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, Error> {
    acceptor_alpn(cfg, b"h2")
}

/// The acceptor for `cfg`, for the REST API (HTTP/1.1).
pub fn rest_acceptor(cfg: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, Error> {
    acceptor_alpn(cfg, b"http/1.1")
}

fn acceptor_alpn(cfg: &TlsConfig, alpn: &[u8]) -> Result<tokio_rustls::TlsAcceptor, Error> {
    let bad = |reason: String| Error::Config {
        key: "tls".into(),
        reason,
    };
    let first = load(cfg).map_err(bad)?;
    let resolver = Reloading {
        cfg: cfg.clone(),
        current: RwLock::new((stamp(cfg), first)),
    };
    let mut sc =
        rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
    sc.alpn_protocols = vec![alpn.to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(sc)))
}

/// TLS connections accepted on `listener`: each handshake runs on its own task (10 s at most),
/// so a slow or failed one never holds up the others. Ends when the returned stream is dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) -> ReceiverStream<std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = tx.closed() => return,
            };
            let Ok((tcp, peer)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
