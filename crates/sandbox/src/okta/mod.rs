//! Okta: the WebAuthn preregistration API (`/webauthn-registration/api/v1/...`), the Users
//! API and the Groups API. Okta holds its own response keys and, after activation, the PIN,
//! which only send-pin e-mails.

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

mod activate;
mod enroll;
mod enrollments;
mod event_hooks;
mod groups;
mod oauth;
mod search;
mod users;
use self::activate::*;
use self::enroll::*;
use self::enrollments::*;
pub use self::event_hooks::EventHook;
pub(crate) use self::event_hooks::verify as verify_event_hook;
use self::groups::*;
use self::oauth::*;
use self::users::*;

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
        .route("/api/v1/users", get(search::search))
        .route("/api/v1/users/{id}", get(user))
        .route("/api/v1/groups", get(groups))
        .route("/api/v1/groups/{id}", get(group))
        .route("/api/v1/groups/{id}/users", get(members))
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
        let st = app.state();
        let live = st.okta_tokens.get(t).is_some_and(|(_, exp)| *exp > now());
        // The Groups API takes okta.groups.read; every other route a users scope.
        let scopes = st.okta_token_scopes.get(t).cloned().unwrap_or_default();
        let needed: &[&str] = if route.starts_with("okta.group") {
            &["okta.groups.read"]
        } else {
            &["okta.users.manage", "okta.users.read"]
        };
        if live && !scopes.iter().any(|s| needed.contains(&s.as_str())) {
            return Err(with_rate(okta_error(
                StatusCode::FORBIDDEN,
                "E0000006",
                "You do not have permission to perform the requested action",
                json!([]),
            )));
        }
        live
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
