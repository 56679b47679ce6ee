//! Microsoft Entra ID: the token endpoint (client credentials, RS256 tokens with a published
//! JWKS) and the Graph endpoints fpr uses: users, manager, FIDO2 creation options and methods.

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

fn issuer(app: &App) -> String {
    format!("{}/{}/v2.0", app.base(), app.config.tenant)
}

/// The app roles the caller app is granted: every role of fpr's API.
pub const CALLER_ROLES: [&str; 3] = ["Shipments.Read", "Shipments.Create", "Shipments.Admin"];

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

async fn token(
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

async fn keys(AxState(app): AxState<Arc<App>>) -> Response {
    json(
        StatusCode::OK,
        json!({"keys": [app.keys.tenant.public_jwk()]}),
    )
}

async fn openid(AxState(app): AxState<Arc<App>>) -> Response {
    let base = format!("{}/{}", app.base(), app.config.tenant);
    json(
        StatusCode::OK,
        json!({"issuer": issuer(&app), "token_endpoint": format!("{base}/oauth2/v2.0/token"), "jwks_uri": format!("{base}/discovery/v2.0/keys"), "id_token_signing_alg_values_supported": ["RS256"]}),
    )
}

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
        .and_then(|t| fpr_jose::jwt::verify_rs256(t, &[app.keys.tenant.public_jwk()]).ok())
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

/// Graph's 404 for an unknown user.
fn no_user(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn find_user<'a>(st: &'a crate::State, key: &str) -> Option<&'a User> {
    let key = key.trim_start_matches("('").trim_end_matches("')");
    st.user_by_key(Idp::Entra, key)
}

fn user_json(u: &User, version: &str, select: Option<&str>) -> Value {
    let mut full = json!({
        "@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#users/$entity"),
        "businessPhones": if u.phone.is_empty() { json!([]) } else { json!([u.phone]) },
        "displayName": u.display_name(),
        "givenName": u.given_name,
        "id": u.id,
        "jobTitle": Value::Null,
        "mail": if u.mail.is_empty() { Value::Null } else { json!(u.mail) },
        "mobilePhone": Value::Null,
        "officeLocation": Value::Null,
        "preferredLanguage": "en-US",
        "surname": u.surname,
        "userPrincipalName": u.login,
    });
    let Some(select) = select else { return full };
    let mut out = serde_json::Map::new();
    for field in select.split(',').map(str::trim) {
        let v = match field {
            "otherMails" => json!(u.other_mails),
            "companyName" => json!(u.organization),
            "streetAddress" => json!(u.address.street),
            "city" => json!(u.address.city),
            "state" => json!(u.address.region),
            "postalCode" => json!(u.address.postal_code),
            "country" => json!(u.address.country),
            f => full.get_mut(f).map(Value::take).unwrap_or(Value::Null),
        };
        out.insert(field.to_owned(), v);
    }
    out.insert(
        "@odata.context".into(),
        json!(format!(
            "https://graph.microsoft.com/{version}/$metadata#users({select})/$entity"
        )),
    );
    Value::Object(out)
}

async fn user(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = graph_gate(&app, &headers, &version, "graph.users").await {
        return r;
    }
    let st = app.state();
    match find_user(&st, &id) {
        Some(u) => json(
            StatusCode::OK,
            user_json(u, &version, q.get("$select").map(String::as_str)),
        ),
        None => no_user(&id),
    }
}

async fn manager(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = graph_gate(&app, &headers, &version, "graph.manager").await {
        return r;
    }
    let st = app.state();
    let Some(u) = find_user(&st, &id) else {
        return no_user(&id);
    };
    match u.manager_id.as_ref().and_then(|m| st.users.get(m)) {
        Some(m) => {
            let mut v = user_json(m, &version, q.get("$select").map(String::as_str));
            v["@odata.type"] = json!("#microsoft.graph.user");
            json(StatusCode::OK, v)
        }
        None => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "Resource 'manager' does not exist or one of its queried reference-property objects are not present.",
        ),
    }
}

/// The model name Graph shows for an AAGUID (FIDO MDS descriptions; several products share one).
pub fn model_of(aaguid: &str) -> &'static str {
    match aaguid {
        "a25342c0-3cdc-4414-8e46-f4807fca511c" | "d7781e5d-e353-46aa-afe2-3ca49f13332a" => {
            "YubiKey 5 Series with NFC"
        }
        "fcc0118f-cd45-435b-8da1-9782b2da0715" | "79f3c8ba-9e35-484b-8f47-53a5a0f5c630" => {
            "YubiKey 5 Series with NFC - FIPS"
        }
        "19083c3d-8383-4b18-bc03-8f1c9ab2fd1b" | "ff4dac45-ede8-4ec2-aced-cf66103f4335" => {
            "YubiKey 5 Series"
        }
        "c5ef55ff-ad9a-4b9f-b580-adebafe026d0" => "YubiKey 5Ci",
        "e77e3c64-05e3-428b-8824-0cbeb04b829d" | "b7d3f68e-88a6-471e-9ecf-2df26d041ede" => {
            "Security Key NFC by Yubico"
        }
        _ => "Security key",
    }
}

