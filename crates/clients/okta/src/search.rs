//! Many users in one call: `GET /api/v1/users?search=` with one `id eq` or `profile.login eq`
//! clause a user, joined by `or`. Okta's search index may lag a change by a little, and a
//! user can be named by a login shortname, which no clause matches: a name the search does
//! not answer is looked up alone (`GET /api/v1/users/{id}`), which stays the authority.

use fpr_upstream::{Error, json};
use serde_json::Value;

use super::{Client, UP, User, user_of};

/// At most this many users are asked for in one search (the URL stays a few kilobytes).
pub const MAX_SEARCH: usize = 50;

/// Whether `key` has the shape of an Okta user id (`00u` and 17 letters or digits).
fn is_user_id(key: &str) -> bool {
    key.len() == 20 && key.starts_with("00u") && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The search clause that matches the user `key` names; None when `key` cannot be put in
/// one (a control character), so it is looked up alone.
fn clause(key: &str) -> Option<String> {
    if key.is_empty() || key.chars().any(char::is_control) {
        return None;
    }
    if is_user_id(key) {
        return Some(format!("id eq \"{key}\""));
    }
    let quoted = key.replace('\\', "\\\\").replace('"', "\\\"");
    Some(format!("profile.login eq \"{quoted}\""))
}

/// Whether `u` is the user `key` names (by id, or by login, which Okta compares without case).
fn names(key: &str, u: &User) -> bool {
    u.id == key
        || u.profile
            .get("login")
            .is_some_and(|l| l.eq_ignore_ascii_case(key))
}

// === impl Client ===

impl Client {
    /// The users `keys` name (ids or logins), in their order: `None` for a name no user has.
    /// One search call for up to [`MAX_SEARCH`] of them, then one lookup for each name the
    /// search did not answer. A failed search fails every name with its error, except a
    /// refused one (an org that does not allow the search), after which each name is looked
    /// up alone.
    pub async fn users(&self, keys: &[String]) -> Vec<Result<Option<User>, Error>> {
        let mut found: Vec<Option<User>> = vec![None; keys.len()];
        let clauses: Vec<(usize, String)> = keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| clause(k).map(|c| (i, c)))
            .collect();
        for chunk in clauses.chunks(MAX_SEARCH).filter(|c| c.len() > 1) {
            let expr = chunk
                .iter()
                .map(|(_, c)| c.as_str())
                .collect::<Vec<_>>()
                .join(" or ");
            match self.search(&expr, chunk.len()).await {
                Ok(users) => {
                    for (i, _) in chunk {
                        found[*i] = users.iter().find(|u| names(&keys[*i], u)).cloned();
                    }
                }
                Err(Error::Rejected { .. } | Error::NotFound { .. }) => {}
                Err(e) => return keys.iter().map(|_| Err(e.clone())).collect(),
            }
        }
        let alone = keys.iter().zip(&found).map(|(k, f)| async move {
            match f {
                Some(u) => Ok(Some(u.clone())),
                None => match self.user(k).await {
                    Ok(u) => Ok(Some(u)),
                    Err(Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                },
            }
        });
        futures_util::future::join_all(alone).await
    }

    /// `GET /api/v1/users?search=…&limit=…`: one page (the caller asks for at most `limit`
    /// users, each matched by at most one clause).
    async fn search(&self, expr: &str, limit: usize) -> Result<Vec<User>, Error> {
        let mut url =
            url::Url::parse(&self.url("/api/v1/users")).map_err(|e| Error::Malformed {
                upstream: UP,
                reason: format!("the org's URL: {e}"),
            })?;
        url.query_pairs_mut()
            .append_pair("search", expr)
            .append_pair("limit", &limit.max(1).to_string());
        let (_, b) = self
            .send(
                "GET /api/v1/users?search",
                self.auth(self.http.get(url)).await?,
            )
            .await?;
        json::<Vec<Value>>(UP, &b)?.iter().map(user_of).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_quote_logins_and_recognise_ids() {
        assert_eq!(
            clause("00u1abcdefghijklmnop").as_deref(),
            Some("id eq \"00u1abcdefghijklmnop\"")
        );
        assert_eq!(
            clause(r#"a"b\c@example.com"#).as_deref(),
            Some(r#"profile.login eq "a\"b\\c@example.com""#)
        );
        assert_eq!(clause("line\nbreak"), None);
        assert_eq!(clause(""), None);
    }

    #[test]
    fn a_user_is_named_by_id_or_login_in_any_case() {
        let u = User {
            id: "00u1abcdefghijklmnop".into(),
            status: "ACTIVE".into(),
            profile: [("login".to_owned(), "Kim@Example.com".to_owned())].into(),
        };
        assert!(names("00u1abcdefghijklmnop", &u));
        assert!(names("kim@example.com", &u));
        assert!(!names("kim", &u));
    }
}
