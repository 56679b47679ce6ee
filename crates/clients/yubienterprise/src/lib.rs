//! A thin YubiEnterprise API client: FIDO Pre-reg shipments (`/fpr/shipments`) and their edit
//! and cancel through the Delivery API (`/shipments_exact/{id}`), per docs/design/upstream-apis.md §1.
//!
//! It sends what it is given and reads what the orchestrator needs; it never logs request or
//! response bodies (they carry JWEs and addresses). The API token is read at each call.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::Duration;

use fpr_upstream::{Error, SecretSource, json, seg, send};
use secrecy::ExposeSecret as _;
use serde_json::Value;
use url::Url;

const UP: &str = "yubienterprise";

/// What YubiEnterprise returns when it reads back product data (states 103 and 104).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductData {
    /// Serial number (always a string here).
    pub serial_number: String,
    /// Firmware version.
    pub firmware_version: String,
    /// PIN response JWE.
    pub fido_pin_response: String,
    /// Credential response JWEs.
    pub fido_credential_responses: Vec<String>,
}

/// A FIDO Pre-reg shipment as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FprShipment {
    /// YubiEnterprise's id.
    pub shipment_id: String,
    /// State id (number or numeric string in the answer).
    pub state_id: u32,
    /// State message, when given.
    pub state_message: String,
    /// Tracking link, when given.
    pub tracking_link: String,
    /// Product data of the first item, at 103/104.
    pub product_data: Option<ProductData>,
}

/// One shipment as the Delivery API lists it (flat shape): what fpr compares to find an order
/// whose answer was lost.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listed {
    /// YubiEnterprise's id.
    pub shipment_id: String,
    /// `recipient_email`.
    pub email: String,
    /// `recipient_firstname`.
    pub firstname: String,
    /// `recipient_lastname`.
    pub lastname: String,
    /// `street_line1`.
    pub street_line1: String,
    /// `postal_code`.
    pub postal_code: String,
    /// `country_code_2`.
    pub country_code_2: String,
    /// `shipment_request_date` as unix seconds, when the answer has a readable one.
    pub requested_at: Option<i64>,
}

/// One page of `GET /shipments_exact`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The shipments on this page.
    pub shipments: Vec<Listed>,
    /// `total_count`, when given.
    pub total_count: Option<u64>,
}

/// A product of `GET /products`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// `product_id`.
    pub id: u32,
    /// `product_name`.
    pub name: String,
    /// `fido_prereg_capable`, when YubiEnterprise says.
    pub fpr_capable: Option<bool>,
}

/// An inventory bucket of `GET /inventory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// `product_id` of the bucket (the `inventory_product_id` of an order).
    pub id: u32,
    /// `product_name`.
    pub name: String,
    /// `organization_product_quantity`: the credits left.
    pub credits: u64,
    /// `product_mapping`: the physical products it can supply.
    pub products: Vec<u32>,
}

/// The client.
///
/// # Example
///
/// ```no_run
/// # async fn f() -> Result<(), fpr_upstream::Error> {
/// use fpr_yubienterprise::Client;
/// use fpr_upstream::SecretSource;
/// let ye = Client::new("https://api.console.yubico.com/v1".parse().unwrap(), SecretSource::Env("YE_API_TOKEN".into()), std::time::Duration::from_secs(30))?;
/// let s = ye.get_fpr_shipment("U89bvfKKCtQfhnqaFBrAZW").await?;
/// println!("state {}", s.state_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretSource,
}

