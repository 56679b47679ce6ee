//! `POST /enroll`: Okta makes the response key pair and seals the PIN and credential requests to Yubico's transport key.

use super::*;

pub(super) async fn enroll(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    call(&app, &headers, "okta.enroll", || do_enroll(&app, &body)).await
}

pub(super) fn do_enroll(app: &App, body: &[u8]) -> Result<Response, Response> {
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
