//! A thin Okta client for FIDO2 preregistration (UPSTREAM-APIS.md §3): the Users API for
//! shipping data, and `enroll`, `activate`, `send-pin`, delete and `mark-error` of the
//! WebAuthn preregistration API. SSWS auth; the token is read at each call. Okta's 429s are
//! retried after `Retry-After` or `X-Rate-Limit-Reset`.
//!
//! fpr never holds an Okta PIN: Okta decrypts the PIN response and e-mails the PIN itself.
//!
//! ```no_run
//! # async fn f() -> Result<(), fpr_upstream::Error> {
//! let okta = fpr_okta::Client::new("https://example.okta.com".parse().unwrap(), fpr_upstream::SecretSource::Env("OKTA_TOKEN".into()), std::time::Duration::from_secs(30))?;
//! let p = okta.user("ada@example.com").await?;
//! println!("{}", p.id);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::time::Duration;

use fpr_upstream::{Error, SecretSource, json, send};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use url::Url;

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

/// The client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretSource,
}

// === impl Client ===

impl Client {
    /// A client for the org at `base` (`https://{yourOktaDomain}`).
    pub fn new(base: Url, token: SecretSource, timeout: Duration) -> Result<Self, Error> {
        Ok(Self {
            http: fpr_upstream::http_client(timeout)?,
            base,
            token,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, Error> {
        let t = self.token.read("okta.token")?;
        Ok(req
            .header("authorization", format!("SSWS {}", t.expose_secret()))
            .header("accept", "application/json"))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Vec<u8>, Error> {
        send(UP, self.auth(self.http.post(self.url(path)).json(body))?)
            .await
            .map(|(_, b)| b)
    }

    /// `GET /api/v1/users/{id|login}`.
    pub async fn user(&self, id: &str) -> Result<User, Error> {
        let enc: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let (_, b) = send(
            UP,
            self.auth(self.http.get(self.url(&format!("/api/v1/users/{enc}"))))?,
        )
        .await?;
        let v: Value = json(UP, &b)?;
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

    /// `POST /enroll` with one Yubico transport JWK; returns the first enrollment (one per RP id).
    pub async fn enroll(
        &self,
        user_id: &str,
        rp_ids: &[String],
        transport_jwk: &Value,
    ) -> Result<Enrollment, Error> {
        let body = json!({"enrollmentRpIds": rp_ids, "fulfillmentProvider": "yubico", "userId": user_id, "yubicoTransportKeyJWK": transport_jwk});
        let v: Value = json(UP, &self.post(&format!("{PRE}/enroll"), &body).await?)?;
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
        self.post(&format!("{PRE}/activate"), &body)
            .await
            .map(|_| ())
    }

    /// `POST /send-pin`: Okta e-mails the PIN (again, on repeat calls).
    pub async fn send_pin(&self, user_id: &str, enrollment_id: &str) -> Result<(), Error> {
        let body = json!({"authenticatorEnrollmentId": enrollment_id, "fulfillmentProvider": "yubico", "userId": user_id});
        self.post(&format!("{PRE}/send-pin"), &body)
            .await
            .map(|_| ())
    }

    /// Deletes an enrollment (404 counts as done).
    pub async fn delete_enrollment(&self, user_id: &str, enrollment_id: &str) -> Result<(), Error> {
        match send(
            UP,
            self.auth(self.http.delete(self.url(&format!(
                "{PRE}/users/{user_id}/enrollments/{enrollment_id}"
            ))))?,
        )
        .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Marks an enrollment's fulfilment as failed.
    pub async fn mark_error(&self, user_id: &str, enrollment_id: &str) -> Result<(), Error> {
        send(
            UP,
            self.auth(self.http.post(self.url(&format!(
                "{PRE}/users/{user_id}/enrollments/{enrollment_id}/mark-error"
            ))))?,
        )
        .await
        .map(|_| ())
    }
}

/// The Okta profile attribute that supplies each YubiEnterprise field (UPSTREAM-APIS.md §3.6).
pub const PROFILE_MAP: &[(&str, &str)] = &[
    ("recipient_firstname", "firstName"),
    ("recipient_lastname", "lastName"),
    ("recipient_email", "email"),
    ("recipient_telephone", "primaryPhone"),
    ("recipient_company", "organization"),
    ("street_line1", "streetAddress"),
    ("city", "city"),
    ("region", "state"),
    ("postal_code", "zipCode"),
    ("country_code_2", "countryCode"),
];