fn state_id(v: &Value) -> Option<u32> {
    v.as_u64()
        .map(|n| n as u32)
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn string_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

// === impl Client ===

impl Client {
    /// A client for `base` (e.g. `https://api.console.yubico.com/v1`).
    pub fn new(base: Url, token: SecretSource, timeout: Duration) -> Result<Self, Error> {
        Ok(Self {
            http: fpr_upstream::http_client(timeout)?,
            base,
            token,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, Error> {
        let token = self.token.read("yubienterprise.token")?;
        Ok(req
            .bearer_auth(token.expose_secret())
            .header("accept", "application/json"))
    }

    /// `POST /fpr/shipments`; returns YubiEnterprise's shipment id and state.
    pub async fn create_fpr_shipment(&self, body: &Value) -> Result<(String, u32), Error> {
        let (_, bytes) = send(
            UP,
            "POST /fpr/shipments",
            self.auth(self.http.post(self.url("/fpr/shipments")).json(body))?,
        )
        .await?;
        let v: Value = json(UP, &bytes)?;
        let id = v
            .get("shipment_id")
            .and_then(Value::as_str)
            .ok_or(Error::Malformed {
                upstream: UP,
                reason: "no shipment_id".into(),
            })?;
        let state = v
            .pointer("/shipment_state/shipment_state_id")
            .and_then(state_id)
            .unwrap_or(0);
        Ok((id.to_owned(), state))
    }

    /// `GET /fpr/shipments/{id}`.
    pub async fn get_fpr_shipment(&self, id: &str) -> Result<FprShipment, Error> {
        let (_, bytes) = send(
            UP,
            "GET /fpr/shipments/{id}",
            self.auth(
                self.http
                    .get(self.url(&format!("/fpr/shipments/{}", seg(id)))),
            )?,
        )
        .await?;
        let v: Value = json(UP, &bytes)?;
        let state_id = v
            .pointer("/shipment_state/shipment_state_id")
            .or_else(|| v.get("shipment_state_id"))
            .and_then(state_id)
            .ok_or(Error::Malformed {
                upstream: UP,
                reason: "no shipment_state_id".into(),
            })?;
        let message = v
            .pointer("/shipment_state/shipment_state_message")
            .or_else(|| v.get("shipment_state_message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let product_data = if state_id == 103 || state_id == 104 {
            v.pointer("/shipment_items/0/product_data/0")
                .map(|pd| ProductData {
                    serial_number: string_of(&pd["serial_number"]),
                    firmware_version: string_of(&pd["firmware_version"]),
                    fido_pin_response: string_of(&pd["fido_pin_response"]),
                    fido_credential_responses: pd["fido_credential_responses"]
                        .as_array()
                        .map(|a| a.iter().map(string_of).collect())
                        .unwrap_or_default(),
                })
        } else {
            None
        };
        Ok(FprShipment {
            shipment_id: id.to_owned(),
            state_id,
            state_message: message,
            tracking_link: v
                .get("tracking_link")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            product_data,
        })
    }

    /// `GET /shipments_exact?limit={limit}&offset={offset}` (at most 100 a page). The list's
    /// key is unpublished: `shipments`, `data`, `items` or a bare array are read.
    pub async fn list_shipments(&self, offset: u64, limit: u32) -> Result<Page, Error> {
        let (_, bytes) = send(
            UP,
            "GET /shipments_exact",
            self.auth(
                self.http
                    .get(self.url("/shipments_exact"))
                    .query(&[("limit", u64::from(limit.min(100))), ("offset", offset)]),
            )?,
        )
        .await?;
        let v: Value = json(UP, &bytes)?;
        let items = v
            .as_array()
            .or_else(|| {
                ["shipments", "data", "items"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(Value::as_array))
            })
            .ok_or(Error::Malformed {
                upstream: UP,
                reason: "no list of shipments".into(),
            })?;
        let s = |x: &Value, k: &str| x.get(k).map(string_of).unwrap_or_default();
        Ok(Page {
            shipments: items
                .iter()
                .map(|x| Listed {
                    shipment_id: s(x, "shipment_id"),
                    email: s(x, "recipient_email"),
                    firstname: s(x, "recipient_firstname"),
                    lastname: s(x, "recipient_lastname"),
                    street_line1: s(x, "street_line1"),
                    postal_code: s(x, "postal_code"),
                    country_code_2: s(x, "country_code_2"),
                    requested_at: x
                        .get("shipment_request_date")
                        .and_then(Value::as_str)
                        .and_then(|d| {
                            time::OffsetDateTime::parse(
                                d,
                                &time::format_description::well_known::Rfc3339,
                            )
                            .ok()
                        })
                        .map(time::OffsetDateTime::unix_timestamp),
                })
                .collect(),
            total_count: v.get("total_count").and_then(Value::as_u64),
        })
    }

    /// `PUT /shipments_exact/{id}` with the flat body (recipient, address, delivery type).
    pub async fn update_exact(&self, id: &str, flat: &Value) -> Result<(), Error> {
        send(
            UP,
            "PUT /shipments_exact/{id}",
            self.auth(
                self.http
                    .put(self.url(&format!("/shipments_exact/{}", seg(id))))
                    .json(flat),
            )?,
        )
        .await
        .map(|_| ())
    }

    /// `DELETE /shipments_exact/{id}` (allowed while the state is below 10).
    pub async fn delete_exact(&self, id: &str) -> Result<(), Error> {
        send(
            UP,
            "DELETE /shipments_exact/{id}",
            self.auth(
                self.http
                    .delete(self.url(&format!("/shipments_exact/{}", seg(id)))),
            )?,
        )
        .await
        .map(|_| ())
    }

    /// `GET /products`. The list's key is unpublished: `products`, `data`, `items` or a bare
    /// array are read.
    pub async fn products(&self) -> Result<Vec<Product>, Error> {
        let (_, bytes) = send(
            UP,
            "GET /products",
            self.auth(self.http.get(self.url("/products")))?,
        )
        .await?;
        let v: Value = json(UP, &bytes)?;
        Ok(list_of(&v, &["products", "data", "items"])?
            .iter()
            .filter_map(|x| {
                Some(Product {
                    id: u32::try_from(x.get("product_id")?.as_u64()?).ok()?,
                    name: x.get("product_name").map(string_of).unwrap_or_default(),
                    fpr_capable: x.get("fido_prereg_capable").and_then(Value::as_bool),
                })
            })
            .collect())
    }

    /// `GET /inventory`: the organization's buckets and their credits.
    pub async fn inventory(&self) -> Result<Vec<Bucket>, Error> {
        let (_, bytes) = send(
            UP,
            "GET /inventory",
            self.auth(self.http.get(self.url("/inventory")))?,
        )
        .await?;
        let v: Value = json(UP, &bytes)?;
        Ok(
            list_of(&v, &["organization_product_inventory", "data", "items"])?
                .iter()
                .filter_map(|x| {
                    Some(Bucket {
                        id: u32::try_from(x.get("product_id")?.as_u64()?).ok()?,
                        name: x.get("product_name").map(string_of).unwrap_or_default(),
                        credits: x
                            .get("organization_product_quantity")
                            .and_then(Value::as_u64)
                            .unwrap_or(0),
                        products: x
                            .get("product_mapping")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok()))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                })
                .collect(),
        )
    }

    /// `GET /products`, as a health check.
    pub async fn ping(&self) -> Result<(), Error> {
        send(
            UP,
            "GET /products",
            self.auth(self.http.get(self.url("/products")))?,
        )
        .await
        .map(|_| ())
    }
}

/// The list in a YubiEnterprise answer: a bare array or the array under one of `keys`.
fn list_of<'a>(v: &'a Value, keys: &[&str]) -> Result<&'a Vec<Value>, Error> {
    v.as_array()
        .or_else(|| {
            keys.iter()
                .find_map(|k| v.get(*k).and_then(Value::as_array))
        })
        .ok_or(Error::Malformed {
            upstream: UP,
            reason: format!("no list under {keys:?}"),
        })
}

/// Whether a state is one of YubiEnterprise's error states (docs/design/upstream-apis.md §1.7).
pub fn is_error_state(state: u32) -> bool {
    matches!(state, 1 | 6 | 7 | 8 | 9 | 99 | 105 | 106)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_ids_as_numbers_or_strings() {
        assert_eq!(state_id(&serde_json::json!(103)), Some(103));
        assert_eq!(state_id(&serde_json::json!("104")), Some(104));
        assert_eq!(state_id(&serde_json::json!("x")), None);
        assert_eq!(string_of(&serde_json::json!(3632071)), "3632071");
        assert!(is_error_state(7) && !is_error_state(103));
    }
}
