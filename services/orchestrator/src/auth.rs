//! Inbound bearer-JWT checks as a tower layer: RS256 signature with the issuer's published keys
//! (cached, refreshed hourly and, at most once per `unknown_kid_refresh_interval`, on an unknown
//! kid), `iss`, `exp`, `nbf` and `iat` within `clock_skew`, an allowed `aud`, an allowed client
//! app (`azp`/`appid`), then the app role the called RPC needs (see [`required_role`]). Health
//! and reflection stay open. Every accepted call is logged with the caller's app and object id.
//!
//! A token once accepted is remembered, by its exact text, until it expires or the issuer's
//! keys are fetched again: a caller's next calls with it skip the RS256 check, which was most
//! of the CPU of a small call (a batch sends thousands with one token). Only what time changes,
//! `exp` and `nbf`, and the role the call needs are checked again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tonic::server::NamedService;
use tower::{Layer, Service};

use crate::config::AuthConfig;

/// May read shipments and the service status.
pub const ROLE_READ: &str = "Shipments.Read";
/// May order keys.
pub const ROLE_CREATE: &str = "Shipments.Create";
/// May change, cancel, retry, complete shipments, resend PINs and run the processing job; also
/// holds every other role.
pub const ROLE_ADMIN: &str = "Shipments.Admin";

const SERVICE_PREFIX: &str = "/fpr.v1.ShipmentService/";

/// The app role a gRPC path needs; None for paths outside ShipmentService (health,
/// reflection), which stay open. A ShipmentService method not listed here needs the admin role.
pub fn required_role(path: &str) -> Option<&'static str> {
    let method = path.strip_prefix(SERVICE_PREFIX)?;
    Some(match method {
        "GetStatus" | "GetShipment" | "ListShipments" | "WatchShipment" | "GetCatalog" => ROLE_READ,
        "CreateShipment" | "PlanGroupOrder" | "OrderGroup" => ROLE_CREATE,
        _ => ROLE_ADMIN,
    })
}

/// Who called: put in the request's extensions for the handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The client app id (`azp` or `appid`).
    pub app: String,
    /// The caller's object id (`oid`, else `sub`).
    pub oid: String,
    /// The app roles granted.
    pub roles: Vec<String>,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No valid token: UNAUTHENTICATED.
    Unauthenticated(String),
    /// A valid token without the needed role: PERMISSION_DENIED.
    Forbidden(String),
}

impl Refusal {
    fn status(&self) -> tonic::Status {
        match self {
            Self::Unauthenticated(m) => tonic::Status::unauthenticated(m.clone()),
            Self::Forbidden(m) => tonic::Status::permission_denied(m.clone()),
        }
    }
}

/// The key cache and rules.
pub struct Verifier {
    cfg: AuthConfig,
    keys: RwLock<HashMap<String, DecodingKey>>,
    http: reqwest::Client,
    /// When the last fetch for an unknown kid started; serialises those fetches.
    last_unknown_fetch: tokio::sync::Mutex<Option<Instant>>,
    fetches: AtomicU64,
    /// Tokens accepted since the keys were last fetched, by their text (see the module docs).
    accepted: Mutex<Accepted>,
    signature_checks: AtomicU64,
}

/// At most this many accepted tokens are remembered (expired ones go first, then all).
const MAX_ACCEPTED: usize = 1024;

/// The accepted tokens, and how many times the keys were replaced (an acceptance checked with
/// keys replaced meanwhile is not remembered).
#[derive(Default)]
struct Accepted {
    generation: u64,
    tokens: HashMap<String, Known>,
}

