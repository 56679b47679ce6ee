//! `GET /api/v1/users?search=`: the users an expression matches, paged like every Okta list
//! (`limit` up to 200, an `after` cursor, `Link: <…>; rel="next"`). The expression is the
//! part of Okta's search language fpr uses: clauses `<attribute> eq "<value>"` joined by `or`,
//! on `id`, `status` and the string profile attributes; string comparison ignores case. Users
//! of every status are returned.

use std::collections::HashMap;

use axum::extract::Query;

use super::*;
use crate::state::User;

/// Okta's largest page of users.
const PAGE: usize = 200;

fn bad_search(why: &str) -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000031",
        "Invalid search criteria.",
        json!([{ "errorSummary": why }]),
    )
}

/// A parsed clause: attribute and value.
type Clause = (String, String);

/// `a eq "x" or b eq "y"` → its clauses.
fn parse(expr: &str) -> Result<Vec<Clause>, String> {
    let mut out = Vec::new();
    let mut rest = expr.trim_start();
    loop {
        let (attr, after) = rest
            .split_once(' ')
            .ok_or_else(|| format!("expected `<attribute> eq \"<value>\"` at `{rest}`"))?;
        let after = after.trim_start();
        let after = after
            .strip_prefix("eq ")
            .ok_or_else(|| format!("only `eq` is supported, at `{after}`"))?
            .trim_start();
        let body = after
            .strip_prefix('"')
            .ok_or_else(|| format!("a value must be quoted, at `{after}`"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) => value.push(c),
                    None => return Err("an escape ends the expression".into()),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("a quoted value is not closed".into()),
            }
        };
        out.push((attr.to_owned(), value));
        rest = body[end + 1..].trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        rest = rest
            .strip_prefix("or ")
            .ok_or_else(|| format!("only `or` joins clauses, at `{rest}`"))?
            .trim_start();
    }
}

/// The value of attribute `attr` of `u`, as the Users API shows it; None for an attribute
/// the search does not know.
fn attribute(u: &User, attr: &str) -> Option<String> {
    match attr {
        "id" => Some(u.id.clone()),
        "status" => Some(u.status.clone()),
        _ => {
            let profile = attr.strip_prefix("profile.")?;
            let v = super::users::user_json(u);
            Some(
                v.pointer(&format!("/profile/{profile}"))?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    }
}

pub(super) async fn search(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    call(&app, &headers, "okta.users_search", || {
        let limit = super::groups::limit_of(&app, &q, PAGE)?;
        let Some(expr) = q.get("search") else {
            return Err(bad_search("this sandbox lists users only with `search`"));
        };
        let clauses = parse(expr).map_err(|e| bad_search(&e))?;
        let st = app.state();
        let matches = |u: &&User| {
            clauses.iter().any(|(attr, value)| {
                attribute(u, attr).is_some_and(|v| v.eq_ignore_ascii_case(value))
            })
        };
        // The clauses fpr sends name users by id or login: answered from the indexes, the
        // rest by a scan.
        let mut found: Vec<&User> = if clauses
            .iter()
            .all(|(a, _)| a == "id" || a == "profile.login")
        {
            let mut v: Vec<&User> = clauses
                .iter()
                .filter_map(|(_, value)| st.user_by_key(Idp::Okta, value))
                .filter(|u| matches(u))
                .collect();
            v.sort_by(|a, b| a.id.cmp(&b.id));
            v.dedup_by(|a, b| a.id == b.id);
            v
        } else {
            st.users
                .values()
                .filter(|u| u.idp == Idp::Okta)
                .filter(matches)
                .collect()
        };
        if let Some(after) = q.get("after") {
            found.retain(|u| u.id.as_str() > after.as_str());
        }
        let page: Vec<Value> = found
            .iter()
            .take(limit)
            .map(|u| super::users::user_json(u))
            .collect();
        let mut r = json(StatusCode::OK, Value::Array(page));
        if found.len() > limit {
            let mut next = url::Url::parse(&format!("{}/api/v1/users", app.base()))
                .map_err(|_| bad_search("the sandbox's base URL"))?;
            next.query_pairs_mut()
                .append_pair("search", expr)
                .append_pair("limit", &limit.to_string())
                .append_pair("after", &found[limit - 1].id);
            if let Ok(v) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
                r.headers_mut().insert("link", v);
            }
        }
        Ok(r)
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn expressions_parse_with_escapes_and_refuse_the_rest() {
        assert_eq!(
            super::parse(r#"id eq "00u1" or profile.login eq "a\"b\\c@x.com""#).unwrap(),
            vec![
                ("id".to_owned(), "00u1".to_owned()),
                ("profile.login".to_owned(), r#"a"b\c@x.com"#.to_owned())
            ]
        );
        for bad in [
            r#"id sw "00u""#,
            r#"id eq 00u1"#,
            r#"id eq "00u1" and status eq "ACTIVE""#,
            r#"id eq "open"#,
            "",
        ] {
            assert!(super::parse(bad).is_err(), "{bad}");
        }
    }
}
