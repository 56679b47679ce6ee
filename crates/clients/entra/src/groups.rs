//! Groups: find one by id or display name, and list its transitive members that are users,
//! page by page (`@odata.nextLink`), with the profile attributes that fill shipping data.

use std::collections::BTreeMap;

use fpr_upstream::{Error, json, send};
use secrecy::ExposeSecret as _;
use serde_json::Value;

use super::{Client, Method, UP};

/// A Graph group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Object id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A user among a group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Object id.
    pub id: String,
    /// UPN.
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// String attributes by Graph's name (`givenName`, `streetAddress`, …); of a list
    /// (`businessPhones`), the first element.
    pub attributes: BTreeMap<String, String>,
}

/// The user attributes a member is read with.
pub const MEMBER_SELECT: &str = "id,displayName,userPrincipalName,mail,otherMails,givenName,surname,\
companyName,businessPhones,mobilePhone,streetAddress,city,state,postalCode,country,usageLocation";

/// Graph's page size for members (its maximum is 999).
const PAGE: u32 = 999;

fn group_of(v: &Value) -> Option<Group> {
    Some(Group {
        id: v.get("id")?.as_str()?.to_owned(),
        name: v
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    })
}

fn member_of(v: &Value) -> Option<Member> {
    let attributes: BTreeMap<String, String> = v
        .as_object()?
        .iter()
        .filter(|(k, _)| !k.starts_with('@'))
        .filter_map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => a.first()?.as_str()?.to_owned(),
                _ => return None,
            };
            (!s.is_empty()).then(|| (k.clone(), s))
        })
        .collect();
    Some(Member {
        id: attributes.get("id")?.clone(),
        upn: attributes
            .get("userPrincipalName")
            .cloned()
            .unwrap_or_default(),
        display_name: attributes.get("displayName").cloned().unwrap_or_default(),
        attributes,
    })
}

// === impl Client ===

impl Client {
    /// `GET /groups/{id}`; `None` when there is no such group.
    pub async fn group(&self, id: &str) -> Result<Option<Group>, Error> {
        let path = format!("/groups/{}?$select=id,displayName", fpr_upstream::seg(id));
        match self.get("GET /groups/{id}", "v1.0", &path).await {
            Ok(v) => Ok(group_of(&v)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /groups?$filter=displayName eq '…'`: every group with that display name.
    pub async fn groups_named(&self, name: &str) -> Result<Vec<Group>, Error> {
        let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
        let path = format!(
            "/groups?$filter={}&$select=id,displayName",
            fpr_upstream::seg(&filter)
        );
        let v = self.get("GET /groups", "v1.0", &path).await?;
        Ok(v.get("value")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(group_of).collect())
            .unwrap_or_default())
    }

    /// The users among the group's transitive members
    /// (`GET /groups/{id}/transitiveMembers/microsoft.graph.user`), every page.
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<Member>, Error> {
        let first = self.graph_url(
            "v1.0",
            &format!(
                "/groups/{}/transitiveMembers/microsoft.graph.user?$select={MEMBER_SELECT}&$top={PAGE}",
                fpr_upstream::seg(group_id)
            ),
        );
        let base = self.s.graph_base.as_str().trim_end_matches('/').to_owned();
        let mut next = Some(first);
        let mut out = Vec::new();
        while let Some(url) = next.take() {
            // A next link is followed only to Graph itself: the token goes nowhere else.
            if !url.starts_with(&format!("{base}/")) {
                return Err(Error::Malformed {
                    upstream: UP,
                    reason: "@odata.nextLink points away from Graph".into(),
                });
            }
            let token = self.token().await?;
            let (_, body) = send(
                UP,
                "GET /groups/{id}/transitiveMembers",
                self.http.get(url).bearer_auth(token.expose_secret()),
            )
            .await?;
            let v: Value = json(UP, &body)?;
            out.extend(
                v.get("value")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|m| {
                        m.get("@odata.type")
                            .and_then(Value::as_str)
                            .is_none_or(|t| t == "#microsoft.graph.user")
                    })
                    .filter_map(member_of),
            );
            next = v
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Ok(out)
    }
}

/// Whether any of `methods` is a key of one of `aaguids` (compared without case).
pub fn has_key_of(methods: &[Method], aaguids: &[&str]) -> bool {
    methods
        .iter()
        .any(|m| aaguids.iter().any(|a| a.eq_ignore_ascii_case(&m.aaguid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_string_attributes_and_first_phones() {
        let m = member_of(&serde_json::json!({
            "@odata.type": "#microsoft.graph.user",
            "id": "u1", "userPrincipalName": "a@x.test", "displayName": "A B",
            "businessPhones": ["+1 555", "+1 556"], "mobilePhone": null, "city": "",
            "otherMails": []
        }))
        .unwrap();
        assert_eq!(m.id, "u1");
        assert_eq!(m.upn, "a@x.test");
        assert_eq!(m.attributes["businessPhones"], "+1 555");
        assert!(!m.attributes.contains_key("city"));
        assert!(!m.attributes.contains_key("mobilePhone"));
        assert!(!m.attributes.contains_key("@odata.type"));
    }
}
