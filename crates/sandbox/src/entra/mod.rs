//! Microsoft Entra ID: the token endpoint (client credentials, RS256 tokens with a published
//! JWKS) and the Graph endpoints fpr uses: users, manager, groups and their transitive members,
//! FIDO2 creation options and methods.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{Value, json};

use crate::http::{bearer, guid, inject, json, now, rfc3339, token_eq};
use crate::state::{Challenge, Fido2Method, Idp, User};
use crate::{App, TOKEN_LIFETIME};

mod fido2;
mod groups;
mod login;
mod users;
pub use self::fido2::public_key_options;
use self::fido2::*;
use self::groups::*;
pub(crate) use self::login::app_claims;
use self::login::*;
use self::users::*;

/// The RP id Entra puts in creation options.
pub const RP_ID: &str = "login.microsoft.com";
const GRAPH_AUD: &str = "https://graph.microsoft.com";

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/{first}/oauth2/v2.0/token", post(token))
        .route("/{first}/discovery/v2.0/keys", get(keys))
        .route(
            "/{first}/v2.0/.well-known/openid-configuration",
            get(openid),
        )
        .route("/{first}/users/{id}", get(user))
        .route("/{first}/users/{id}/manager", get(manager))
        .route("/{first}/groups", get(groups))
        .route("/{first}/groups/{id}", get(group))
        .route("/{first}/groups/{id}/transitiveMembers", get(members))
        .route(
            "/{first}/groups/{id}/transitiveMembers/microsoft.graph.user",
            get(user_members),
        )
        .route(
            "/{first}/users/{id}/authentication/fido2Methods",
            get(list_methods).post(register),
        )
        .route(
            "/{first}/users/{id}/authentication/fido2Methods/{method}",
            get(method_or_options).delete(delete_method),
        )
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        json!({"error": {"code": code, "message": message, "innerError": {"date": rfc3339(now()), "request-id": guid(), "client-request-id": guid()}}}),
    )
}

fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}"),
            "error_codes": [code],
            "timestamp": rfc3339(now()),
            "trace_id": guid(),
            "correlation_id": guid(),
        }),
    )
}

/// The app roles the caller app is granted: every role of fpr's API.
pub const CALLER_ROLES: [&str; 3] = ["Shipments.Read", "Shipments.Create", "Shipments.Admin"];

/// Auth, version check, rate limit and faults for a Graph call.
async fn graph_gate(
    app: &App,
    headers: &HeaderMap,
    version: &str,
    route: &str,
) -> Result<(), Response> {
    if version != "v1.0" && version != "beta" {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid version.",
        ));
    }
    let ok = bearer(headers)
        .and_then(|t| crate::tokens::verify(t, &[app.keys.tenant.public_jwk()]).ok())
        .is_some_and(|c| c["aud"] == GRAPH_AUD && c["exp"].as_i64().is_some_and(|e| e > now()));
    if !ok {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty or invalid.",
        ));
    }
    if let Some(limit) = app.config.graph_rate_per_s {
        let (n, reset) = app
            .rate
            .lock()
            .map(|mut r| r.hit("graph"))
            .unwrap_or((0, 1));
        if n > limit {
            let mut r = graph_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests.",
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(reset));
            return Err(r);
        }
    }
    if let Some(r) = inject(app, route).await {
        return Err(r);
    }
    Ok(())
}
