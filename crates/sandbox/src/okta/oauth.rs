//! The org authorization server: client credentials with a private_key_jwt assertion.

use super::*;

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status,
        json!({"error": error, "error_description": description}),
    )
}

/// `POST /oauth2/v1/token`: client credentials with a `private_key_jwt` assertion signed by a
/// key registered for the service app (`PUT /_sandbox/okta/apps/{client_id}`).
pub(super) async fn token(
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
    // The scopes a sandbox app is granted: what fpr may ask for.
    const GRANTED: [&str; 3] = ["okta.users.manage", "okta.users.read", "okta.groups.read"];
    let scopes: Vec<String> = f("scope")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() || !scopes.iter().all(|s| GRANTED.contains(&s.as_str())) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "One or more scopes are not configured for the authorization server resource.",
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
    // EC keys verify ES256/384 assertions; RSA keys RS256 ones.
    let verified = crate::tokens::verify(assertion, &keys).is_ok();
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
    let mut st = app.state();
    st.okta_tokens.insert(token.clone(), (client, now() + 3600));
    st.okta_token_scopes.insert(token.clone(), scopes);
    drop(st);
    json(
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": 3600, "access_token": token, "scope": f("scope")}),
    )
}
