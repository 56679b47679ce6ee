//! The admin API's directory edits: groups of either IdP (`/_sandbox/groups`), a passkey a
//! user already has (`/_sandbox/users/{id}/passkeys`): a Graph FIDO2 method, or an active Okta
//! preregistered factor, as if someone had registered a key before fpr; an inventory bucket's
//! credits (`/_sandbox/inventory/{product_id}`); and Graph's challenge lifetime
//! (`/_sandbox/entra/challenge-lifetime`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::App;
use crate::http::{guid, json, now, okta_id, rfc3339};
use crate::state::{Enrollment, Fido2Method, Group, Idp};

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/_sandbox/groups", get(list).post(create))
        .route("/_sandbox/groups/{id}/members", post(add_member))
        .route("/_sandbox/users/{id}/passkeys", post(add_passkey))
        .route("/_sandbox/inventory/{product_id}", put(set_credits))
        .route(
            "/_sandbox/entra/challenge-lifetime",
            put(set_challenge_lifetime),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lifetime {
    /// Seconds; null: as the request asks.
    seconds: Option<i64>,
}

/// Sets how long Graph's challenges live from now on, whatever the request asks (tests of
/// expiring challenges against a sandbox already running).
async fn set_challenge_lifetime(
    AxState(app): AxState<Arc<App>>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<Lifetime>(&body) {
        Ok(l) if l.seconds.is_none_or(|s| s > 0) => {
            app.state().challenge_lifetime_s = l.seconds;
            json(StatusCode::OK, json!({"seconds": l.seconds}))
        }
        Ok(_) => bad("seconds must be positive"),
        Err(e) => bad(format!("invalid lifetime: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credits {
    quantity: i64,
}

/// Sets the credits left in an inventory bucket.
async fn set_credits(
    AxState(app): AxState<Arc<App>>,
    Path(product_id): Path<u32>,
    body: axum::body::Bytes,
) -> Response {
    let c: Credits = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return bad(format!("invalid credits: {e}")),
    };
    let mut st = app.state();
    match st.inventory.iter_mut().find(|b| b.product_id == product_id) {
        Some(b) => {
            b.quantity = c.quantity;
            json(StatusCode::OK, json!(b))
        }
        None => json(StatusCode::NOT_FOUND, json!({"error": "no such bucket"})),
    }
}

fn bad(message: impl Into<String>) -> Response {
    json(StatusCode::BAD_REQUEST, json!({"error": message.into()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    idp: Idp,
    name: String,
    /// Users (id or login) and, for Entra, groups (id or name) of the same IdP.
    #[serde(default)]
    members: Vec<String>,
}

async fn list(
    AxState(app): AxState<Arc<App>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let st = app.state();
    let list: Vec<&Group> = st
        .groups
        .values()
        .filter(|g| {
            q.get("idp").is_none_or(|i| {
                matches!(
                    (i.as_str(), g.idp),
                    ("entra", Idp::Entra) | ("okta", Idp::Okta)
                )
            })
        })
        .collect();
    json(StatusCode::OK, json!(list))
}

async fn create(AxState(app): AxState<Arc<App>>, body: axum::body::Bytes) -> Response {
    let n: NewGroup = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return bad(format!("invalid group: {e}")),
    };
    if n.name.trim().is_empty() {
        return bad("a group needs a name");
    }
    let mut st = app.state();
    let mut members = Vec::new();
    for m in &n.members {
        match member_id(&st, n.idp, m) {
            Ok(id) => members.push(id),
            Err(r) => return r,
        }
    }
    let g = Group {
        id: match n.idp {
            Idp::Entra => guid(),
            Idp::Okta => okta_id("00g"),
        },
        idp: n.idp,
        name: n.name,
        members,
    };
    st.groups.insert(g.id.clone(), g.clone());
    json(StatusCode::CREATED, json!(g))
}

/// The id of a user (id or login) or, in Entra, a group (id or name) of `idp`.
fn member_id(st: &crate::State, idp: Idp, m: &str) -> Result<String, Response> {
    if let Some(u) = st.user_by_key(idp, m) {
        Ok(u.id.clone())
    } else if let Some(g) = st.group_by_key(idp, m).filter(|_| idp == Idp::Entra) {
        Ok(g.id.clone())
    } else {
        Err(bad(format!("member {m}: no such user (or Entra group)")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    member: String,
}

/// Adds a member to a group (a user joining it).
async fn add_member(
    AxState(app): AxState<Arc<App>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let n: NewMember = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => return bad(format!("invalid member: {e}")),
    };
    let mut st = app.state();
    let Some(idp) = st.groups.get(&id).map(|g| g.idp) else {
        return json(StatusCode::NOT_FOUND, json!({"error": "no such group"}));
    };
    let member = match member_id(&st, idp, &n.member) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(g) = st.groups.get_mut(&id) else {
        return json(StatusCode::NOT_FOUND, json!({"error": "no such group"}));
    };
    if !g.members.contains(&member) {
        g.members.push(member);
    }
    json(StatusCode::OK, json!(g))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewPasskey {
    /// Entra: the AAGUID (default: a YubiKey 5 NFC's).
    #[serde(default)]
    aaguid: Option<String>,
    /// Okta: the factor's status (default `ACTIVE`).
    #[serde(default)]
    status: Option<String>,
}

async fn add_passkey(
    AxState(app): AxState<Arc<App>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let p: NewPasskey = if body.is_empty() {
        NewPasskey::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(p) => p,
            Err(e) => return bad(format!("invalid passkey: {e}")),
        }
    };
    let mut st = app.state();
    let Some(user) = st
        .users
        .get(&id)
        .or_else(|| {
            st.users
                .values()
                .find(|u| u.login.eq_ignore_ascii_case(&id))
        })
        .cloned()
    else {
        return json(StatusCode::NOT_FOUND, json!({"error": "no such user"}));
    };
    // 32 bytes: Graph's method id is their unpadded base64url and "1" (one `=` removed).
    let cred = fpr_webauthn::sha256(guid().as_bytes());
    let credential_id = fpr_webauthn::b64e(&cred);
    let made: Value = match user.idp {
        Idp::Entra => {
            let product = fpr_domain::yubikey::product_by_id(1).map(|p| p.aaguid);
            let aaguid = p
                .aaguid
                .unwrap_or_else(|| product.unwrap_or_default().into());
            let model = fpr_domain::yubikey::model_by_aaguid(&aaguid)
                .map_or("Unknown authenticator", |m| m.name);
            let m = Fido2Method {
                id: format!("{credential_id}1"),
                user_id: user.id.clone(),
                display_name: model.into(),
                created: rfc3339(now()),
                aaguid,
                model: model.into(),
                attestation_level: "attested".into(),
                credential_id,
            };
            st.add_fido2(m.clone());
            json!(m)
        }
        Idp::Okta => {
            let t = rfc3339(now());
            let e = Enrollment {
                id: okta_id("fwf"),
                user_id: user.id.clone(),
                status: p.status.unwrap_or_else(|| "ACTIVE".into()),
                response_key_jwk: String::new(),
                request_id: String::new(),
                options: Value::Null,
                rp_id: String::new(),
                credential_id: Some(credential_id),
                pin: None,
                serial: None,
                created: t.clone(),
                last_updated: t,
            };
            st.enrollments.insert(e.id.clone(), e.clone());
            json!({"id": e.id, "user_id": e.user_id, "status": e.status})
        }
    };
    json(StatusCode::CREATED, made)
}
