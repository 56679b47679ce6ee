//! The sandbox's own JSON admin API under `/_sandbox/`: users, mailbox (and a webhook
//! receiver), shipments (advance, set error), registered credentials, Okta enrollments,
//! fault injection, key rotation and the endpoints a client needs.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::http::{guid, json, now, okta_id};
use crate::state::{Address, Fault, Idp, Mail, User};
use crate::yubienterprise::{ERROR_STATES, admin_view, current_state, state_message};

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/_sandbox/config", get(config))
        .route("/_sandbox/users", get(users).post(create_user))
        .route("/_sandbox/users/{id}", get(user))
        .route("/_sandbox/mailbox", get(mailbox).delete(clear_mailbox))
        .route("/_sandbox/mailbox/webhook", post(webhook))
        .route("/_sandbox/shipments", get(shipments))
        .route("/_sandbox/shipments/{id}", get(shipment))
        .route("/_sandbox/shipments/{id}/advance", post(advance))
        .route("/_sandbox/shipments/{id}/error", post(set_error))
        .route("/_sandbox/shipments/{id}/clear", post(clear_error))
        .route("/_sandbox/credentials", get(credentials))
        .route("/_sandbox/okta/enrollments", get(enrollments))
        .route("/_sandbox/okta/apps/{client_id}", put(register_okta_app))
        .route(
            "/_sandbox/okta/event-hooks",
            get(event_hooks).put(register_event_hook),
        )
        .route("/_sandbox/faults", get(faults).delete(clear_faults))
        .route("/_sandbox/calls", get(calls))
        .route(
            "/_sandbox/faults/{route}",
            put(set_fault).delete(clear_fault),
        )
        .route("/_sandbox/yubico/rotate/{set}", post(rotate))
        .route("/_sandbox/snapshot", post(snapshot))
        .route("/_sandbox/tokens", post(mint_token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintToken {
    /// The app the token is for (default: the caller app).
    #[serde(default)]
    client_id: Option<String>,
    /// The app roles granted (default: every role of fpr's API).
    #[serde(default)]
    roles: Option<Vec<String>>,
    /// Claims to set; a null removes the claim.
    #[serde(default)]
    claims: serde_json::Map<String, Value>,
}

/// Signs a caller token for fpr's API with the tenant key, with chosen app, roles and claims,
/// as Entra would for an app with those app-role assignments (tests of authorization).
async fn mint_token(AxState(app): AxState<Arc<App>>, Json(m): Json<MintToken>) -> Response {
    let c = &app.config;
    let client = m.client_id.unwrap_or_else(|| c.caller_client_id.clone());
    let roles = m
        .roles
        .map_or_else(|| json!(crate::entra::CALLER_ROLES), |r| json!(r));
    let mut claims = crate::entra::app_claims(&app, &client, &c.api_audience, roles);
    if let Some(obj) = claims.as_object_mut() {
        for (k, v) in m.claims {
            if v.is_null() {
                obj.remove(&k);
            } else {
                obj.insert(k, v);
            }
        }
    }
    match app.keys.tenant.sign(&claims) {
        Ok(t) => json(StatusCode::OK, json!({"access_token": t, "claims": claims})),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": e.to_string()}),
        ),
    }
}

fn bad(message: impl Into<String>) -> Response {
    json(StatusCode::BAD_REQUEST, json!({"error": message.into()}))
}

fn missing() -> Response {
    json(StatusCode::NOT_FOUND, json!({"error": "not found"}))
}

async fn config(AxState(app): AxState<Arc<App>>) -> Response {
    let c = &app.config;
    let base = app.base();
    json(
        StatusCode::OK,
        json!({
            "base_url": base,
            "yubienterprise": {"base_url": format!("{base}/v1"), "token": c.ye_token, "customization_ids": c.customization_ids,
                "transport_jwks": format!("{base}/.well-known/yubico-transport-keys.jwks"), "sign_jwks": format!("{base}/.well-known/yubico-sign.jwks")},
            "entra": {"login_base": base, "graph_base": base, "tenant": c.tenant, "client_id": c.graph_client_id, "client_secret": c.graph_client_secret,
                "api_audience": c.api_audience, "caller_client_id": c.caller_client_id, "caller_client_secret": c.caller_client_secret,
                "issuer": format!("{base}/{}/v2.0", c.tenant), "jwks": format!("{base}/{}/discovery/v2.0/keys", c.tenant)},
            "okta": {"base_url": base, "token": c.okta_token},
            "mailbox": {"webhook": format!("{base}/_sandbox/mailbox/webhook")},
            "attestation_root_pem": app.keys.ca.root_pem(),
            "clock": c.clock,
        }),
    )
}

async fn users(
    AxState(app): AxState<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = app.state();
    let idp = q.get("idp").map(String::as_str);
    let list: Vec<&User> = st
        .users
        .values()
        .filter(|u| {
            idp.is_none_or(|i| matches!((i, u.idp), ("entra", Idp::Entra) | ("okta", Idp::Okta)))
        })
        .collect();
    json(StatusCode::OK, json!(list))
}

async fn user(AxState(app): AxState<Arc<App>>, Path(id): Path<String>) -> Response {
    let st = app.state();
    st.users
        .get(&id)
        .or_else(|| {
            st.users
                .values()
                .find(|u| u.login.eq_ignore_ascii_case(&id))
        })
        .map_or_else(missing, |u| json(StatusCode::OK, json!(u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    idp: Idp,
    login: String,
    given_name: String,
    surname: String,
    #[serde(default)]
    mail: Option<String>,
    #[serde(default)]
    other_mails: Vec<String>,
    #[serde(default)]
    manager: Option<String>,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    address: Address,
    #[serde(default)]
    status: Option<String>,
}

async fn create_user(AxState(app): AxState<Arc<App>>, body: axum::body::Bytes) -> Response {
    let n: NewUser = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return bad(format!("invalid user: {e}")),
    };
    let mut st = app.state();
    if st
        .users
        .values()
        .any(|u| u.login.eq_ignore_ascii_case(&n.login))
    {
        return json(
            StatusCode::CONFLICT,
            json!({"error": "login already exists"}),
        );
    }
    let manager_id = match &n.manager {
        Some(m) => match st
            .users
            .values()
            .find(|u| u.id == *m || u.login.eq_ignore_ascii_case(m))
        {
            Some(u) => Some(u.id.clone()),
            None => return bad("manager not found"),
        },
        None => None,
    };
    let id = match n.idp {
        Idp::Entra => guid(),
        Idp::Okta => okta_id("00u"),
    };
    let u = User {
        id: id.clone(),
        idp: n.idp,
        mail: n.mail.unwrap_or_else(|| n.login.clone()),
        login: n.login,
        given_name: n.given_name,
        surname: n.surname,
        other_mails: n.other_mails,
        manager_id,
        phone: n.phone,
        organization: n.organization,
        address: n.address,
        status: n.status.unwrap_or_else(|| "ACTIVE".into()),
    };
    st.add_user(u.clone());
    json(StatusCode::CREATED, json!(u))
}

async fn mailbox(
    AxState(app): AxState<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = app.state();
    let to = q.get("to").map(|s| s.to_ascii_lowercase());
    let list: Vec<&Mail> = st
        .mailbox
        .iter()
        .filter(|m| {
            to.as_ref()
                .is_none_or(|t| m.to.iter().any(|r| r.eq_ignore_ascii_case(t)))
        })
        .collect();
    json(
        StatusCode::OK,
        json!({"sandbox_data": "messages hold PINs: sandbox test data only", "messages": list}),
    )
}

async fn clear_mailbox(AxState(app): AxState<Arc<App>>) -> Response {
    app.state().mailbox.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// Receives webhook PIN deliveries (the vault's webhook channel) into the mailbox.
async fn webhook(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = crate::http::inject(&app, "mailbox.webhook").await {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("body is not JSON");
    };
    let to: Vec<String> = crate::http::strings(&v, "emails_to");
    let signed = headers.contains_key("x-fpr-signature");
    let subject = v
        .get("subject")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    app.state().mailbox.push(Mail {
        via: if signed {
            "webhook".into()
        } else {
            "webhook-unsigned".into()
        },
        to,
        subject,
        body: v.to_string(),
        received_at: now(),
    });
    json(StatusCode::OK, json!({"ok": true}))
}

/// The live shipments; with `?deleted=true`, the deleted ones (id, created and deleted times).
async fn shipments(
    AxState(app): AxState<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("deleted").is_some_and(|d| d == "true") {
        let list: Vec<Value> = app
            .state()
            .shipments
            .values()
            .filter(|s| s.deleted)
            .map(|s| json!({"shipment_id": s.id, "created_at": s.created_at, "deleted_at": s.deleted_at}))
            .collect();
        return json(StatusCode::OK, json!(list));
    }
    let ids: Vec<String> = app
        .state()
        .shipments
        .iter()
        .filter(|(_, s)| !s.deleted)
        .map(|(k, _)| k.clone())
        .collect();
    let list: Vec<Value> = ids.iter().filter_map(|id| admin_view(&app, id)).collect();
    json(StatusCode::OK, json!(list))
}

async fn shipment(AxState(app): AxState<Arc<App>>, Path(id): Path<String>) -> Response {
    admin_view(&app, &id).map_or_else(missing, |v| json(StatusCode::OK, v))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Advance {
    #[serde(default)]
    to: Option<u32>,
}

async fn advance(
    AxState(app): AxState<Arc<App>>,
    Path(id): Path<String>,
    body: Option<Json<Advance>>,
) -> Response {
    let to = body.and_then(|b| b.0.to).unwrap_or(103);
    if ![2, 10, 103, 104].contains(&to) {
        return bad("to must be 2, 10, 103 or 104");
    }
    {
        let mut st = app.state();
        let Some(s) = st.shipments.get_mut(&id).filter(|s| !s.deleted) else {
            return missing();
        };
        s.manual_state = Some(to);
        if s.forced_state.is_some_and(|f| !ERROR_STATES.contains(&f)) {
            s.forced_state = None;
        }
        if !matches!(app.config.clock, crate::Clock::Manual) {
            s.forced_state = Some(to);
        }
    }
    current_state(&app, &id);
    admin_view(&app, &id).map_or_else(missing, |v| json(StatusCode::OK, v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetError {
    state: u32,
    #[serde(default)]
    message: Option<String>,
}

async fn set_error(
    AxState(app): AxState<Arc<App>>,
    Path(id): Path<String>,
    Json(body): Json<SetError>,
) -> Response {
    if !ERROR_STATES.contains(&body.state) {
        return bad(format!("state must be one of {ERROR_STATES:?}"));
    }
    {
        let mut st = app.state();
        let Some(s) = st.shipments.get_mut(&id).filter(|s| !s.deleted) else {
            return missing();
        };
        s.forced_state = Some(body.state);
        s.message = Some(
            body.message
                .unwrap_or_else(|| state_message(body.state).into()),
        );
    }
    admin_view(&app, &id).map_or_else(missing, |v| json(StatusCode::OK, v))
}

/// Clears an error state (what Yubico support does after fixing an address, say).
async fn clear_error(AxState(app): AxState<Arc<App>>, Path(id): Path<String>) -> Response {
    {
        let mut st = app.state();
        let Some(s) = st.shipments.get_mut(&id).filter(|s| !s.deleted) else {
            return missing();
        };
        s.forced_state = None;
        s.message = None;
        if s.product_data.is_none() {
            s.manual_state = s.manual_state.filter(|m| *m < 103);
        }
    }
    admin_view(&app, &id).map_or_else(missing, |v| json(StatusCode::OK, v))
}

async fn credentials(AxState(app): AxState<Arc<App>>) -> Response {
    json(StatusCode::OK, json!(app.state().fido2_methods()))
}

async fn enrollments(AxState(app): AxState<Arc<App>>) -> Response {
    let st = app.state();
    // Okta holds the PIN; the admin view shows only whether it has one.
    let list: Vec<Value> = st
        .enrollments
        .values()
        .map(|e| json!({"id": e.id, "user_id": e.user_id, "status": e.status, "rp_id": e.rp_id, "credential_id": e.credential_id, "serial": e.serial, "has_pin": e.pin.is_some()}))
        .collect();
    json(StatusCode::OK, json!(list))
}

/// Calls each route key has answered (every call past authentication and the rate limit,
/// faults included), since the sandbox started.
async fn calls(AxState(app): AxState<Arc<App>>) -> Response {
    let calls = app.calls.lock().map(|c| c.clone()).unwrap_or_default();
    json(StatusCode::OK, json!(calls))
}

async fn faults(AxState(app): AxState<Arc<App>>) -> Response {
    json(StatusCode::OK, json!(app.state().faults))
}

async fn set_fault(
    AxState(app): AxState<Arc<App>>,
    Path(route): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let f: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return bad(format!("invalid fault: {e}")),
    };
    if !(0.0..=1.0).contains(&f.error_rate) {
        return bad("error_rate must be between 0 and 1");
    }
    if f.status.is_some_and(|s| !(400..=599).contains(&s)) {
        return bad("status must be 400 to 599");
    }
    app.state().faults.insert(route, f);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_fault(AxState(app): AxState<Arc<App>>, Path(route): Path<String>) -> Response {
    app.state().faults.remove(&route);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(AxState(app): AxState<Arc<App>>) -> Response {
    app.state().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn rotate(AxState(app): AxState<Arc<App>>, Path(set): Path<String>) -> Response {
    match app.keys.rotate(&set) {
        Ok(kids) => json(StatusCode::OK, json!({"set": set, "kids": kids})),
        Err(e) => bad(e.to_string()),
    }
}

async fn snapshot(AxState(app): AxState<Arc<App>>) -> Response {
    match app.snapshot() {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": e.to_string()}),
        ),
    }
}

/// Registers an Okta OAuth service app's public JWKS (for private_key_jwt).
async fn register_okta_app(
    AxState(app): AxState<Arc<App>>,
    Path(client_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(jwks) = serde_json::from_slice::<Value>(&body) else {
        return bad("body must be a JWKS");
    };
    if jwks["keys"].as_array().is_none_or(|k| k.is_empty()) {
        return bad("the JWKS needs at least one key");
    }
    app.state().okta_apps.insert(client_id, jwks);
    StatusCode::NO_CONTENT.into_response()
}

/// Registers an Okta Event Hook `{url, authorization}` after Okta's one-time verification
/// call to it succeeds; `initiate-fulfillment-request` then sends it events.
async fn register_event_hook(AxState(app): AxState<Arc<App>>, body: axum::body::Bytes) -> Response {
    let Ok(hook) = serde_json::from_slice::<crate::okta::EventHook>(&body) else {
        return bad("body must be {\"url\": …, \"authorization\": …}");
    };
    if let Err(e) = crate::okta::verify_event_hook(&hook).await {
        return bad(&e);
    }
    let mut st = app.state();
    st.okta_event_hooks.retain(|h| h.url != hook.url);
    st.okta_event_hooks.push(hook);
    StatusCode::NO_CONTENT.into_response()
}

/// The registered hooks' URLs and every delivery's outcome.
async fn event_hooks(AxState(app): AxState<Arc<App>>) -> Response {
    let st = app.state();
    let urls: Vec<&str> = st.okta_event_hooks.iter().map(|h| h.url.as_str()).collect();
    json(
        StatusCode::OK,
        serde_json::json!({"hooks": urls, "deliveries": st.okta_event_deliveries}),
    )
}