/// What an accepted token proved, and the times it is valid between.
struct Known {
    caller: Caller,
    exp: u64,
    nbf: Option<u64>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn claim_str(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl Verifier {
    /// Builds the verifier and loads the keys once (a failure leaves the cache empty: calls are
    /// refused until a refresh succeeds).
    pub async fn start(cfg: AuthConfig) -> Arc<Self> {
        let http = fpr_upstream::key_fetch_client(Duration::from_secs(10));
        let v = Arc::new(Self {
            cfg,
            keys: RwLock::new(HashMap::new()),
            http,
            last_unknown_fetch: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
            accepted: Mutex::new(Accepted::default()),
            signature_checks: AtomicU64::new(0),
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

    /// How many times the issuer's keys were fetched.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    async fn refresh(&self) -> Result<(), String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let body = fpr_upstream::fetch_capped(&self.http, self.cfg.jwks_url.clone())
            .await
            .map_err(|e| e.to_string())?;
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_slice(&body).map_err(|e| format!("issuer keys: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if let (Some(kid), Ok(k)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                keys.insert(kid, k);
            }
        }
        if let Ok(mut slot) = self.keys.write() {
            *slot = keys;
        }
        // A key may be gone: every token is checked again with the keys as they are now.
        let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        accepted.generation += 1;
        accepted.tokens.clear();
        Ok(())
    }

    /// How many token signatures were checked (tokens already accepted are not checked again).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok().and_then(|k| k.get(kid).cloned())
    }

    /// The key for `kid`, fetching the issuer's keys first when `kid` is unknown and no such
    /// fetch happened within the interval. Concurrent callers with unknown kids share one fetch.
    async fn key_for_unknown(&self, kid: &str) -> Option<DecodingKey> {
        let mut last = self.last_unknown_fetch.lock().await;
        if let Some(k) = self.key(kid) {
            return Some(k);
        }
        if last.is_some_and(|t| t.elapsed() < self.cfg.unknown_kid_refresh_interval) {
            return None;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "Issuer key refresh failed");
        }
        self.key(kid)
    }

    /// Checks a token and the role `needed`; the error says why (never echoing the token).
    pub async fn verify(&self, token: &str, needed: &str) -> Result<Caller, Refusal> {
        self.verify_at(token, needed, now()).await
    }

    async fn verify_at(&self, token: &str, needed: &str, now: u64) -> Result<Caller, Refusal> {
        let skew = self.cfg.clock_skew.as_secs();
        let known = {
            let accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
            accepted
                .tokens
                .get(token)
                .map(|k| (k.caller.clone(), k.exp, k.nbf))
        };
        let caller = match known {
            Some((caller, exp, nbf)) => {
                in_time(exp, nbf, now, skew)?;
                caller
            }
            None => self.check_signed(token, now).await?,
        };
        if !caller.roles.iter().any(|r| r == needed || r == ROLE_ADMIN) {
            return Err(Refusal::Forbidden(format!(
                "client app {:?} lacks the app role {needed} (claim {:?})",
                caller.app, self.cfg.roles_claim
            )));
        }
        Ok(caller)
    }

    /// Checks a token not seen yet (signature, claims and times) and remembers it if it passes.
    async fn check_signed(&self, token: &str, now: u64) -> Result<Caller, Refusal> {
        let unauth = |m: &str| Refusal::Unauthenticated(m.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| unauth("malformed token"))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauth("only RS256 tokens are accepted"));
        }
        let kid = header.kid.ok_or_else(|| unauth("token has no kid"))?;
        let generation = self
            .accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .generation;
        let key = match self.key(&kid) {
            Some(k) => k,
            None => self
                .key_for_unknown(&kid)
                .await
                .ok_or_else(|| unauth("token signed by an unknown key"))?,
        };
        let skew = self.cfg.clock_skew.as_secs();
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&self.cfg.allowed_audiences);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
        // exp and nbf are checked below, against the same clock as a remembered token's.
        v.validate_exp = false;
        v.validate_nbf = false;
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map_err(|e| Refusal::Unauthenticated(format!("token refused: {:?}", e.kind())))?;
        let claims = data.claims;
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| unauth("token refused: exp is not a number of seconds"))?;
        let nbf = match claims.get("nbf") {
            None => None,
            Some(n) => Some(
                n.as_u64()
                    .ok_or_else(|| unauth("token refused: nbf is not a number of seconds"))?,
            ),
        };
        in_time(exp, nbf, now, skew)?;
        let iat = claims.get("iat").and_then(Value::as_u64);
        if iat.is_none_or(|iat| iat > now + skew) {
            return Err(unauth("token refused: iat is missing or in the future"));
        }
        let app = claim_str(&claims, "azp")
            .or_else(|| claim_str(&claims, "appid"))
            .or_else(|| claim_str(&claims, "cid"))
            .unwrap_or_default();
        if !self.cfg.allowed_client_apps.is_empty() && !self.cfg.allowed_client_apps.contains(&app)
        {
            return Err(Refusal::Unauthenticated(format!(
                "client app {app:?} is not allowed"
            )));
        }
        let roles: Vec<String> = match claims.get(&self.cfg.roles_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let oid = claim_str(&claims, "oid")
            .or_else(|| claim_str(&claims, "sub"))
            .unwrap_or_default();
        let caller = Caller { app, oid, roles };
        let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        if accepted.generation == generation {
            if accepted.tokens.len() >= MAX_ACCEPTED {
                accepted
                    .tokens
                    .retain(|_, k| in_time(k.exp, k.nbf, now, skew).is_ok());
                if accepted.tokens.len() >= MAX_ACCEPTED {
                    accepted.tokens.clear();
                }
            }
            let known = Known {
                caller: caller.clone(),
                exp,
                nbf,
            };
            accepted.tokens.insert(token.to_owned(), known);
        }
        Ok(caller)
    }
}

/// Whether `now` is within a token's `nbf` and `exp`, give or take `skew` seconds.
fn in_time(exp: u64, nbf: Option<u64>, now: u64, skew: u64) -> Result<(), Refusal> {
    if exp.saturating_add(skew) < now {
        return Err(Refusal::Unauthenticated("token refused: expired".into()));
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(Refusal::Unauthenticated(
            "token refused: not valid yet (nbf)".into(),
        ));
    }
    Ok(())
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
        let Some(needed) = required_role(req.uri().path()) else {
            return Box::pin(inner.call(req));
        };
        Box::pin(async move {
            let mut req = req;
            let checked = match token {
                None => Err(Refusal::Unauthenticated("missing bearer token".into())),
                Some(t) => verifier.verify(&t, needed).await,
            };
            match checked {
                Err(refusal) => {
                    tracing::info!(reason = ?refusal, rpc = %req.uri().path(), "Caller refused");
                    Ok(refusal.status().into_http())
                }
                Ok(caller) => {
                    tracing::info!(caller.app = %caller.app, caller.oid = %caller.oid, rpc = %req.uri().path(), "Caller call");
                    req.extensions_mut().insert(caller);
                    inner.call(req).await
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
