//! A thin Okta client for FIDO2 preregistration (docs/design/upstream-apis.md §3): the Users API for
//! shipping data, the Groups API for groups' members, and `enroll`, `activate`, `send-pin`, delete and `mark-error` of the
//! WebAuthn preregistration API. SSWS auth; the token is read at each call. A 429 is reported
//! as transient with the wait from `X-Rate-Limit-Reset` (or `Retry-After`), which the
//! orchestrator honours before it calls again.
//!
//! fpr never holds an Okta PIN: Okta decrypts the PIN response and e-mails the PIN itself.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use fpr_upstream::{Error, SecretSource, json, seg, send};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use url::Url;

mod groups;
mod search;

pub use groups::Group;
pub use search::MAX_SEARCH;

const UP: &str = "okta";
const PRE: &str = "/webauthn-registration/api/v1";

/// An Okta user: id, status and the profile attributes fpr reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `00u…` id.
    pub id: String,
    /// `ACTIVE`, `STAGED`, …
    pub status: String,
    /// Profile attributes that are strings (firstName, streetAddress, …).
    pub profile: BTreeMap<String, String>,
}

/// A user from the Users or Groups API.
fn user_of(v: &Value) -> Result<User, Error> {
    let profile = v
        .get("profile")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(User {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .ok_or(Error::Malformed {
                upstream: UP,
                reason: "user without id".into(),
            })?
            .to_owned(),
        status: v
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        profile,
    })
}

/// What `enroll` returns for one RP id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// `authenticatorEnrollmentId`.
    pub id: String,
    /// Okta's credential request JWE (to the Yubico transport key).
    pub cred_request_jwe: String,
    /// Okta's PIN request JWE.
    pub pin_request_jwe: String,
}

/// A preregistration factor as `GET /users/{userId}/enrollments` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    /// The `authenticatorEnrollmentId`.
    pub id: String,
    /// `ACTIVE`, `PENDING_ACTIVATION`, `FULFILLMENT_ERRORED`, …
    pub status: String,
    /// `created`, unix seconds, when readable.
    pub created: Option<i64>,
}

/// How the client authenticates to Okta.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: SSWS {token}`.
    Ssws(SecretSource),
    /// An OAuth 2.0 service app: client credentials with a `private_key_jwt` assertion,
    /// scope `okta.users.manage`; the access token is cached until a minute before expiry.
    PrivateKeyJwt {
        /// The service app's client id.
        client_id: String,
        /// PEM private key (PKCS#8 EC P-256 or RSA), read at each token request.
        key: SecretSource,
        /// The key's `kid` as registered with the app.
        key_id: String,
    },
}

/// The client.
///
/// # Example
///
/// ```no_run
/// # async fn f() -> Result<(), fpr_upstream::Error> {
/// let okta = fpr_okta::Client::new("https://example.okta.com".parse().unwrap(), fpr_upstream::SecretSource::Env("OKTA_TOKEN".into()), std::time::Duration::from_secs(30))?;
/// let p = okta.user("ada@example.com").await?;
/// println!("{}", p.id);
/// # Ok(()) }
/// ```
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    token: TokenSlot,
    /// OAuth: a token for the Groups API, asked for apart (scope `okta.groups.read`), so that
    /// an app not granted that scope still orders; only group orders need it.
    groups_token: TokenSlot,
    /// Okta's rate limit, as its answers announce it.
    pacer: fpr_upstream::Pacer,
}

/// A cached OAuth access token and when to ask for a new one.
type TokenSlot = tokio::sync::Mutex<Option<(secrecy::SecretString, std::time::Instant)>>;

/// The scopes of the token for everything but groups.
const USER_SCOPES: &str = "okta.users.manage okta.users.read";
/// The scope of the token for the Groups API.
const GROUP_SCOPES: &str = "okta.groups.read";

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

// === impl Client ===

impl Client {
    /// A client for the org at `base` (`https://{yourOktaDomain}`) with an SSWS token.
    pub fn new(base: Url, token: SecretSource, timeout: Duration) -> Result<Self, Error> {
        Self::with_auth(base, Auth::Ssws(token), timeout)
    }

    /// A client with the given authentication.
    pub fn with_auth(base: Url, auth: Auth, timeout: Duration) -> Result<Self, Error> {
        Ok(Self {
            http: fpr_upstream::http_client(timeout)?,
            base,
            auth,
            token: TokenSlot::default(),
            groups_token: TokenSlot::default(),
            pacer: fpr_upstream::Pacer::default(),
        })
    }

