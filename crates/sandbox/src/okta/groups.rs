//! The Groups API: `GET /api/v1/groups?q=…` (a name prefix search), `GET /api/v1/groups/{id}`
//! and `GET /api/v1/groups/{id}/users`, paged with `limit` and an `after` cursor given in
//! `Link: <…>; rel="next"`, as Okta pages every list.

use std::collections::HashMap;

use axum::extract::Query;

use super::*;

fn group_json(g: &crate::state::Group) -> Value {
    json!({"id": g.id, "type": "OKTA_GROUP", "objectClass": ["okta:user_group"],
        "profile": {"name": g.name, "description": Value::Null}})
}

pub(super) fn limit_of(
    app: &App,
    q: &HashMap<String, String>,
    max: usize,
) -> Result<usize, Response> {
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => max,
        Some(Ok(l)) if l >= 1 => l.min(max),
        Some(_) => return Err(invalid("limit", "limit must be a positive integer")),
    };
    Ok(limit.min(app.config.page_size.unwrap_or(max).max(1)))
}

pub(super) async fn groups(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    call(&app, &headers, "okta.groups", || {
        let limit = limit_of(&app, &q, 10_000)?;
        let prefix = q.get("q").map(|p| p.to_lowercase());
        let st = app.state();
        let list: Vec<Value> = st
            .groups
            .values()
            .filter(|g| {
                g.idp == Idp::Okta
                    && prefix
                        .as_ref()
                        .is_none_or(|p| g.name.to_lowercase().starts_with(p))
            })
            .take(limit)
            .map(group_json)
            .collect();
        Ok(json(StatusCode::OK, Value::Array(list)))
    })
    .await
}

pub(super) async fn group(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    call(&app, &headers, "okta.groups", || {
        let st = app.state();
        st.groups
            .get(&id)
            .filter(|g| g.idp == Idp::Okta)
            .map(|g| json(StatusCode::OK, group_json(g)))
            .ok_or_else(|| not_found(&format!("Group {id}")))
    })
    .await
}

pub(super) async fn members(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    call(&app, &headers, "okta.group_members", || {
        let limit = limit_of(&app, &q, 1000)?;
        let st = app.state();
        if !st.groups.get(&id).is_some_and(|g| g.idp == Idp::Okta) {
            return Err(not_found(&format!("Group {id}")));
        }
        let users = st.group_users(&id);
        // The cursor is the last user id of the page before.
        let start = q
            .get("after")
            .and_then(|a| users.iter().position(|u| u.id == *a).map(|i| i + 1))
            .unwrap_or(0);
        let page: Vec<Value> = users
            .iter()
            .skip(start)
            .take(limit)
            .map(|u| super::users::user_json(u))
            .collect();
        let this = format!("{}/api/v1/groups/{id}/users?limit={limit}", app.base());
        let mut r = json(StatusCode::OK, Value::Array(page));
        let mut link = format!("<{this}>; rel=\"self\"");
        if start + limit < users.len() {
            let last = &users[start + limit - 1].id;
            link = format!("{link}, <{this}&after={last}>; rel=\"next\"");
        }
        if let Ok(v) = HeaderValue::from_str(&link) {
            r.headers_mut().insert("link", v);
        }
        Ok(r)
    })
    .await
}
