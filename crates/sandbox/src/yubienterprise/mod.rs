//! YubiEnterprise (`/v1/...`) and Yubico's fulfilment of FIDO Pre-reg shipments.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use fpr_jose::{Curve, SigningKey};
use serde_json::{Value, json};

use crate::http::{bearer, inject, json, now, token_eq, ye_id};
use crate::state::{ProductData, Shipment};
use crate::{App, Clock};

pub use fpr_domain::yubikey::PRODUCTS;

mod catalog;
mod exact;
mod fpr;
mod fulfilment;
use self::catalog::*;
use self::exact::*;
use self::fpr::*;
use self::fulfilment::*;

/// The message of a state.
pub fn state_message(s: u32) -> &'static str {
    match s {
        1 => "Incomplete Shipping Request",
        2 => "Pending fulfillment",
        6 => "Incomplete",
        7 => "Address is undeliverable or could not be understood",
        8 => "Error: Processing Error, contact Support",
        9 => "Error: DPL Match",
        10 => "Locked for processing",
        99 => "Error: Shipping error, contact Support",
        103 => "Shipment Shipped",
        104 => "Delivered",
        105 => "Shipment Lost/Missing",
        106 => "Delivery Exception",
        _ => "In progress",
    }
}

/// The error states an admin may set.
pub const ERROR_STATES: &[u32] = &[1, 6, 7, 8, 9, 99, 105, 106];

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/fpr/shipments", axum::routing::post(create))
        .route("/v1/fpr/shipments/{id}", get(get_fpr))
        .route("/v1/shipments_exact", get(list_exact))
        .route(
            "/v1/shipments_exact/{id}",
            get(get_exact).put(put_exact).delete(delete_exact),
        )
        .route("/v1/products", get(products))
        .route("/v1/inventory", get(inventory))
        .route(
            "/.well-known/yubico-transport-keys.jwks",
            get(transport_jwks),
        )
        .route("/.well-known/yubico-sign.jwks", get(sign_jwks))
}

fn bad_request(field: &str, message: String) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"error": "Bad Request", "message": message, "field": field}),
    )
}

fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        json!({"error": "Not Found", "message": "Shipment not found"}),
    )
}

/// Bearer auth, then the faults configured for `route`.
async fn gate(app: &App, headers: &HeaderMap, route: &str) -> Result<(), Response> {
    auth(app, headers)?;
    match inject(app, route).await {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

fn auth(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    match bearer(headers) {
        Some(t) if token_eq(t, &app.config.ye_token) => Ok(()),
        _ => Err(json(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Unauthorized", "message": "Invalid credentials"}),
        )),
    }
}

/// Field rules of docs/design/upstream-apis.md §1.8 (shared with the orchestrator through `fpr-domain`):
/// the first violation becomes the 400, naming the field.
fn check_contact(
    get: &dyn Fn(&str) -> Option<Value>,
    rprefix: &str,
    aprefix: &str,
) -> Result<(), Response> {
    let company = if rprefix.is_empty() {
        "recipient"
    } else {
        "recipient_company"
    };
    let as_string = |n: &str| get(n).and_then(|v| v.as_str().map(str::to_owned));
    match fpr_domain::contact::check(&as_string, rprefix, aprefix, company)
        .into_iter()
        .next()
    {
        Some(v) => Err(bad_request(&v.field, format!("{}: {}", v.field, v.rule))),
        None => Ok(()),
    }
}

fn check_delivery_type(v: Option<&Value>) -> Result<u64, Response> {
    match v.and_then(Value::as_u64) {
        Some(d @ (1 | 2)) => Ok(d),
        _ => Err(bad_request(
            "delivery_type",
            "delivery_type must be 1 (normal) or 2 (expedited)".into(),
        )),
    }
}

/// The state a shipment is in now; fulfils it on reaching 103.
pub(crate) fn current_state(app: &App, id: &str) -> Option<u32> {
    let (state, needs_fulfil) = {
        let st = app.state();
        let s = st.shipments.get(id).filter(|s| !s.deleted)?;
        if let Some(f) = s.forced_state {
            return Some(f);
        }
        let state = clock_state(app, s);
        (state, state >= 103 && s.product_data.is_none())
    };
    if needs_fulfil && let Err(reason) = fulfil(app, id) {
        tracing::warn!(shipment.id = %id, %reason, "Fulfilment failed");
        let mut st = app.state();
        if let Some(s) = st.shipments.get_mut(id) {
            s.forced_state = Some(8);
            s.message = Some(format!("{}: {reason}", state_message(8)));
        }
        return Some(8);
    }
    Some(state)
}

/// Body of the admin API's shipment views.
pub(crate) fn admin_view(app: &App, id: &str) -> Option<Value> {
    let state = current_state(app, id)?;
    let st = app.state();
    st.shipments.get(id).map(|s| {
        let mut v = fpr_view(s, state);
        v["kind"] = json!(s.kind);
        v["created_at"] = json!(s.created_at);
        v
    })
}
