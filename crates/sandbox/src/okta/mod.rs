//! Okta: the WebAuthn preregistration API (`/webauthn-registration/api/v1/...`) and the Users
//! API. Okta holds its own response keys and, after activation, the PIN, which only send-pin
//! e-mails.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{delete, get, post};
use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::{
    self, CredentialRequest, CredentialResponse, PinRequest, PinResponse, PinSpec,
};
use fpr_jose::{Curve, Jwks, PrivateKey, PublicJwk, jws};
use serde_json::{Value, json};

use crate::App;
use crate::http::{inject, json, now, okta_id, rfc3339, token_eq};
use crate::state::{Enrollment, Idp, Mail, User};

const PREFIX: &str = "/webauthn-registration/api/v1";

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            &format!("{PREFIX}/initiate-fulfillment-request"),
            post(initiate),
        )
        .route(&format!("{PREFIX}/enroll"), post(enroll))
        .route(&format!("{PREFIX}/activate"), post(activate))
        .route(&format!("{PREFIX}/send-pin"), post(send_pin))
        .route(&format!("{PREFIX}/users/{{user}}/enrollments"), get(list))
        .route(
            &format!("{PREFIX}/users/{{user}}/enrollments/{{id}}"),
            delete(remove),
        )
        .route(
            &format!("{PREFIX}/users/{{user}}/enrollments/{{id}}/mark-error"),
            post(mark_error),
        )
        .route("/api/v1/users/{id}", get(user))
        .route("/oauth2/v1/token", post(token))
}

fn okta_error(status: StatusCode, code: &str, summary: &str, causes: Value) -> Response {
    json(
        status,
        json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": format!("oae{}", crate::http::random_chars(19, b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")), "errorCauses": causes}),
    )
}

fn invalid(summary: &str, cause: &str) -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000001",
        &format!("Api validation failed: {summary}"),
        json!({"errorSummary": cause}),
    )
}

fn not_found(what: &str) -> Response {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: {what}"),
        json!([]),
    )
}

/// Auth and rate limit; returns the rate headers to put on the response.
async fn gate(app: &App, headers: &HeaderMap, route: &str) -> Result<RateHeaders, Response> {
    let limit = app.config.okta_rate_per_s;
    let (n, reset) = app.rate.lock().map(|mut r| r.hit("okta")).unwrap_or((0, 1));
    let rate: RateHeaders = [
        ("x-rate-limit-limit", limit.to_string()),
        (
            "x-rate-limit-remaining",
            limit.saturating_sub(n).to_string(),
        ),
        ("x-rate-limit-reset", (now() + reset).to_string()),
    ];
    let with_rate = |r: Response| with_rate(&rate, r);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ok = if let Some(t) = auth.strip_prefix("SSWS ") {
        token_eq(t, &app.config.okta_token)
    } else if let Some(t) = auth.strip_prefix("Bearer ") {
        app.state()
            .okta_tokens
            .get(t)
            .is_some_and(|(_, exp)| *exp > now())
    } else {
        false
    };
    if !ok {
        return Err(with_rate(okta_error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided",
            json!([]),
        )));
    }
    if n > limit {
        return Err(with_rate(okta_error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            json!([]),
        )));
    }
    if let Some(r) = inject(app, route).await {
        return Err(with_rate(r));
    }
    Ok(rate)
}

/// The `X-Rate-Limit-*` headers Okta puts on every answer.
type RateHeaders = [(&'static str, String); 3];

fn with_rate(rate: &RateHeaders, mut r: Response) -> Response {
    for (name, value) in rate {
        if let Ok(v) = HeaderValue::from_str(value) {
            // An injected 429 brings its own (exhausted) window.
            r.headers_mut().entry(*name).or_insert(v);
        }
    }
    r
}

/// Gates an Okta call (rate limit, SSWS or Bearer auth, injected faults), runs `f`, and puts
/// the rate headers on whatever it answers.
async fn call(
    app: &App,
    headers: &HeaderMap,
    route: &str,
    f: impl FnOnce() -> Result<Response, Response>,
) -> Response {
    match gate(app, headers, route).await {
        Ok(rate) => with_rate(&rate, f().unwrap_or_else(|e| e)),
        Err(r) => r,
    }
}

fn okta_user<'a>(st: &'a crate::State, key: &str) -> Option<&'a User> {
    st.user_by_key(Idp::Okta, key)
}

fn parse(body: &[u8]) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(invalid("body", "The request body was not well-formed.")),
    }
}

