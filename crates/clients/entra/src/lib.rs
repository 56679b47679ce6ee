//! A thin Microsoft Entra ID / Graph client for FIDO2 pre-registration: app tokens by client
//! credentials (cached until near expiry), users and managers, `creationOptions` (beta with a
//! challenge timeout, or v1.0), FIDO2 methods (list, register), and groups' members. See
//! `docs/decisions/0004-graph-client.md` for why fpr has its own client.
//!
//! It never logs tokens, secrets or bodies; the client secret is read at each token request.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use fpr_upstream::{Error, SecretSource, json, send};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use url::Url;

mod groups;

pub use groups::{Group, MEMBER_SELECT, Member, has_key_of};

const UP: &str = "graph";

/// Which Graph version serves creationOptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `beta`, with `challengeTimeoutInMinutes` (5–43,200).
    Beta,
    /// `v1.0`, fixed 5-minute challenges.
    V1,
}

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://login.microsoftonline.com` (or the sandbox).
    pub login_base: Url,
    /// `https://graph.microsoft.com` (or the sandbox).
    pub graph_base: Url,
    /// Tenant id or domain.
    pub tenant: String,
    /// App (client) id.
    pub client_id: String,
    /// Client secret source.
    pub client_secret: SecretSource,
    /// Version for creationOptions.
    pub version: ApiVersion,
    /// Challenge timeout for beta (`ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES`).
    pub challenge_timeout_minutes: u32,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// A Graph user (the fields fpr reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Object id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Primary mail, if any.
    pub mail: Option<String>,
    /// UPN.
    pub upn: String,
    /// Other mails.
    pub other_mails: Vec<String>,
}

impl User {
    /// Where mail to this user goes: `mail`, else the first of `otherMails` (UPNs are not
    /// necessarily mailboxes, so they are not used).
    pub fn mail_address(&self) -> Option<&str> {
        self.mail
            .as_deref()
            .filter(|m| !m.is_empty())
            .or_else(|| self.other_mails.first().map(String::as_str))
    }
}

/// A registered FIDO2 method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Method id.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// AAGUID.
    pub aaguid: String,
    /// `attested` or `notAttested`.
    pub attestation_level: String,
}

struct Token {
    value: SecretString,
    refresh_at: Instant,
}

/// Creation options for one user: the `publicKey` to seal, and when its challenge expires.
#[derive(Debug, Clone, PartialEq)]
pub struct CreationOptions {
    /// `publicKey`, as Graph returned it (`@odata.*` removed).
    pub public_key: Value,
    /// `challengeTimeoutDateTime` as unix seconds, when Graph gave a readable one. A key
    /// programmed with this challenge cannot be registered after it.
    pub expires_at: Option<i64>,
}

/// The client.
pub struct Client {
    http: reqwest::Client,
    s: Settings,
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("tenant", &self.s.tenant)
            .field("client_id", &self.s.client_id)
            .finish_non_exhaustive()
    }
}

/// Decodes a Graph challenge or id in any of its three encodings (docs/design/upstream-apis.md §2.5):
/// standard base64 (has `+`, `/` or `=`), base64url with a trailing padding-count digit, or plain
/// unpadded base64url. `beta` resolves the ambiguous lengths toward the digit-suffix form.
///
/// # Example
///
/// ```
/// // Graph mixes three encodings of challenges and ids (docs/design/upstream-apis.md §2.5).
/// assert_eq!(fpr_entra::decode_graph_b64("AQID", false), Some(vec![1, 2, 3]));
/// assert_eq!(fpr_entra::decode_graph_b64("AQI=", false), Some(vec![1, 2]));
/// assert_eq!(fpr_entra::decode_graph_b64("AQI1", true), Some(vec![1, 2]));
/// ```
pub fn decode_graph_b64(s: &str, beta: bool) -> Option<Vec<u8>> {
    if s.contains(['+', '/', '=']) {
        return STANDARD.decode(s).ok();
    }
    let suffix = |digit: u8| {
        let body = &s[..s.len() - 1];
        let padded = format!("{body}{}", "=".repeat(digit as usize));
        URL_SAFE.decode(padded).ok()
    };
    let last = s.as_bytes().last().copied().unwrap_or(b'x');
    match (s.len() % 4, last) {
        (1, b'0') => suffix(0),
        (0, b'1') | (3, b'2') if beta => {
            suffix(last - b'0').or_else(|| URL_SAFE_NO_PAD.decode(s).ok())
        }
        _ => URL_SAFE_NO_PAD.decode(s).ok(),
    }
}

