//! Groups: find one by id or name, and list its members page by page (the `Link: rel="next"`
//! header, as Okta pages every list).

use fpr_upstream::{Error, json};
use serde_json::Value;

use super::{Client, GROUP_SCOPES, UP, User, user_of};

/// An Okta group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `00g…` id.
    pub id: String,
    /// `profile.name`.
    pub name: String,
}

/// Okta's largest page of group members.
const PAGE: u32 = 1000;

fn group_of(v: &Value) -> Option<Group> {
    Some(Group {
        id: v.get("id")?.as_str()?.to_owned(),
        name: v
            .pointer("/profile/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

// === impl Client ===

impl Client {
    /// `req` with the Groups API's authorization (an OAuth app's token of `okta.groups.read`).
    async fn groups_auth(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, Error> {
        Ok(req
            .header(
                "authorization",
                self.authorization_for(GROUP_SCOPES, &self.groups_token)
                    .await?,
            )
            .header("accept", "application/json"))
    }

    /// `GET /api/v1/groups/{id}`; `None` when there is no such group.
    pub async fn group(&self, id: &str) -> Result<Option<Group>, Error> {
        let url = self.url(&format!("/api/v1/groups/{}", fpr_upstream::seg(id)));
        match self
            .send(
                "GET /api/v1/groups/{id}",
                self.groups_auth(self.http.get(url)).await?,
            )
            .await
        {
            Ok((_, b)) => Ok(group_of(&json::<Value>(UP, &b)?)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every group whose name is exactly `name` (`GET /api/v1/groups?q=…`, a prefix search,
    /// narrowed here).
    pub async fn groups_named(&self, name: &str) -> Result<Vec<Group>, Error> {
        let url = self.url(&format!(
            "/api/v1/groups?q={}&limit=200",
            fpr_upstream::seg(name)
        ));
        let (_, b) = self
            .send(
                "GET /api/v1/groups",
                self.groups_auth(self.http.get(url)).await?,
            )
            .await?;
        let list: Vec<Value> = json(UP, &b)?;
        Ok(list
            .iter()
            .filter_map(group_of)
            .filter(|g| g.name == name)
            .collect())
    }

    /// The group's members (`GET /api/v1/groups/{id}/users`), every page.
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<User>, Error> {
        let base = self.url("/");
        let mut next = Some(self.url(&format!(
            "/api/v1/groups/{}/users?limit={PAGE}",
            fpr_upstream::seg(group_id)
        )));
        let mut out = Vec::new();
        while let Some(url) = next.take() {
            // A next link is followed only to the org itself: the token goes nowhere else.
            if !url.starts_with(&base) {
                return Err(Error::Malformed {
                    upstream: UP,
                    reason: "the next page's link points away from the Okta org".into(),
                });
            }
            let (_, b, link) = fpr_upstream::send_paced(
                Some(&self.pacer),
                UP,
                "GET /api/v1/groups/{id}/users",
                self.groups_auth(self.http.get(url)).await?,
            )
            .await?;
            let page: Vec<Value> = json(UP, &b)?;
            if page.is_empty() {
                break;
            }
            for u in &page {
                out.push(user_of(u)?);
            }
            next = link;
        }
        Ok(out)
    }
}