/// Graph's method id: unpadded base64url of the credential id plus the count of `=` removed.
pub fn method_id(credential_id: &[u8]) -> String {
    let pad = (3 - credential_id.len() % 3) % 3;
    format!("{}{pad}", fpr_webauthn::b64e(credential_id))
}

fn method_json(m: &Fido2Method) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
        "id": m.id, "displayName": m.display_name, "createdDateTime": m.created,
        "aaGuid": m.aaguid, "model": m.model, "attestationCertificates": ["sandbox"],
        "attestationLevel": m.attestation_level, "passkeyType": "deviceBound",
    })
}

async fn list_methods(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = graph_gate(&app, &headers, &version, "graph.fido2_list").await {
        return r;
    }
    let st = app.state();
    let Some(u) = find_user(&st, &id) else {
        return no_user(&id);
    };
    let value: Vec<Value> = st
        .fido2
        .iter()
        .filter(|m| m.user_id == u.id)
        .map(method_json)
        .collect();
    json(
        StatusCode::OK,
        json!({"@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#users('{}')/authentication/fido2Methods", u.id), "value": value}),
    )
}

async fn method_or_options(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id, method)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if method.starts_with("creationOptions") {
        return creation_options(&app, &headers, &version, &id, &method, &q).await;
    }
    if let Err(r) = graph_gate(&app, &headers, &version, "graph.fido2_list").await {
        return r;
    }
    let st = app.state();
    let uid = find_user(&st, &id)
        .map(|u| u.id.clone())
        .unwrap_or_default();
    match st.fido2.iter().find(|m| m.user_id == uid && m.id == method) {
        Some(m) => json(StatusCode::OK, method_json(m)),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The requested method was not found.",
        ),
    }
}

fn encode(version: &str, bytes: &[u8]) -> String {
    // beta answers in padded standard base64 (as captured from real tenants); v1.0 in
    // unpadded base64url. Callers must accept both (UPSTREAM-APIS.md §2.5).
    if version == "beta" {
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
    } else {
        fpr_webauthn::b64e(bytes)
    }
}

async fn creation_options(
    app: &App,
    headers: &HeaderMap,
    version: &str,
    id: &str,
    method: &str,
    q: &HashMap<String, String>,
) -> Response {
    if let Err(r) = graph_gate(app, headers, version, "graph.creation_options").await {
        return r;
    }
    if q.contains_key("challengeTimeoutInMinutes") {
        return graph_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "methodNotAllowed",
            "The method is not supported for this URL.",
        );
    }
    let minutes: i64 = match (version, method) {
        (_, "creationOptions") => 5,
        ("beta", m) => {
            let n = m
                .strip_prefix("creationOptions(challengeTimeoutInMinutes=")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|n| n.parse::<i64>().ok());
            match n {
                Some(n) if (5..=43_200).contains(&n) => n,
                _ => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        "invalidRequest",
                        "challengeTimeoutInMinutes must be between 5 and 43200.",
                    );
                }
            }
        }
        _ => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Resource not found for the segment 'creationOptions'.",
            );
        }
    };
    let mut st = app.state();
    let Some(u) = find_user(&st, id).cloned() else {
        return no_user(id);
    };
    // 50 bytes: beta's standard base64 then always carries padding, as captured tenants do.
    let mut challenge = [0u8; 50];
    let _ = fpr_jose::util::fill_random(&mut challenge);
    let expires = now() + minutes * 60;
    st.challenges.insert(
        fpr_webauthn::b64e(&challenge),
        Challenge {
            user_id: u.id.clone(),
            expires_at: expires,
            used: false,
        },
    );
    let exclude: Vec<Value> = st
        .fido2
        .iter()
        .filter(|m| m.user_id == u.id)
        .filter_map(|m| fpr_webauthn::b64d_any(&m.credential_id))
        .map(|c| json!({"type": "public-key", "id": encode(version, &c), "transports": ["usb", "nfc"]}))
        .collect();
    let body = json!({
        "@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#microsoft.graph.webauthnCredentialCreationOptions"),
        "challengeTimeoutDateTime": rfc3339(expires),
        "publicKey": {
            "rp": {"id": RP_ID, "name": "Microsoft"},
            "user": {"id": encode(version, u.id.as_bytes()), "name": u.login, "displayName": u.display_name()},
            "challenge": encode(version, &challenge),
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
            "timeout": 60000,
            "excludeCredentials": exclude,
            "authenticatorSelection": {"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"},
            "attestation": "direct",
            "extensions": {"hmacCreateSecret": true, "enforceCredentialProtectionPolicy": true, "credentialProtectionPolicy": "userVerificationOptional"}
        }
    });
    json(StatusCode::OK, body)
}

