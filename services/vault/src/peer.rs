//! The Unix-socket peer check: a tower layer that lets a call through only when the caller's
//! uid (from `SO_PEERCRED`) is on the allow-list, or when the call arrived over mutual TLS or
//! the in-process channel. Health and reflection are served outside this layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo, UdsConnectInfo};
use tower::{Layer, Service};

/// Marks a request that came over the in-process channel of `fpr up` (same process, same trust).
#[derive(Debug, Clone, Copy)]
pub struct InProcess;

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
}

/// Layer for [`PeerCheck`].
#[derive(Debug, Clone)]
pub struct PeerCheckLayer {
    allowed: Arc<[u32]>,
}

impl PeerCheckLayer {
    /// Allows the given uids.
    pub fn new(allowed: Vec<u32>) -> Self {
        Self {
            allowed: allowed.into(),
        }
    }
}

impl<S> Layer<S> for PeerCheckLayer {
    type Service = PeerCheck<S>;
    fn layer(&self, inner: S) -> PeerCheck<S> {
        PeerCheck {
            inner,
            allowed: self.allowed.clone(),
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct PeerCheck<S> {
    inner: S,
    allowed: Arc<[u32]>,
}

// === impl PeerCheck ===

impl<S> PeerCheck<S> {
    /// Allows the given uids in front of `inner`.
    pub fn layer(allowed: Vec<u32>) -> PeerCheckLayer {
        PeerCheckLayer::new(allowed)
    }

    fn check<B>(&self, req: &http::Request<B>) -> Result<(), Refused> {
        let ext = req.extensions();
        if ext.get::<InProcess>().is_some() {
            return Ok(());
        }
        if let Some(uds) = ext.get::<UdsConnectInfo>() {
            let cred = uds.peer_cred.ok_or(Refused::NoCredentials)?;
            let uid = cred.uid();
            return if self.allowed.contains(&uid) {
                Ok(())
            } else {
                Err(Refused::Uid(uid))
            };
        }
        if let Some(tls) = ext.get::<TlsConnectInfo<TcpConnectInfo>>() {
            // rustls already refused handshakes without a certificate chaining to the client CA.
            return if tls.peer_certs().is_some_and(|c| !c.is_empty()) {
                Ok(())
            } else {
                Err(Refused::NoClientCertificate)
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

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        match self.check(&req) {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(refused) => {
                tracing::warn!(reason = %refused, path = %req.uri().path(), "Caller refused");
                let status = tonic::Status::permission_denied(refused.to_string());
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
