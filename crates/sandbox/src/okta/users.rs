//! The Users API (shipping data) and `initiate-fulfillment-request`.

use super::*;

pub(super) fn okta_user<'a>(st: &'a crate::State, key: &str) -> Option<&'a User> {
    st.user_by_key(Idp::Okta, key)
}

pub(super) async fn initiate(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    call(&app, &headers, "okta.initiate", || {
        let v = parse(&body)?;
        check_provider(&v)?;
        let user = v.get("userId").and_then(Value::as_str).unwrap_or_default();
        if okta_user(&app.state(), user).is_none() {
            return Err(not_found(&format!("User {user}")));
        }
        let data = v
            .get("fulfillmentData")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ok = !data.is_empty()
            && data.iter().all(|d| {
                ["productId", "customizationId", "inventoryProductId"]
                    .iter()
                    .all(|k| {
                        d.get(*k)
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                    })
            });
        if !ok {
            return Err(invalid(
                "fulfillmentData",
                "fulfillmentData must be an array of {productId, customizationId, inventoryProductId} strings",
            ));
        }
        let target = okta_user(&app.state(), user).cloned();
        if let Some(u) = target {
            let events = data
                .iter()
                .map(|d| super::event_hooks::initiate_event(&app, &u, d))
                .collect();
            super::event_hooks::deliver(app.clone(), events);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

/// A user as the Users and Groups APIs show it.
pub(super) fn user_json(u: &User) -> Value {
    json!({
        "id": u.id, "status": u.status, "created": "2024-01-01T00:00:00.000Z",
        "profile": {
            "login": u.login, "firstName": u.given_name, "lastName": u.surname, "email": u.mail,
            "secondEmail": u.other_mails.first(), "primaryPhone": u.phone, "mobilePhone": Value::Null,
            "streetAddress": u.address.street, "city": u.address.city, "state": u.address.region,
            "zipCode": u.address.postal_code, "countryCode": u.address.country, "organization": u.organization,
        }
    })
}

pub(super) async fn user(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    call(&app, &headers, "okta.users", || {
        let st = app.state();
        let u = okta_user(&st, &id).ok_or_else(|| not_found(&format!("User {id}")))?;
        let body = user_json(u);
        let etag = format!(
            "W/\"{}\"",
            fpr_webauthn::b64e(&fpr_webauthn::sha256(body.to_string().as_bytes())[..9])
        );
        let mut r = json(StatusCode::OK, body);
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert("etag", v);
        }
        Ok(r)
    })
    .await
}