fn strip_odata(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with("@odata"));
            m.values_mut().for_each(strip_odata);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_odata),
        _ => {}
    }
}

fn user_of(v: &Value) -> Result<User, Error> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(User {
        id: s("id").ok_or(Error::Malformed {
            upstream: UP,
            reason: "user without id".into(),
        })?,
        display_name: s("displayName").unwrap_or_default(),
        mail: s("mail"),
        upn: s("userPrincipalName").unwrap_or_default(),
        other_mails: v
            .get("otherMails")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Escapes a user id or UPN for a Graph path (UPNs starting with `$` use the key form).
fn user_path(id: &str) -> String {
    let enc = fpr_upstream::seg(id);
    if id.starts_with('$') {
        format!("('{enc}')")
    } else {
        format!("/{enc}")
    }
}

// === impl Client ===

impl Client {
    /// A client with these settings.
    pub fn new(settings: Settings) -> Result<Self, Error> {
        Ok(Self {
            http: fpr_upstream::http_client(settings.timeout)?,
            s: settings,
            token: Mutex::new(None),
        })
    }

    fn version(&self) -> &'static str {
        match self.s.version {
            ApiVersion::Beta => "beta",
            ApiVersion::V1 => "v1.0",
        }
    }

    fn graph_url(&self, version: &str, path: &str) -> String {
        format!(
            "{}/{version}{path}",
            self.s.graph_base.as_str().trim_end_matches('/')
        )
    }

    /// An app token, from the cache while it has more than five minutes left.
    async fn token(&self) -> Result<SecretString, Error> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.refresh_at > Instant::now()) {
            return Ok(t.value.clone());
        }
        let secret = self.s.client_secret.read("entra.client_secret")?;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.s.login_base.as_str().trim_end_matches('/'),
            self.s.tenant
        );
        let form = [
            ("client_id", self.s.client_id.as_str()),
            ("client_secret", secret.expose_secret()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ];
        let (_, body) = send(
            "entra-login",
            "POST /{tenant}/oauth2/v2.0/token",
            self.http.post(url).form(&form),
        )
        .await?;
        let v: Value = json("entra-login", &body)?;
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or(Error::Malformed {
                upstream: "entra-login",
                reason: "no access_token".into(),
            })?;
        let expires_in = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3599);
        let value = SecretString::from(token.to_owned());
        *slot = Some(Token {
            value: value.clone(),
            refresh_at: Instant::now() + Duration::from_secs(expires_in.saturating_sub(300)),
        });
        Ok(value)
    }

    async fn get(&self, route: &'static str, version: &str, path: &str) -> Result<Value, Error> {
        let token = self.token().await?;
        let (_, body) = send(
            UP,
            route,
            self.http
                .get(self.graph_url(version, path))
                .bearer_auth(token.expose_secret()),
        )
        .await?;
        json(UP, &body)
    }

    /// Checks that a token can be had and Graph answers (for GetStatus).
    pub async fn ping(&self) -> Result<(), Error> {
        self.token().await.map(|_| ())
    }

    /// `GET /users/{id|upn}?$select=…`.
    pub async fn user(&self, id: &str) -> Result<User, Error> {
        let v = self
            .get(
                "GET /users/{id}",
                "v1.0",
                &format!(
                    "/users{}?$select=id,displayName,mail,userPrincipalName,otherMails",
                    user_path(id)
                ),
            )
            .await?;
        user_of(&v)
    }

    /// The user's manager; `None` when the user has none.
    pub async fn manager(&self, id: &str) -> Result<Option<User>, Error> {
        match self
            .get(
                "GET /users/{id}/manager",
                "v1.0",
                &format!(
                    "/users{}/manager?$select=id,displayName,mail,userPrincipalName,otherMails",
                    user_path(id)
                ),
            )
            .await
        {
            Ok(v) => user_of(&v).map(Some),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The `publicKey` creation options for `user_id`, `@odata` annotations removed, otherwise
    /// exactly as Graph returned them.
    pub async fn creation_options(&self, user_id: &str) -> Result<CreationOptions, Error> {
        let path = match self.s.version {
            ApiVersion::Beta => format!(
                "/users{}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes={})",
                user_path(user_id),
                self.s.challenge_timeout_minutes
            ),
            ApiVersion::V1 => format!(
                "/users{}/authentication/fido2Methods/creationOptions",
                user_path(user_id)
            ),
        };
        let mut v = self
            .get(
                "GET /users/{id}/authentication/fido2Methods/creationOptions",
                self.version(),
                &path,
            )
            .await?;
        strip_odata(&mut v);
        let public_key = v.get("publicKey").cloned().ok_or(Error::Malformed {
            upstream: UP,
            reason: "no publicKey in creationOptions".into(),
        })?;
        let expires_at = v
            .get("challengeTimeoutDateTime")
            .and_then(Value::as_str)
            .and_then(|d| {
                time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(time::OffsetDateTime::unix_timestamp);
        Ok(CreationOptions {
            public_key,
            expires_at,
        })
    }

    /// The user's FIDO2 methods.
    pub async fn methods(&self, user_id: &str) -> Result<Vec<Method>, Error> {
        let v = self
            .get(
                "GET /users/{id}/authentication/fido2Methods",
                "v1.0",
                &format!("/users{}/authentication/fido2Methods", user_path(user_id)),
            )
            .await?;
        let s = |m: &Value, k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(v.get("value")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|m| Method {
                        id: s(m, "id"),
                        display_name: s(m, "displayName"),
                        aaguid: s(m, "aaGuid"),
                        attestation_level: s(m, "attestationLevel"),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Registers a credential (`POST /users/{id}/authentication/fido2Methods`). `id`,
    /// `client_data_json` and `attestation_object` are base64url without padding.
    pub async fn register(
        &self,
        user_id: &str,
        display_name: &str,
        id: &str,
        client_data_json: &str,
        attestation_object: &str,
    ) -> Result<Method, Error> {
        let token = self.token().await?;
        let display: String = display_name.chars().take(30).collect();
        let body = json!({
            "displayName": display,
            "publicKeyCredential": {"id": id, "response": {"clientDataJSON": client_data_json, "attestationObject": attestation_object}, "clientExtensionResults": {}}
        });
        let url = self.graph_url(
            "v1.0",
            &format!("/users{}/authentication/fido2Methods", user_path(user_id)),
        );
        let (_, bytes) = send(
            UP,
            "POST /users/{id}/authentication/fido2Methods",
            self.http
                .post(url)
                .bearer_auth(token.expose_secret())
                .json(&body),
        )
        .await?;
        let m: Value = json(UP, &bytes)?;
        let s = |k: &str| {
            m.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(Method {
            id: s("id"),
            display_name: s("displayName"),
            aaguid: s("aaGuid"),
            attestation_level: s("attestationLevel"),
        })
    }
}

/// Graph's method id for a credential id: unpadded base64url plus the count of `=` removed.
pub fn method_id(credential_id: &[u8]) -> String {
    format!(
        "{}{}",
        URL_SAFE_NO_PAD.encode(credential_id),
        (3 - credential_id.len() % 3) % 3
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_encodings() {
        let bytes: Vec<u8> = (0u8..=40).collect();
        let std = STANDARD.encode(&bytes);
        let url = URL_SAFE_NO_PAD.encode(&bytes);
        let pads = std.matches('=').count();
        let suffixed = format!("{url}{pads}");
        assert_eq!(decode_graph_b64(&std, true), Some(bytes.clone()));
        assert_eq!(decode_graph_b64(&url, false), Some(bytes.clone()));
        assert_eq!(decode_graph_b64(&suffixed, true), Some(bytes.clone()));
        for n in [16usize, 32, 33, 34] {
            let b = vec![7u8; n];
            let m = method_id(&b);
            let digit = (m.as_bytes()[m.len() - 1] - b'0') as usize;
            assert_eq!(decode_graph_b64(&m, true), Some(b.clone()), "{n}");
            assert_eq!(digit, (3 - n % 3) % 3);
        }
        assert_eq!(user_path("$adm@x.com"), "('%24adm%40x.com')");
        assert_eq!(user_path("a#b@x.com"), "/a%23b%40x.com");
    }
}
