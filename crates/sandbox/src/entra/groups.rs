//! Graph groups: `GET /groups` (`$filter=displayName eq '…'`), `GET /groups/{id}`, and
//! `GET /groups/{id}/transitiveMembers[/microsoft.graph.user]`, paged with `$top` and
//! `@odata.nextLink` (a `$skiptoken`), as Graph does.

use super::*;

fn group_json(g: &crate::state::Group) -> Value {
    json!({"id": g.id, "displayName": g.name, "securityEnabled": true, "mailEnabled": false,
        "groupTypes": [], "description": Value::Null})
}

fn no_group(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

pub(super) async fn groups(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(version): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = graph_gate(&app, &headers, &version, "graph.groups").await {
        return r;
    }
    // Only the filter fpr sends: displayName eq '<name>' ('' escapes a quote).
    let name = match q.get("$filter") {
        None => None,
        Some(f) => match f
            .trim()
            .strip_prefix("displayName eq '")
            .and_then(|r| r.strip_suffix('\''))
        {
            Some(n) => Some(n.replace("''", "'")),
            None => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Unsupported query.",
                );
            }
        },
    };
    let st = app.state();
    let list: Vec<Value> = st
        .groups
        .values()
        .filter(|g| g.idp == Idp::Entra && name.as_ref().is_none_or(|n| g.name == *n))
        .map(group_json)
        .collect();
    json(
        StatusCode::OK,
        json!({"@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#groups"), "value": list}),
    )
}

pub(super) async fn group(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = graph_gate(&app, &headers, &version, "graph.groups").await {
        return r;
    }
    let st = app.state();
    match st.groups.get(&id).filter(|g| g.idp == Idp::Entra) {
        Some(g) => json(StatusCode::OK, group_json(g)),
        None => no_group(&id),
    }
}

pub(super) async fn members(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    page_of_members(&app, &headers, &version, &id, &q, false).await
}

pub(super) async fn user_members(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path((version, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    page_of_members(&app, &headers, &version, &id, &q, true).await
}

async fn page_of_members(
    app: &Arc<App>,
    headers: &HeaderMap,
    version: &str,
    id: &str,
    q: &HashMap<String, String>,
    users_only: bool,
) -> Response {
    if let Err(r) = graph_gate(app, headers, version, "graph.group_members").await {
        return r;
    }
    let top = match q.get("$top").map(|t| t.parse::<usize>()) {
        None => 100,
        Some(Ok(t)) if (1..=999).contains(&t) => t,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                "Invalid page size specified: '$top'. Must be between 1 and 999 inclusive.",
            );
        }
    };
    let page = top.min(app.config.page_size.unwrap_or(999).max(1));
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let st = app.state();
    if !st.groups.get(id).is_some_and(|g| g.idp == Idp::Entra) {
        return no_group(id);
    }
    let mut all: Vec<Value> = Vec::new();
    for u in st.group_users(id) {
        let mut v = user_json(u, version, q.get("$select").map(String::as_str));
        if let Some(o) = v.as_object_mut() {
            o.remove("@odata.context");
            o.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        }
        all.push(v);
    }
    if !users_only {
        // Nested groups are members too (transitively), listed after the users.
        all.extend(
            st.groups
                .values()
                .filter(|g| g.idp == Idp::Entra && g.id != id && nested_in(&st, id, &g.id))
                .map(|g| {
                    let mut v = group_json(g);
                    v["@odata.type"] = json!("#microsoft.graph.group");
                    v
                }),
        );
    }
    let rest: Vec<Value> = all.into_iter().skip(skip).collect();
    let more = rest.len() > page;
    let value: Vec<Value> = rest.into_iter().take(page).collect();
    let mut body = json!({
        "@odata.context": format!("https://graph.microsoft.com/{version}/$metadata#directoryObjects"),
        "value": value,
    });
    if more {
        let cast = if users_only {
            "/microsoft.graph.user"
        } else {
            ""
        };
        let mut next = format!(
            "{}/{version}/groups/{id}/transitiveMembers{cast}?$top={top}&$skiptoken={}",
            app.base(),
            skip + page
        );
        if let Some(select) = q.get("$select") {
            next.push_str(&format!("&$select={select}"));
        }
        body["@odata.nextLink"] = json!(next);
    }
    json(StatusCode::OK, body)
}

/// Whether group `inner` is (transitively) a member of `outer`.
fn nested_in(st: &crate::State, outer: &str, inner: &str) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![outer.to_owned()];
    while let Some(g) = stack.pop() {
        let Some(group) = st.groups.get(&g).filter(|_| seen.insert(g.clone())) else {
            continue;
        };
        for m in &group.members {
            if m == inner {
                return true;
            }
            if st.groups.contains_key(m) {
                stack.push(m.clone());
            }
        }
    }
    false
}
