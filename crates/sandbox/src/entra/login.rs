//! Microsoft login: client credentials, RS256 tokens, the tenant's keys and OpenID metadata.

use super::*;

pub(super) fn issuer(app: &App) -> String {
    format!("{}/{}/v2.0", app.base(), app.config.tenant)
}

/// The claims of an app-only v2.0 access token for `client` and audience `aud`.
pub(crate) fn app_claims(app: &App, client: &str, aud: &str, roles: Value) -> Value {
    let t = now();
    let exp = t + TOKEN_LIFETIME.as_secs() as i64;
    json!({
        "aud": aud, "iss": issuer(app), "iat": t, "nbf": t, "exp": exp,
        "tid": app.config.tenant, "azp": client, "appid": client, "azpacr": "1", "appidacr": "1",
        "idtyp": "app", "oid": guid(), "sub": client, "roles": roles, "ver": "2.0",
    })
}

pub(super) async fn token(
    AxState(app): AxState<Arc<App>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = inject(&app, "entra.token").await {
        return r;
    }
    let c = &app.config;
    if tenant != c.tenant {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    let client = form.get("client_id").cloned().unwrap_or_default();
    let (secret, aud, roles) = if client == c.graph_client_id {
        (
            &c.graph_client_secret,
            GRAPH_AUD.to_owned(),
            json!(["UserAuthenticationMethod.ReadWrite.All", "User.Read.All"]),
        )
    } else if client == c.caller_client_id {
        (
            &c.caller_client_secret,
            c.api_audience.clone(),
            json!(CALLER_ROLES),
        )
    } else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client}' was not found in the directory."),
        );
    };
    if !token_eq(
        form.get("client_secret")
            .map(String::as_str)
            .unwrap_or_default(),
        secret,
    ) {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    if form.get("scope").map(String::as_str) != Some(&format!("{aud}/.default")) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!("The provided value for scope is not valid. Use {aud}/.default."),
        );
    }
    let claims = app_claims(&app, &client, &aud, roles);
    match app.keys.tenant.sign(&claims) {
        Ok(tok) => json(
            StatusCode::OK,
            json!({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME.as_secs(), "ext_expires_in": TOKEN_LIFETIME.as_secs(), "access_token": tok}),
        ),
        Err(_) => aad_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            "Token signing failed.",
        ),
    }
}

pub(super) async fn keys(AxState(app): AxState<Arc<App>>) -> Response {
    json(
        StatusCode::OK,
        json!({"keys": [app.keys.tenant.public_jwk()]}),
    )
}

pub(super) async fn openid(AxState(app): AxState<Arc<App>>) -> Response {
    let base = format!("{}/{}", app.base(), app.config.tenant);
    json(
        StatusCode::OK,
        json!({"issuer": issuer(&app), "token_endpoint": format!("{base}/oauth2/v2.0/token"), "jwks_uri": format!("{base}/discovery/v2.0/keys"), "id_token_signing_alg_values_supported": ["RS256"]}),
    )
}
