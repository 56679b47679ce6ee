//! `POST /activate` (Okta opens and verifies Yubico's responses and keeps the PIN) and `POST /send-pin` (the PIN's only way out: the mailbox).

use super::*;

pub(super) async fn activate(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    call(&app, &headers, "okta.activate", || do_activate(&app, &body)).await
}

pub(super) fn do_activate(app: &App, body: &[u8]) -> Result<Response, Response> {
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

pub(super) fn open(
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

pub(super) async fn send_pin(
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