fn check_provider(v: &Value) -> Result<(), Response> {
    if v.get("fulfillmentProvider").and_then(Value::as_str) == Some("yubico") {
        Ok(())
    } else {
        Err(invalid(
            "fulfillmentProvider",
            "fulfillmentProvider must be yubico",
        ))
    }
}

async fn initiate(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    call(&app, &headers, "okta.initiate", || {
        let v = parse(&body)?;
        check_provider(&v)?;
        let user = v.get("userId").and_then(Value::as_str).unwrap_or_default();
        if okta_user(&app.state(), user).is_none() {
            return Err(not_found(&format!("User {user}")));
        }
        let data = v
            .get("fulfillmentData")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ok = !data.is_empty()
            && data.iter().all(|d| {
                ["productId", "customizationId", "inventoryProductId"]
                    .iter()
                    .all(|k| {
                        d.get(*k)
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                    })
            });
        if !ok {
            return Err(invalid(
                "fulfillmentData",
                "fulfillmentData must be an array of {productId, customizationId, inventoryProductId} strings",
            ));
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn enroll(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    call(&app, &headers, "okta.enroll", || do_enroll(&app, &body)).await
}

fn do_enroll(app: &App, body: &[u8]) -> Result<Response, Response> {
    let v = parse(body)?;
    check_provider(&v)?;
    let user_id = v
        .get("userId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let user = okta_user(&app.state(), &user_id)
        .cloned()
        .ok_or_else(|| not_found(&format!("User {user_id}")))?;
    let rp_ids: Vec<String> = crate::http::strings(&v, "enrollmentRpIds");
    if rp_ids.is_empty()
        || rp_ids
            .iter()
            .any(|r| r.is_empty() || r.contains(['/', ':', ' ']))
    {
        return Err(invalid(
            "enrollmentRpIds",
            "enrollmentRpIds must be bare host names",
        ));
    }
    let transport = v
        .get("yubicoTransportKeyJWK")
        .ok_or(())
        .and_then(|j| PublicJwk::from_json(j).map_err(|_| ()))
        .ok()
        .filter(|k| k.curve() == Curve::P384 && k.key_use() == Some(fpr_jose::KeyUse::Enc))
        .ok_or_else(|| {
            invalid(
                "yubicoTransportKeyJWK",
                "yubicoTransportKeyJWK must be an EC P-384 JWK with use enc",
            )
        })?;
    let request_id = fpr_jose::util::random_id().map_err(|_| invalid("enroll", "internal"))?;
    let key = PrivateKey::generate(Curve::P384, &request_id)
        .map_err(|_| invalid("enroll", "internal"))?;
    let response_key = key.public().to_json();
    let mut cred_requests = Vec::new();
    let mut enrollments = Vec::new();
    for rp in &rp_ids {
        let mut challenge = [0u8; 32];
        let _ = fpr_jose::util::fill_random(&mut challenge);
        let options = json!({
            "challenge": fpr_webauthn::b64e(&challenge),
            "rp": {"id": rp, "name": "Okta"},
            "user": {"id": fpr_webauthn::b64e(user.id.as_bytes()), "name": user.login, "displayName": user.display_name()},
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
            "timeout": 2_592_000_000u64,
            "authenticatorSelection": {"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"},
            "attestation": "direct"
        });
        let req = CredentialRequest {
            typ: protocol::CREDENTIAL_REQUEST.into(),
            v: protocol::VERSION,
            request_id: request_id.clone(),
            response_key: response_key.clone(),
            public_key: options.clone(),
        };
        let cred_jwe = serde_json::to_vec(&req)
            .ok()
            .and_then(|p| jwe::encrypt(&p, &transport, Algorithms::default()).ok())
            .ok_or_else(|| invalid("enroll", "encryption failed"))?;
        let id = okta_id("fwf");
        let t = rfc3339(now());
        enrollments.push(Enrollment {
            id: id.clone(),
            user_id: user.id.clone(),
            status: "PENDING_ACTIVATION".into(),
            response_key_jwk: key
                .to_private_jwk()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            request_id: request_id.clone(),
            options,
            rp_id: rp.clone(),
            credential_id: None,
            pin: None,
            serial: None,
            created: t.clone(),
            last_updated: t,
        });
        cred_requests.push(json!({"authenticatorEnrollmentId": id, "credRequestJwe": cred_jwe, "keyId": request_id}));
    }
    let pin_req = PinRequest {
        typ: protocol::PIN_REQUEST.into(),
        v: protocol::VERSION,
        request_id: request_id.clone(),
        response_key,
        pin: PinSpec {
            kind: "generate".into(),
            length: 8,
            force_change: false,
        },
    };
    let pin_jwe = serde_json::to_vec(&pin_req)
        .ok()
        .and_then(|p| jwe::encrypt(&p, &transport, Algorithms::default()).ok())
        .ok_or_else(|| invalid("enroll", "encryption failed"))?;
    let mut st = app.state();
    for e in enrollments {
        st.enrollments.insert(e.id.clone(), e);
    }
    tracing::info!(user.id = %user.id, "Okta preregistration enrolled");
    Ok(json(
        StatusCode::OK,
        json!({"credRequests": cred_requests, "fulfillmentProvider": "yubico", "pinRequestJwe": pin_jwe, "userId": user.id}),
    ))
}

async fn activate(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    call(&app, &headers, "okta.activate", || do_activate(&app, &body)).await
}

fn do_activate(app: &App, body: &[u8]) -> Result<Response, Response> {
    const SUMMARY: &str = "pinResponseJwe|webAuthnCredResponse";
    let v = parse(body)?;
    check_provider(&v)?;
    let user_id = v
        .get("userId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if okta_user(&app.state(), &user_id).is_none() {
        return Err(not_found(&format!("User {user_id}")));
    }
    let serial = v
        .get("serial")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if serial.is_empty()
        || v.get("version")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        return Err(invalid(
            "serial|version",
            "serial and version are required strings",
        ));
    }
    let keys: Vec<PublicJwk> = v
        .get("yubicoSigningJwks")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| PublicJwk::from_json(k).ok())
                .collect()
        })
        .unwrap_or_default();
    let signing = Jwks::try_new(keys)
        .ok()
        .filter(|s| !s.keys().is_empty())
        .ok_or_else(|| {
            invalid(
                "yubicoSigningJwks",
                "yubicoSigningJwks must be an array of EC JWKs",
            )
        })?;
    let responses = v
        .get("credResponses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if responses.is_empty() {
        return Err(invalid(SUMMARY, "credResponses is required"));
    }
    let mut activated = Vec::new();
    let mut pin_for: Option<(String, PrivateKey, String)> = None;
    for r in &responses {
        let eid = r
            .get("authenticatorEnrollmentId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let token = r
            .get("credResponseJwe")
            .or_else(|| r.get("credResponseJWE"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let e = app
            .state()
            .enrollments
            .get(eid)
            .cloned()
            .filter(|e| e.user_id == user_id)
            .ok_or_else(|| not_found(&format!("Enrollment {eid}")))?;
        if e.status != "PENDING_ACTIVATION" {
            return Err(invalid(SUMMARY, &format!("enrollment is {}", e.status)));
        }
        let key = PrivateKey::from_private_jwk(&e.response_key_jwk)
            .map_err(|_| invalid(SUMMARY, "internal key error"))?;
        let payload = open(token, &key, &signing).map_err(|m| invalid(SUMMARY, &m))?;
        let resp: CredentialResponse = serde_json::from_slice(&payload)
            .map_err(|_| invalid(SUMMARY, "credential response is not the protocol's JSON"))?;
        if resp.typ != protocol::CREDENTIAL_RESPONSE
            || resp.request_id != e.request_id
            || resp.serial_number != serial
        {
            return Err(invalid(
                SUMMARY,
                "credential response does not answer this enrollment",
            ));
        }
        let challenge = e
            .options
            .get("challenge")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let origins = vec![format!("https://{}", e.rp_id)];
        let expected = fpr_webauthn::Expected {
            challenge,
            rp_id: &e.rp_id,
            origins: &origins,
            require_uv: true,
        };
        let policy = fpr_webauthn::AttestationPolicy {
            enforce: true,
            trust_roots: vec![app.keys.ca.root_der().to_vec()],
            allowed_aaguids: None,
        };
        let cd =
            fpr_webauthn::b64d_any(&resp.credential.response.client_data_json).unwrap_or_default();
        let att = fpr_webauthn::b64d_any(&resp.credential.response.attestation_object)
            .unwrap_or_default();
        let reg = fpr_webauthn::check_registration(&cd, &att, &expected, &policy)
            .map_err(|e| invalid(SUMMARY, &format!("registration failed: {e}")))?;
        activated.push((eid.to_owned(), fpr_webauthn::b64e(&reg.credential_id)));
        pin_for = Some((eid.to_owned(), key, e.request_id.clone()));
    }
    let (_, key, request_id) = pin_for.ok_or_else(|| invalid(SUMMARY, "no enrollment"))?;
    let pin_token = v
        .get("pinResponseJwe")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let payload = open(pin_token, &key, &signing).map_err(|m| invalid(SUMMARY, &m))?;
    let pin: PinResponse = serde_json::from_slice(&payload)
        .map_err(|_| invalid(SUMMARY, "PIN response is not the protocol's JSON"))?;
    if pin.typ != protocol::PIN_RESPONSE
        || pin.request_id != request_id
        || pin.serial_number != serial
    {
        return Err(invalid(
            SUMMARY,
            "PIN response does not answer this enrollment",
        ));
    }
    let mut st = app.state();
    let t = rfc3339(now());
    for (eid, cred) in &activated {
        if let Some(e) = st.enrollments.get_mut(eid) {
            e.status = "ACTIVE".into();
            e.credential_id = Some(cred.clone());
            e.pin = Some(pin.pin().to_owned());
            e.serial = Some(serial.clone());
            e.last_updated = t.clone();
        }
    }
    tracing::info!(user.id = %user_id, enrollments = activated.len(), "Okta preregistration activated");
    let ids: Vec<&String> = activated.iter().map(|(e, _)| e).collect();
    Ok(json(
        StatusCode::OK,
        json!({"authenticatorEnrollmentIds": ids, "fulfillmentProvider": "yubico", "userId": user_id}),
    ))
}

fn open(
    token: &str,
    key: &PrivateKey,
    signing: &Jwks,
) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    let inner = jwe::decrypt(token, key).map_err(|e| format!("response JWE: {e}"))?;
    let inner = std::str::from_utf8(&inner).map_err(|_| "response JWS is not text".to_owned())?;
    jws::verify(inner, signing)
        .map(|v| v.payload)
        .map_err(|e| format!("response JWS: {e}"))
}

async fn send_pin(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    call(&app, &headers, "okta.send_pin", || {
        let v = parse(&body)?;
        check_provider(&v)?;
        let user_id = v.get("userId").and_then(Value::as_str).unwrap_or_default();
        let Some(eid) = v.get("authenticatorEnrollmentId").and_then(Value::as_str) else {
            return Err(invalid(
                "authenticatorEnrollmentId",
                "authenticatorEnrollmentId must be a string",
            ));
        };
        let mut st = app.state();
        let user = okta_user(&st, user_id)
            .cloned()
            .ok_or_else(|| not_found(&format!("User {user_id}")))?;
        let e = st
            .enrollments
            .get(eid)
            .filter(|e| e.user_id == user.id)
            .cloned()
            .ok_or_else(|| not_found(&format!("Enrollment {eid}")))?;
        let (Some(pin), "ACTIVE") = (e.pin.as_ref(), e.status.as_str()) else {
            return Err(invalid(
                "authenticatorEnrollmentId",
                "the enrollment is not active",
            ));
        };
        let to = if user.status == "STAGED" {
            user.other_mails.first().cloned().unwrap_or_default()
        } else {
            user.mail.clone()
        };
        let body = format!(
            "Hello {},\n\nYour new YubiKey (serial {}) is ready. Its PIN is: {pin}\n",
            user.given_name,
            e.serial.clone().unwrap_or_default()
        );
        st.mailbox.push(Mail {
            via: "okta".into(),
            to: vec![to],
            subject: "Your YubiKey PIN".into(),
            body,
            received_at: now(),
        });
        tracing::info!(user.id = %user.id, "Okta sent the PIN");
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

fn enrollment_json(app: &App, e: &Enrollment) -> Value {
    json!({
        "id": e.id, "factorType": "webauthn", "provider": "FIDO", "vendorName": "FIDO", "fulfillmentProvider": "yubico",
        "status": e.status, "created": e.created, "lastUpdated": e.last_updated,
        "profile": {"credentialId": e.credential_id, "authenticatorName": "YubiKey", "presetPinAvailable": e.pin.is_some()},
        "_links": {"self": {"href": format!("{}{PREFIX}/users/{}/enrollments/{}", app.base(), e.user_id, e.id), "hints": {"allow": ["DELETE"]}}}
    })
}

async fn list(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    call(&app, &headers, "okta.list", || {
        let st = app.state();
        let u = okta_user(&st, &user).ok_or_else(|| not_found(&format!("User {user}")))?;
        let list: Vec<Value> = st
            .enrollments
            .values()
            .filter(|e| e.user_id == u.id)
            .map(|e| enrollment_json(&app, e))
            .collect();
        Ok(json(StatusCode::OK, Value::Array(list)))
    })
    .await
}

/// Applies `op` to the user's enrollment `id` (404 when it is not theirs).
async fn enrollment_op(
    app: &App,
    headers: &HeaderMap,
    route: &str,
    user: &str,
    id: &str,
    op: impl FnOnce(&mut std::collections::BTreeMap<String, Enrollment>),
) -> Response {
    call(app, headers, route, || {
        let mut st = app.state();
        let uid = okta_user(&st, user)
            .map(|u| u.id.clone())
            .unwrap_or_default();
        if st.enrollments.get(id).is_none_or(|e| e.user_id != uid) {
            return Err(not_found(&format!("Enrollment {id}")));
        }
        op(&mut st.enrollments);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn remove(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    enrollment_op(&app, &headers, "okta.delete", &user, &id, |all| {
        all.remove(&id);
    })
    .await
}

async fn mark_error(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    enrollment_op(&app, &headers, "okta.mark_error", &user, &id, |all| {
        if let Some(e) = all.get_mut(&id) {
            e.status = "FULFILLMENT_ERRORED".into();
            e.last_updated = rfc3339(now());
        }
    })
    .await
}

async fn user(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    call(&app, &headers, "okta.users", || {
        let st = app.state();
        let u = okta_user(&st, &id).ok_or_else(|| not_found(&format!("User {id}")))?;
    let body = json!({
        "id": u.id, "status": u.status, "created": "2024-01-01T00:00:00.000Z",
        "profile": {
            "login": u.login, "firstName": u.given_name, "lastName": u.surname, "email": u.mail,
            "secondEmail": u.other_mails.first(), "primaryPhone": u.phone, "mobilePhone": Value::Null,
            "streetAddress": u.address.street, "city": u.address.city, "state": u.address.region,
            "zipCode": u.address.postal_code, "countryCode": u.address.country, "organization": u.organization,
        }
    });
    let etag = format!(
        "W/\"{}\"",
        fpr_webauthn::b64e(&fpr_webauthn::sha256(body.to_string().as_bytes())[..9])
    );
    let mut r = json(StatusCode::OK, body);
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert("etag", v);
    }
        Ok(r)
    })
    .await
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// `POST /oauth2/v1/token`: client credentials with a `private_key_jwt` assertion signed by a
/// key registered for the service app (`PUT /_sandbox/okta/apps/{client_id}`).
async fn token(
    AxState(app): AxState<Arc<App>>,
    axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
) -> Response {
    let f = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if f("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported.",
        );
    }
    if f("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Only private_key_jwt client authentication is allowed for Okta scopes.",
        );
    }
    if !f("scope").split(' ').any(|s| s == "okta.users.manage") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The requested scope is invalid: okta.users.manage is required.",
        );
    }
    let assertion = f("client_assertion");
    // Claims first (unverified) to find the app, then the signature with its registered keys.
    let claims: Value = assertion
        .split('.')
        .nth(1)
        .and_then(|c| fpr_jose::util::b64d(c).ok())
        .and_then(|c| serde_json::from_slice(&c).ok())
        .unwrap_or(Value::Null);
    let client = claims["iss"].as_str().unwrap_or_default().to_owned();
    let Some(jwks) = app.state().okta_apps.get(&client).cloned() else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_id is not known.",
        );
    };
    let keys: Vec<Value> = jwks["keys"].as_array().cloned().unwrap_or_default();
    // EC keys verify ES256/384/512 assertions; RSA keys RS256 ones.
    let verified = Jwks::from_json(jwks.to_string().as_bytes())
        .is_ok_and(|ec| jws::verify(assertion, &ec).is_ok())
        || fpr_jose::jwt::verify_rs256(assertion, &keys).is_ok();
    let aud = format!("{}/oauth2/v1/token", app.base());
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if !verified
        || claims["sub"] != client.as_str()
        || claims["aud"] != aud.as_str()
        || exp <= now()
        || exp > now() + 3600
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion is invalid.",
        );
    }
    let token = format!(
        "okta-at-{}",
        crate::http::random_chars(
            40,
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        )
    );
    app.state()
        .okta_tokens
        .insert(token.clone(), (client, now() + 3600));
    json(
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": 3600, "access_token": token, "scope": f("scope")}),
    )
}
