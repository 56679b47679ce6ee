//! A gRPC client of the orchestrator: address, TLS, bearer token, readable errors.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fpr_proto::v1::shipment_service_client::ShipmentServiceClient;
use secrecy::{ExposeSecret as _, SecretString};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// The token file `fpr up` writes and refreshes (mode 0600).
pub const UP_TOKEN_FILE: &str = "./fpr-data/caller-token";

/// Where the orchestrator is and how to call it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` or `https://host:port`.
    pub addr: String,
    /// PEM CA for https (default: the system's web PKI roots are not bundled; give the CA).
    pub ca_file: Option<PathBuf>,
    /// Bearer token file.
    pub token_file: Option<PathBuf>,
}

/// Adds `authorization: Bearer …` to every call.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// The client type.
pub type Client = ShipmentServiceClient<InterceptedService<Channel, Bearer>>;

/// The caller token: `--token-file`/`FPR_TOKEN_FILE`, else `FPR_TOKEN`, else `TOKEN` when it
/// holds a JWT (what `fpr up` prints), else the file `fpr up` keeps fresh. None: calls go
/// without one (health and reflection only).
pub fn token(file: Option<&Path>) -> anyhow::Result<Option<SecretString>> {
    let read = |p: &Path| -> anyhow::Result<SecretString> {
        let t = std::fs::read_to_string(p)
            .with_context(|| format!("reading the token file {}", p.display()))?;
        Ok(SecretString::from(t.trim().to_owned()))
    };
    if let Some(p) = file {
        return read(p).map(Some);
    }
    if let Ok(t) = std::env::var("FPR_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(Some(SecretString::from(t.trim().to_owned())));
    }
    // `TOKEN` is what `fpr up` prints for grpcurl; the name is common, so only a JWT is taken
    // from it (not, say, a CI system's token).
    if let Ok(t) = std::env::var("TOKEN")
        && looks_like_jwt(t.trim())
    {
        return Ok(Some(SecretString::from(t.trim().to_owned())));
    }
    let up = Path::new(UP_TOKEN_FILE);
    if up.exists() {
        return read(up).map(Some);
    }
    Ok(None)
}

fn looks_like_jwt(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    t.starts_with("eyJ")
        && parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A channel to `addr` (lazy: the first call connects).
pub fn channel(target: &Target) -> anyhow::Result<Channel> {
    // A bare host:port means plain http (as grpcurl -plaintext).
    let addr = if target.addr.contains("://") {
        target.addr.clone()
    } else {
        format!("http://{}", target.addr)
    };
    let mut ep = Endpoint::from_shared(addr.clone())
        .with_context(|| {
            format!(
                "--addr {:?}: not a URL like http://127.0.0.1:7400",
                target.addr
            )
        })?
        .connect_timeout(std::time::Duration::from_secs(5))
        .tcp_nodelay(true);
    if addr.starts_with("https://") {
        let ca = target
            .ca_file
            .as_ref()
            .context("--addr https://… needs --ca-file (PEM of the CA that signed the orchestrator's certificate)")?;
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        ep = ep.tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))?;
    }
    Ok(ep.connect_lazy())
}

/// A ShipmentService client with the caller token from [`token`].
pub fn connect(target: &Target) -> anyhow::Result<Client> {
    match token(target.token_file.as_deref())? {
        Some(t) => with_token(target, t.expose_secret()),
        None => Ok(ShipmentServiceClient::with_interceptor(
            channel(target)?,
            Bearer(None),
        )),
    }
}

/// A ShipmentService client with this token.
pub fn with_token(target: &Target, token: &str) -> anyhow::Result<Client> {
    let header = format!("Bearer {token}")
        .parse()
        .context("the token has characters a header cannot carry")?;
    Ok(ShipmentServiceClient::with_interceptor(
        channel(target)?,
        Bearer(Some(header)),
    ))
}

/// Field violations of an INVALID_ARGUMENT, as (field, rule).
pub fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    use tonic_types::StatusExt as _;
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// A gRPC error for people: code, message, and each field violation on its own line.
pub fn describe(status: &tonic::Status) -> String {
    let mut s = format!("{:?}: {}", status.code(), status.message());
    if status.code() == tonic::Code::Unauthenticated {
        s.push_str(
            "\n  (set FPR_TOKEN or TOKEN, or --token-file; `fpr up` prints one and keeps ./fpr-data/caller-token fresh)",
        );
    }
    if status.code() == tonic::Code::Unavailable {
        s.push_str("\n  (is the orchestrator running at --addr / FPR_ADDR?)");
    }
    for (field, rule) in violations(status) {
        s.push_str(&format!("\n  {field}: {rule}"));
    }
    s
}

/// True for errors a retry with the same idempotency key may fix.
pub fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::DeadlineExceeded
    )
}

/// CreateShipment, retried with the same idempotency key while the error is transient.
pub async fn create(
    client: &Client,
    req: fpr_proto::v1::CreateShipmentRequest,
) -> Result<fpr_proto::v1::CreateShipmentResponse, tonic::Status> {
    with_retries(|| {
        let mut c = client.clone();
        let req = req.clone();
        async move {
            c.create_shipment(req)
                .await
                .map(tonic::Response::into_inner)
        }
    })
    .await
}

/// Calls `f` up to 6 times while it fails with a retryable error (0.2 s, 0.8 s, 3.2 s, then
/// 10 s apart: long enough for an upstream's rate-limit window to pass).
pub async fn with_retries<T, F, Fut>(mut f: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut delay = std::time::Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if retryable(&e) && attempt < 6 => {
                tokio::time::sleep(delay).await;
                delay = (delay * 4).min(std::time::Duration::from_secs(10));
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_jwt_is_taken_from_token() {
        assert!(super::looks_like_jwt(
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_x"
        ));
        assert!(!super::looks_like_jwt("ghp_0123456789abcdef"));
        assert!(!super::looks_like_jwt("eyJ.x"));
        assert!(!super::looks_like_jwt("eyJa.b c.d"));
    }
}