fn bad(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "badRequest", message)
}

async fn register(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = graph_gate(&app, &headers, &version, "graph.fido2_post").await {
        return r;
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad("The request is missing a fido2AuthenticationMethod entity"),
    };
    let display = body
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if display.is_empty() || display.chars().count() > 30 {
        return bad("displayName must be 1 to 30 characters.");
    }
    let Some(pkc) = body.get("publicKeyCredential").and_then(Value::as_object) else {
        return bad("publicKeyCredential is required.");
    };
    for forbidden in ["rawId", "type", "authenticatorAttachment"] {
        if pkc.contains_key(forbidden) {
            return bad(&format!(
                "Property '{forbidden}' does not exist on type 'microsoft.graph.webauthnPublicKeyCredential'."
            ));
        }
    }
    let field = |p: &str| {
        body.pointer(p)
            .and_then(Value::as_str)
            .and_then(fpr_webauthn::b64d_any)
    };
    let (Some(cred_id), Some(client_data), Some(att)) = (
        field("/publicKeyCredential/id"),
        field("/publicKeyCredential/response/clientDataJSON"),
        field("/publicKeyCredential/response/attestationObject"),
    ) else {
        return bad(
            "publicKeyCredential.id, response.clientDataJSON and response.attestationObject are required (base64url).",
        );
    };
    let (user_id, challenge) = {
        let st = app.state();
        let Some(u) = find_user(&st, &id) else {
            return no_user(&id);
        };
        let Ok(cd) = fpr_webauthn::ClientData::parse(&client_data) else {
            return bad("clientDataJSON is malformed.");
        };
        match st.challenges.get(&cd.challenge) {
            Some(c) if c.user_id == u.id && !c.used && c.expires_at > now() => {}
            Some(c) if c.used => return bad("The challenge has already been used."),
            Some(c) if c.expires_at <= now() => return bad("The challenge has expired."),
            _ => return bad("The challenge was not issued to this user."),
        }
        if st
            .fido2
            .iter()
            .any(|m| m.credential_id == fpr_webauthn::b64e(&cred_id))
        {
            return bad("This credential is already registered.");
        }
        (u.id.clone(), cd.challenge)
    };
    let origins = vec![
        format!("https://{RP_ID}"),
        "https://login.microsoftonline.com".to_owned(),
    ];
    let allowed = app.config.allowed_aaguids.as_ref().map(|l| {
        l.iter()
            .filter_map(|a| fpr_webauthn::parse_aaguid(a))
            .collect()
    });
    let policy = fpr_webauthn::AttestationPolicy {
        enforce: app.config.enforce_attestation,
        trust_roots: vec![app.keys.ca.root_der().to_vec()],
        allowed_aaguids: allowed,
    };
    let expected = fpr_webauthn::Expected {
        challenge: &challenge,
        rp_id: RP_ID,
        origins: &origins,
        require_uv: true,
    };
    let reg = match fpr_webauthn::check_registration(&client_data, &att, &expected, &policy) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(user.id = %user_id, error = %e, "Graph refused a FIDO2 registration");
            return bad(&format!("Registration failed: {e}"));
        }
    };
    if reg.credential_id != cred_id {
        return bad("publicKeyCredential.id does not match the attested credential.");
    }
    let aaguid = fpr_webauthn::aaguid_string(&reg.aaguid);
    let model = model_of(&aaguid);
    let m = Fido2Method {
        id: method_id(&cred_id),
        user_id: user_id.clone(),
        display_name: display.to_owned(),
        created: rfc3339(now()),
        aaguid,
        model: model.into(),
        attestation_level: if reg.attestation.trusted {
            "attested".into()
        } else {
            "notAttested".into()
        },
        credential_id: fpr_webauthn::b64e(&cred_id),
    };
    let mut st = app.state();
    if let Some(c) = st.challenges.get_mut(&challenge) {
        c.used = true;
    }
    st.fido2.push(m.clone());
    tracing::info!(user.id = %user_id, method.id = %m.id, "FIDO2 method registered");
    json(StatusCode::CREATED, method_json(&m))
}

async fn delete_method(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id, method)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = graph_gate(&app, &headers, &version, "graph.fido2_delete").await {
        return r;
    }
    let mut st = app.state();
    let uid = find_user(&st, &id)
        .map(|u| u.id.clone())
        .unwrap_or_default();
    let before = st.fido2.len();
    st.fido2.retain(|m| !(m.user_id == uid && m.id == method));
    if st.fido2.len() == before {
        return graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The requested method was not found.",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}
