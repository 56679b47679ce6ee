//! The Unix-socket peer check: a tower layer that lets a call through only when the caller's
//! uid (from `SO_PEERCRED`) is on the allow-list, or when the call arrived over mutual TLS with a
//! pinned client certificate. Health and reflection are served outside this layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo, UdsConnectInfo};
use tower::{Layer, Service};

/// Who called, as the audit log records it: `uid:<n>` or `cert:<sha256 hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId(pub String);

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The Unix peer's uid is not on the allow-list.
    #[error("peer uid {0} is not allowed")]
    Uid(u32),
    /// The Unix peer's credentials could not be read.
    #[error("peer credentials unavailable")]
    NoCredentials,
    /// A TCP call without a verified client certificate.
    #[error("client certificate required")]
    NoClientCertificate,
    /// A client certificate that chains to the CA but is not one of the pinned ones.
    #[error("client certificate sha256:{0} is not pinned")]
    NotPinned(String),
}

/// Layer for [`PeerCheck`].
#[derive(Debug, Clone)]
pub struct PeerCheckLayer {
    allowed: Arc<[u32]>,
    pins: Arc<[String]>,
}

impl PeerCheckLayer {
    /// Allows the given uids, and TLS clients whose certificate's SHA-256 (hex) is in `pins`.
    pub fn new(allowed: Vec<u32>, pins: Vec<String>) -> Self {
        Self {
            allowed: allowed.into(),
            pins: pins.iter().map(|p| p.to_ascii_lowercase()).collect(),
        }
    }
}

impl<S> Layer<S> for PeerCheckLayer {
    type Service = PeerCheck<S>;
    fn layer(&self, inner: S) -> PeerCheck<S> {
        PeerCheck {
            inner,
            allowed: self.allowed.clone(),
            pins: self.pins.clone(),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct PeerCheck<S> {
    inner: S,
    allowed: Arc<[u32]>,
    pins: Arc<[String]>,
}

// === impl PeerCheck ===

impl<S> PeerCheck<S> {
    /// Allows the given uids and pinned client certificates in front of `inner`.
    pub fn layer(allowed: Vec<u32>, pins: Vec<String>) -> PeerCheckLayer {
        PeerCheckLayer::new(allowed, pins)
    }

    fn check<B>(&self, req: &http::Request<B>) -> Result<CallerId, Refused> {
        let ext = req.extensions();
        if let Some(uds) = ext.get::<UdsConnectInfo>() {
            let cred = uds.peer_cred.ok_or(Refused::NoCredentials)?;
            let uid = cred.uid();
            return if self.allowed.contains(&uid) {
                Ok(CallerId(format!("uid:{uid}")))
            } else {
                Err(Refused::Uid(uid))
            };
        }
        if let Some(tls) = ext.get::<TlsConnectInfo<TcpConnectInfo>>() {
            // rustls already refused handshakes without a certificate chaining to the client
            // CA; the leaf must also be one of the pinned certificates.
            let certs = tls.peer_certs().ok_or(Refused::NoClientCertificate)?;
            let leaf = certs.first().ok_or(Refused::NoClientCertificate)?;
            let fp: String = fpr_jose::util::sha256(leaf.as_ref())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            return if self.pins.contains(&fp) {
                Ok(CallerId(format!("cert:{fp}")))
            } else {
                Err(Refused::NotPinned(fp))
            };
        }
        Err(Refused::NoClientCertificate)
    }
}

impl<S: NamedService> NamedService for PeerCheck<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for PeerCheck<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.check(&req) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                Box::pin(self.inner.call(req))
            }
            Err(refused) => {
                tracing::warn!(reason = %refused, path = %req.uri().path(), "Caller refused");
                let status = tonic::Status::permission_denied(refused.to_string());
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
