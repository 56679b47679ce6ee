//! Graph's FIDO2 methods: creation options (beta and v1.0 encodings), registration checked as Entra checks it, list and delete.

use super::*;

/// The model name Graph shows for an AAGUID: FIDO MDS's description, from the workspace's table.
pub fn model_of(aaguid: &str) -> &'static str {
    fpr_domain::yubikey::model_by_aaguid(aaguid).map_or("Security key", |m| m.name)
}

/// Graph's method id: unpadded base64url of the credential id plus the count of `=` removed.
pub fn method_id(credential_id: &[u8]) -> String {
    let pad = (3 - credential_id.len() % 3) % 3;
    format!("{}{pad}", fpr_webauthn::b64e(credential_id))
}

pub(super) fn method_json(m: &Fido2Method) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
        "id": m.id, "displayName": m.display_name, "createdDateTime": m.created,
        "aaGuid": m.aaguid, "model": m.model, "attestationCertificates": ["sandbox"],
        "attestationLevel": m.attestation_level, "passkeyType": "deviceBound",
    })
}

pub(super) async fn list_methods(
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
    let value: Vec<Value> = st.fido2_of(&u.id).map(method_json).collect();
    json(
        StatusCode::OK,
        json!({"@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#users('{}')/authentication/fido2Methods", u.id), "value": value}),
    )
}

pub(super) async fn method_or_options(
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
    match st.fido2_of(&uid).find(|m| m.id == method) {
        Some(m) => json(StatusCode::OK, method_json(m)),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The requested method was not found.",
        ),
    }
}

pub(super) fn encode(version: &str, bytes: &[u8]) -> String {
    // beta answers in padded standard base64 (as captured from real tenants); v1.0 in
    // unpadded base64url. Callers must accept both (docs/design/upstream-apis.md §2.5).
    if version == "beta" {
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
    } else {
        fpr_webauthn::b64e(bytes)
    }
}

pub(super) async fn creation_options(
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
    let lifetime = st
        .challenge_lifetime_s
        .or(app.config.challenge_lifetime_s)
        .unwrap_or(minutes * 60);
    let expires = now() + lifetime;
    st.challenges.insert(
        fpr_webauthn::b64e(&challenge),
        Challenge {
            user_id: u.id.clone(),
            expires_at: expires,
            used: false,
        },
    );
    let exclude: Vec<Value> = st
        .fido2_of(&u.id)
        .filter_map(|m| fpr_webauthn::b64d_any(&m.credential_id))
        .map(|c| json!({"type": "public-key", "id": encode(version, &c), "transports": ["usb", "nfc"]}))
        .collect();
    let body = json!({
        "@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#microsoft.graph.webauthnCredentialCreationOptions"),
        "challengeTimeoutDateTime": rfc3339(expires),
        "publicKey": public_key_options(version, &u.id, &u.login, &u.display_name(), &challenge, exclude),
    });
    json(StatusCode::OK, body)
}

/// The `publicKey` member of Graph's creation options, as the sandbox issues them: ids and
/// challenge in the encoding of `version`, the extensions a real tenant asks for.
pub fn public_key_options(
    version: &str,
    user_id: &str,
    login: &str,
    display_name: &str,
    challenge: &[u8],
    exclude: Vec<Value>,
) -> Value {
    json!({
        "rp": {"id": RP_ID, "name": "Microsoft"},
        "user": {"id": encode(version, user_id.as_bytes()), "name": login, "displayName": display_name},
        "challenge": encode(version, challenge),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
        "timeout": 60000,
        "excludeCredentials": exclude,
        "authenticatorSelection": {"authenticatorAttachment": "cross-platform", "requireResidentKey": true, "userVerification": "required"},
        "attestation": "direct",
        "extensions": {"hmacCreateSecret": true, "enforceCredentialProtectionPolicy": true, "credentialProtectionPolicy": "userVerificationOptional"}
    })
}

pub(super) fn bad(message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, "badRequest", message)
}

pub(super) async fn register(
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
        if st.fido2_credential_known(&fpr_webauthn::b64e(&cred_id)) {
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
    st.add_fido2(m.clone());
    tracing::info!(user.id = %user_id, method.id = %m.id, "FIDO2 method registered");
    json(StatusCode::CREATED, method_json(&m))
}

pub(super) async fn delete_method(
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
    if !st.remove_fido2(&uid, &method) {
        return graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The requested method was not found.",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}
