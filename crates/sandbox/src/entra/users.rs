//! Graph users and their managers, with `$select` as Graph applies it.

use super::*;

/// Graph's 404 for an unknown user.
pub(super) fn no_user(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

pub(super) fn find_user<'a>(st: &'a crate::State, key: &str) -> Option<&'a User> {
    let key = key.trim_start_matches("('").trim_end_matches("')");
    st.user_by_key(Idp::Entra, key)
}

pub(super) fn user_json(u: &User, version: &str, select: Option<&str>) -> Value {
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
            // Graph requires a usage location (ISO 3166-1 alpha-2) for licensed users.
            "usageLocation" => json!(u.address.country),
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

pub(super) async fn user(
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

pub(super) async fn manager(
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
