//! Listing, deleting and marking the preregistered factors of a user.

use super::*;

pub(super) fn enrollment_json(app: &App, e: &Enrollment) -> Value {
    json!({
        "id": e.id, "factorType": "webauthn", "provider": "FIDO", "vendorName": "FIDO", "fulfillmentProvider": "yubico",
        "status": e.status, "created": e.created, "lastUpdated": e.last_updated,
        "profile": {"credentialId": e.credential_id, "authenticatorName": "YubiKey", "presetPinAvailable": e.pin.is_some()},
        "_links": {"self": {"href": format!("{}{PREFIX}/users/{}/enrollments/{}", app.base(), e.user_id, e.id), "hints": {"allow": ["DELETE"]}}}
    })
}

pub(super) async fn list(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    call(&app, &headers, "okta.list", || {
        let st = app.state();
        let u = okta_user(&st, &user).ok_or_else(|| not_found(&format!("User {user}")))?;
        let list: Vec<Value> = st
            .enrollments
            .values()
            .filter(|e| e.user_id == u.id)
            .map(|e| enrollment_json(&app, e))
            .collect();
        Ok(json(StatusCode::OK, Value::Array(list)))
    })
    .await
}

/// Applies `op` to the user's enrollment `id` (404 when it is not theirs).
pub(super) async fn enrollment_op(
    app: &App,
    headers: &HeaderMap,
    route: &str,
    user: &str,
    id: &str,
    op: impl FnOnce(&mut std::collections::BTreeMap<String, Enrollment>),
) -> Response {
    call(app, headers, route, || {
        let mut st = app.state();
        let uid = okta_user(&st, user)
            .map(|u| u.id.clone())
            .unwrap_or_default();
        if st.enrollments.get(id).is_none_or(|e| e.user_id != uid) {
            return Err(not_found(&format!("Enrollment {id}")));
        }
        op(&mut st.enrollments);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

pub(super) async fn remove(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    enrollment_op(&app, &headers, "okta.delete", &user, &id, |all| {
        all.remove(&id);
    })
    .await
}

pub(super) async fn mark_error(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((user, id)): Path<(String, String)>,
) -> Response {
    enrollment_op(&app, &headers, "okta.mark_error", &user, &id, |all| {
        if let Some(e) = all.get_mut(&id) {
            e.status = "FULFILLMENT_ERRORED".into();
            e.last_updated = rfc3339(now());
        }
    })
    .await
}
