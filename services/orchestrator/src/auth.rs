//! Inbound bearer-JWT checks as a tower layer: RS256 signature with the issuer's published keys
//! (cached, refreshed in the background and on an unknown kid), `iss`, `exp`/`nbf`, an allowed
//! `aud`, and an allowed client app (`azp`/`appid`). Health and reflection stay open.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tonic::server::NamedService;
use tower::{Layer, Service};

use crate::config::AuthConfig;

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    appid: Option<String>,
}

/// The key cache and rules.
pub struct Verifier {
    cfg: AuthConfig,
    keys: RwLock<HashMap<String, DecodingKey>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds the verifier and loads the keys once (a failure leaves the cache empty: calls are
    /// refused until a refresh succeeds).
    pub async fn start(cfg: AuthConfig) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let v = Arc::new(Self {
            cfg,
            keys: RwLock::new(HashMap::new()),
            http,
        });
        if let Err(e) = v.refresh().await {
            tracing::warn!(error = %e, "Issuer keys not loaded yet");
        }
        let bg = v.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                if let Err(e) = bg.refresh().await {
                    tracing::warn!(error = %e, "Issuer key refresh failed");
                }
            }
        });
        v
    }

    async fn refresh(&self) -> Result<(), String> {
        let set: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(self.cfg.jwks_url.clone())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?
            .json()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if let (Some(kid), Ok(k)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                keys.insert(kid, k);
            }
        }
        if let Ok(mut slot) = self.keys.write() {
            *slot = keys;
        }
        Ok(())
    }

    /// Checks a token; the error says why (never echoing the token).
    pub async fn verify(&self, token: &str) -> Result<(), String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "malformed token".to_owned())?;
        if header.alg != Algorithm::RS256 {
            return Err("only RS256 tokens are accepted".into());
        }
        let kid = header.kid.ok_or("token has no kid")?;
        let known = self
            .keys
            .read()
            .map(|k| k.contains_key(&kid))
            .unwrap_or(false);
        if !known {
            let _ = self.refresh().await;
        }
        let key = self
            .keys
            .read()
            .ok()
            .and_then(|k| k.get(&kid).cloned())
            .ok_or("token signed by an unknown key")?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&self.cfg.allowed_audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v)
            .map_err(|e| format!("token refused: {:?}", e.kind()))?;
        if !self.cfg.allowed_client_apps.is_empty() {
            let app = data.claims.azp.or(data.claims.appid).unwrap_or_default();
            if !self.cfg.allowed_client_apps.contains(&app) {
                return Err(format!("client app {app:?} is not allowed"));
            }
        }
        Ok(())
    }
}

/// Layer for [`Auth`].
#[derive(Clone, Debug)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
}

impl AuthLayer {
    /// Checks with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S: NamedService> NamedService for Auth<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Auth<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let verifier = self.verifier.clone();
        // Take the ready service and leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let refused = match token {
                None => Some("missing bearer token".to_owned()),
                Some(t) => verifier.verify(&t).await.err(),
            };
            match refused {
                Some(reason) => {
                    tracing::info!(%reason, path = %req.uri().path(), "Caller refused");
                    Ok(tonic::Status::unauthenticated(reason).into_http())
                }
                None => inner.call(req).await,
            }
        })
    }
}