    /// The `Authorization` header value.
    async fn authorization(&self) -> Result<String, Error> {
        self.authorization_for(USER_SCOPES, &self.token).await
    }

    /// The `Authorization` header value, for an OAuth app with a token of `scopes` cached in
    /// `slot`.
    async fn authorization_for(&self, scopes: &str, slot: &TokenSlot) -> Result<String, Error> {
        let (client_id, key, key_id) = match &self.auth {
            Auth::Ssws(t) => return Ok(format!("SSWS {}", t.read("okta.token")?.expose_secret())),
            Auth::PrivateKeyJwt {
                client_id,
                key,
                key_id,
            } => (client_id, key, key_id),
        };
        let mut slot = slot.lock().await;
        if let Some((t, _)) = slot
            .as_ref()
            .filter(|(_, until)| *until > std::time::Instant::now())
        {
            return Ok(format!("Bearer {}", t.expose_secret()));
        }
        let token_url = self.url("/oauth2/v1/token");
        let assertion = assertion(
            client_id,
            &key.read("okta.private_key")?,
            key_id,
            &token_url,
        )?;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", scopes),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let (_, body) = send(
            "okta-oauth",
            "POST /oauth2/v1/token",
            self.http.post(token_url).form(&form),
        )
        .await?;
        let v: Value = json("okta-oauth", &body)?;
        let t = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or(Error::Malformed {
                upstream: "okta-oauth",
                reason: "no access_token".into(),
            })?;
        let ttl = v
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600)
            .saturating_sub(60);
        let value = secrecy::SecretString::from(t.to_owned());
        *slot = Some((
            value.clone(),
            std::time::Instant::now() + Duration::from_secs(ttl),
        ));
        Ok(format!("Bearer {}", value.expose_secret()))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    async fn auth(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, Error> {
        Ok(req
            .header("authorization", self.authorization().await?)
            .header("accept", "application/json"))
    }

    /// Waits until the org's rate limit would let a call go now, taking nothing from it: a
    /// caller that gathers several look-ups into one call waits here first, and gathers
    /// what arrived meanwhile.
    pub async fn ready(&self) {
        self.pacer.ready().await;
    }

    /// Sends a request to the org, within its rate limit.
    async fn send(
        &self,
        route: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<(u16, Vec<u8>), Error> {
        fpr_upstream::send_paced(Some(&self.pacer), UP, route, req)
            .await
            .map(|(status, body, _)| (status, body))
    }

    async fn post(&self, route: &'static str, path: &str, body: &Value) -> Result<Vec<u8>, Error> {
        self.send(
            route,
            self.auth(self.http.post(self.url(path)).json(body)).await?,
        )
        .await
        .map(|(_, b)| b)
    }

    /// `GET /api/v1/users/{id|login}`.
    pub async fn user(&self, id: &str) -> Result<User, Error> {
        let enc = fpr_upstream::seg(id);
        let (_, b) = self
            .send(
                "GET /api/v1/users/{id}",
                self.auth(self.http.get(self.url(&format!("/api/v1/users/{enc}"))))
                    .await?,
            )
            .await?;
        user_of(&json(UP, &b)?)
    }

    /// `POST /enroll` with one Yubico transport JWK; returns the first enrollment (one per RP id).
    pub async fn enroll(
        &self,
        user_id: &str,
        rp_ids: &[String],
        transport_jwk: &Value,
    ) -> Result<Enrollment, Error> {
        let body = json!({"enrollmentRpIds": rp_ids, "fulfillmentProvider": "yubico", "userId": user_id, "yubicoTransportKeyJWK": transport_jwk});
        let v: Value = json(
            UP,
            &self
                .post(
                    "POST /webauthn-registration/api/v1/enroll",
                    &format!("{PRE}/enroll"),
                    &body,
                )
                .await?,
        )?;
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        Ok(Enrollment {
            id: s("/credRequests/0/authenticatorEnrollmentId").ok_or(Error::Malformed {
                upstream: UP,
                reason: "no enrollment id".into(),
            })?,
            cred_request_jwe: s("/credRequests/0/credRequestJwe").ok_or(Error::Malformed {
                upstream: UP,
                reason: "no credRequestJwe".into(),
            })?,
            pin_request_jwe: s("/pinRequestJwe").ok_or(Error::Malformed {
                upstream: UP,
                reason: "no pinRequestJwe".into(),
            })?,
        })
    }

    /// `POST /activate` with YubiEnterprise's product data and the pinned Yubico signing keys.
    #[allow(clippy::too_many_arguments)]
    pub async fn activate(
        &self,
        user_id: &str,
        enrollment_id: &str,
        serial: &str,
        version: &str,
        cred_response_jwe: &str,
        pin_response_jwe: &str,
        signing_keys: &[Value],
    ) -> Result<(), Error> {
        let body = json!({
            "credResponses": [{"authenticatorEnrollmentId": enrollment_id, "credResponseJwe": cred_response_jwe}],
            "fulfillmentProvider": "yubico", "pinResponseJwe": pin_response_jwe, "serial": serial, "userId": user_id,
            "version": version, "yubicoSigningJwks": signing_keys,
        });
        self.post(
            "POST /webauthn-registration/api/v1/activate",
            &format!("{PRE}/activate"),
            &body,
        )
        .await
        .map(|_| ())
    }

    /// `POST /send-pin`: Okta e-mails the PIN (again, on repeat calls).
    pub async fn send_pin(&self, user_id: &str, enrollment_id: &str) -> Result<(), Error> {
        let body = json!({"authenticatorEnrollmentId": enrollment_id, "fulfillmentProvider": "yubico", "userId": user_id});
        self.post(
            "POST /webauthn-registration/api/v1/send-pin",
            &format!("{PRE}/send-pin"),
            &body,
        )
        .await
        .map(|_| ())
    }

    /// `GET /users/{userId}/enrollments`: the user's preregistration factors. Status strings
    /// outside Okta's enum (`FULFILLMENT_ERRORED`) are kept as they are.
    pub async fn enrollments(&self, user_id: &str) -> Result<Vec<Factor>, Error> {
        let (_, b) = self
            .send(
                "GET /webauthn-registration/api/v1/users/{id}/enrollments",
                self.auth(
                    self.http
                        .get(self.url(&format!("{PRE}/users/{}/enrollments", seg(user_id)))),
                )
                .await?,
            )
            .await?;
        let v: Vec<Value> = json(UP, &b)?;
        Ok(v.iter()
            .map(|e| {
                let s = |k: &str| {
                    e.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                Factor {
                    id: s("id"),
                    status: s("status"),
                    created: time::OffsetDateTime::parse(
                        &s("created"),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .ok()
                    .map(time::OffsetDateTime::unix_timestamp),
                }
            })
            .collect())
    }

    /// Deletes an enrollment (404 counts as done).
    pub async fn delete_enrollment(&self, user_id: &str, enrollment_id: &str) -> Result<(), Error> {
        match self
            .send(
                "DELETE /webauthn-registration/api/v1/users/{id}/enrollments/{id}",
                self.auth(self.http.delete(self.url(&format!(
                    "{PRE}/users/{}/enrollments/{}",
                    seg(user_id),
                    seg(enrollment_id)
                ))))
                .await?,
            )
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Marks an enrollment's fulfilment as failed.
    pub async fn mark_error(&self, user_id: &str, enrollment_id: &str) -> Result<(), Error> {
        self.send(
            "POST /webauthn-registration/api/v1/users/{id}/enrollments/{id}/mark-error",
            self.auth(self.http.post(self.url(&format!(
                "{PRE}/users/{}/enrollments/{}/mark-error",
                seg(user_id),
                seg(enrollment_id)
            ))))
            .await?,
        )
        .await
        .map(|_| ())
    }
}

/// A `private_key_jwt` client assertion: `iss` = `sub` = client id, `aud` = the token URL,
/// five minutes of validity, a unique `jti`; ES256 for an EC key, RS256 for an RSA key.
fn assertion(
    client_id: &str,
    pem: &secrecy::SecretString,
    key_id: &str,
    aud: &str,
) -> Result<String, Error> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    static JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let bad = |r: &str| Error::Secret {
        name: "okta.private_key",
        reason: r.into(),
    };
    let pem = pem.expose_secret().as_bytes();
    let (alg, key) = match EncodingKey::from_ec_pem(pem) {
        Ok(k) => (Algorithm::ES256, k),
        Err(_) => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem)
                .map_err(|_| bad("not an EC P-256 or RSA PEM private key"))?,
        ),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let jti = format!(
        "{now:x}-{:x}-{}",
        std::process::id(),
        JTI.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let claims = json!({"iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 300, "jti": jti});
    let mut header = Header::new(alg);
    header.kid = Some(key_id.to_owned());
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|_| bad("signing the client assertion failed"))
}
