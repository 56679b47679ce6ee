//! YubiEnterprise (`/v1/...`) and Yubico's fulfilment of FIDO Pre-reg shipments.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use fpr_jose::jwe::{self, Algorithms};
use fpr_jose::protocol::{
    self, AttestationResponseJson, CredentialRequest, CredentialResponse, PinRequest, PinResponse,
    RegistrationResponseJson,
};
use fpr_jose::{Curve, PublicJwk, SigningKey, jws};
use serde_json::{Value, json};

use crate::http::{bearer, inject, json, now, token_eq, ye_id};
use crate::state::{ProductData, Shipment};
use crate::{App, Clock};

/// A YubiKey model the sandbox knows.
pub struct Product {
    /// `product_id`.
    pub id: u32,
    /// Name.
    pub name: &'static str,
    /// Whether FIDO Pre-reg can program it.
    pub fpr: bool,
    /// AAGUID of the model at firmware 5.7.
    pub aaguid: &'static str,
    /// Firmware the sandbox reports.
    pub firmware: &'static str,
}

/// The product table (ids from UPSTREAM-APIS.md §1.6, AAGUIDs from §2.10).
pub const PRODUCTS: &[Product] = &[
    Product {
        id: 1,
        name: "YubiKey 5 NFC",
        fpr: true,
        aaguid: "a25342c0-3cdc-4414-8e46-f4807fca511c",
        firmware: "5.7.1",
    },
    Product {
        id: 2,
        name: "YubiKey 5 Nano",
        fpr: false,
        aaguid: "19083c3d-8383-4b18-bc03-8f1c9ab2fd1b",
        firmware: "5.7.1",
    },
    Product {
        id: 3,
        name: "YubiKey 5C",
        fpr: false,
        aaguid: "19083c3d-8383-4b18-bc03-8f1c9ab2fd1b",
        firmware: "5.7.1",
    },
    Product {
        id: 4,
        name: "YubiKey 5C Nano",
        fpr: false,
        aaguid: "19083c3d-8383-4b18-bc03-8f1c9ab2fd1b",
        firmware: "5.7.1",
    },
    Product {
        id: 5,
        name: "YubiKey 5Ci",
        fpr: false,
        aaguid: "c5ef55ff-ad9a-4b9f-b580-adebafe026d0",
        firmware: "5.4.3",
    },
    Product {
        id: 7,
        name: "Security Key NFC by Yubico",
        fpr: false,
        aaguid: "e77e3c64-05e3-428b-8824-0cbeb04b829d",
        firmware: "5.7.1",
    },
    Product {
        id: 29,
        name: "YubiKey 5C NFC",
        fpr: true,
        aaguid: "a25342c0-3cdc-4414-8e46-f4807fca511c",
        firmware: "5.7.1",
    },
    Product {
        id: 54,
        name: "YubiKey 5 NFC FIPS",
        fpr: true,
        aaguid: "fcc0118f-cd45-435b-8da1-9782b2da0715",
        firmware: "5.7.2",
    },
    Product {
        id: 55,
        name: "YubiKey 5C NFC FIPS",
        fpr: true,
        aaguid: "fcc0118f-cd45-435b-8da1-9782b2da0715",
        firmware: "5.7.2",
    },
];

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

/// Field rules of UPSTREAM-APIS.md §1.8 (shared with the orchestrator through `fpr-domain`):
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

async fn create(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.create").await {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("body", "body is not JSON".into());
    };
    if let Err(r) = check_delivery_type(body.get("delivery_type")) {
        return r;
    }
    let recipient = body.get("recipient").cloned().unwrap_or(Value::Null);
    let address = body.get("mailing_address").cloned().unwrap_or(Value::Null);
    if !recipient.is_object() {
        return bad_request("recipient", "recipient is required".into());
    }
    if !address.is_object() {
        return bad_request("mailing_address", "mailing_address is required".into());
    }
    let get = |n: &str| recipient.get(n).or_else(|| address.get(n)).cloned();
    if let Err(r) = check_contact(&get, "recipient", "mailing_address") {
        return r;
    }
    let items = body
        .get("shipment_items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.len() != 1 {
        return bad_request(
            "shipment_items",
            "exactly one shipment item is allowed for FIDO Pre-reg".into(),
        );
    }
    let item = &items[0];
    let num = |k: &str| item.get(k).and_then(Value::as_u64);
    let Some(product) =
        num("product_id").and_then(|id| PRODUCTS.iter().find(|p| u64::from(p.id) == id))
    else {
        return bad_request("shipment_items[0].product_id", "unknown product_id".into());
    };
    if !product.fpr {
        return bad_request(
            "shipment_items[0].product_id",
            format!("{} cannot be pre-registered", product.name),
        );
    }
    if num("product_quantity") != Some(1) {
        return bad_request(
            "shipment_items[0].product_quantity",
            "product_quantity must be 1".into(),
        );
    }
    let customization = item
        .get("customization_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !app
        .config
        .customization_ids
        .iter()
        .any(|c| c == customization)
    {
        return bad_request(
            "shipment_items[0].customization_id",
            "unknown customization_id".into(),
        );
    }
    let custom = item
        .get("product_customizations")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null);
    let pin_ok = custom
        .get("fido_pin_request")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty() && s.len() <= 65536);
    let creds = custom
        .get("fido_credential_requests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !pin_ok {
        return bad_request(
            "shipment_items[0].product_customizations[0].fido_pin_request",
            "fido_pin_request is required".into(),
        );
    }
    if creds.len() != 1
        || !creds[0]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.len() <= 65536)
    {
        return bad_request(
            "shipment_items[0].product_customizations[0].fido_credential_requests",
            "exactly one credential request is required".into(),
        );
    }
    let Some(inv_id) = num("inventory_product_id") else {
        return bad_request(
            "shipment_items[0].inventory_product_id",
            "inventory_product_id is required".into(),
        );
    };
    let id = ye_id();
    {
        let mut st = app.state();
        let Some(bucket) = st
            .inventory
            .iter_mut()
            .find(|b| u64::from(b.product_id) == inv_id)
        else {
            return bad_request(
                "shipment_items[0].inventory_product_id",
                "unknown inventory_product_id".into(),
            );
        };
        if !bucket.mapping.contains(&product.id) {
            return bad_request(
                "shipment_items[0].inventory_product_id",
                format!("inventory {inv_id} cannot supply product {}", product.id),
            );
        }
        if bucket.quantity <= 0 {
            return bad_request(
                "shipment_items[0].inventory_product_id",
                format!("inventory {inv_id} is exhausted"),
            );
        }
        bucket.quantity -= 1;
        let shipment = Shipment {
            id: id.clone(),
            kind: "fpr".into(),
            request: body.clone(),
            created_at: now(),
            forced_state: None,
            message: None,
            manual_state: None,
            product_data: None,
            deleted: false,
            inventory_product_id: inv_id as u32,
            tracking_link: None,
        };
        st.shipments.insert(id.clone(), shipment);
    }
    tracing::info!(shipment.id = %id, "YubiEnterprise shipment created");
    json(
        StatusCode::OK,
        json!({"shipment_id": id, "shipment_state": {"shipment_state_id": 2, "shipment_state_message": state_message(2)}}),
    )
}

/// The state the clock has moved a shipment to (without fulfilling it).
fn clock_state(app: &App, s: &Shipment) -> u32 {
    if let Some(f) = s.forced_state {
        return f;
    }
    match app.config.clock {
        Clock::Instant => 103,
        Clock::Manual => s.manual_state.unwrap_or(2),
        Clock::Realistic { speedup } => {
            let elapsed = (now() - s.created_at) as f64 * speedup.max(0.0);
            if elapsed < 900.0 {
                2
            } else if elapsed < 86_400.0 {
                10
            } else if elapsed < 3.0 * 86_400.0 {
                103
            } else {
                104
            }
        }
    }
}

/// `GET /v1/shipments_exact?limit&offset`: every shipment not deleted (FPR ones included, as
/// the Delivery API lists them), oldest first, at most 100 a page, with `count` and
/// `total_count`. The list does not fulfil shipments; reading one does.
async fn list_exact(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.list").await {
        return r;
    }
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(d);
    let (limit, offset) = (num("limit", 100), num("offset", 0));
    if limit == 0 || limit > 100 {
        return bad_request("limit", "limit must be 1 to 100".into());
    }
    let st = app.state();
    let mut all: Vec<&Shipment> = st.shipments.values().filter(|s| !s.deleted).collect();
    all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|s| {
            let mut v = exact_view(s, clock_state(&app, s));
            v["shipment_request_date"] = json!(crate::http::rfc3339(s.created_at));
            v
        })
        .collect();
    json(
        StatusCode::OK,
        json!({"count": page.len(), "total_count": all.len(), "shipments": page}),
    )
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

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Programs the key: decrypt the requests, make the credential and PIN, sign and encrypt the
/// responses, store them as product data.
fn fulfil(app: &App, id: &str) -> Result<(), String> {
    let (request, fault, last) = {
        let st = app.state();
        let s = st.shipments.get(id).ok_or("shipment vanished")?;
        (
            s.request.clone(),
            st.faults
                .get("yubico.fulfilment")
                .cloned()
                .unwrap_or_default(),
            st.last_product_data.clone(),
        )
    };
    let item = request
        .pointer("/shipment_items/0")
        .ok_or("no shipment item")?;
    let product_id = item
        .get("product_id")
        .and_then(Value::as_u64)
        .unwrap_or_default();
    let product = PRODUCTS
        .iter()
        .find(|p| u64::from(p.id) == product_id)
        .ok_or("unknown product")?;
    let pin_jwe =
        str_at(item, "/product_customizations/0/fido_pin_request").ok_or("no PIN request")?;
    let cred_jwe = str_at(item, "/product_customizations/0/fido_credential_requests/0")
        .ok_or("no credential request")?;

    let (cred_req, pin_req) = {
        let y = app.keys.yubico();
        let open = |t: &str| -> Result<Vec<u8>, String> {
            let info = jwe::inspect(t).map_err(|e| format!("request JWE: {e}"))?;
            let key = y
                .transport
                .iter()
                .find(|k| k.kid() == info.kid)
                .ok_or("request encrypted to an unknown transport key")?;
            jwe::decrypt(t, key)
                .map(|p| p.to_vec())
                .map_err(|e| format!("request JWE: {e}"))
        };
        let cred: CredentialRequest = serde_json::from_slice(&open(cred_jwe)?)
            .map_err(|_| "credential request is not the protocol's JSON")?;
        let pin: PinRequest = serde_json::from_slice(&open(pin_jwe)?)
            .map_err(|_| "PIN request is not the protocol's JSON")?;
        (cred, pin)
    };
    if cred_req.typ != protocol::CREDENTIAL_REQUEST
        || pin_req.typ != protocol::PIN_REQUEST
        || cred_req.v != 1
        || pin_req.v != 1
    {
        return Err("wrong typ or v in a request".into());
    }
    if cred_req.request_id != pin_req.request_id || cred_req.response_key != pin_req.response_key {
        return Err("PIN and credential requests do not belong together".into());
    }
    if !protocol::PIN_LENGTH.contains(&pin_req.pin.length) || pin_req.pin.kind != "generate" {
        return Err("PIN request asks for an unsupported PIN".into());
    }
    let response_key =
        PublicJwk::from_json(&cred_req.response_key).map_err(|e| format!("response key: {e}"))?;

    let data = if fault.replayed_response && last.is_some() {
        last.ok_or("no earlier response")?
    } else {
        let aaguid = fpr_webauthn::parse_aaguid(product.aaguid).ok_or("bad AAGUID")?;
        let cred = app
            .keys
            .ca
            .make_credential(&cred_req.public_key, &aaguid, product.name)
            .map_err(|e| e.to_string())?;
        let serial = {
            let mut st = app.state();
            st.next_serial += 1;
            st.next_serial.to_string()
        };
        let cred_id = fpr_webauthn::b64e(&cred.credential_id);
        let mut ext = json!({"credProps": {"rk": true}});
        if cred.cred_protect {
            ext["credProtect"] = json!(1);
        }
        let response = CredentialResponse {
            typ: protocol::CREDENTIAL_RESPONSE.into(),
            v: protocol::VERSION,
            request_id: cred_req.request_id.clone(),
            serial_number: serial.clone(),
            firmware_version: product.firmware.into(),
            credential: RegistrationResponseJson {
                id: cred_id.clone(),
                raw_id: cred_id,
                kind: "public-key".into(),
                authenticator_attachment: Some("cross-platform".into()),
                response: AttestationResponseJson {
                    client_data_json: fpr_webauthn::b64e(&cred.client_data_json),
                    attestation_object: fpr_webauthn::b64e(&cred.attestation_object),
                    transports: vec!["nfc".into(), "usb".into()],
                },
                client_extension_results: ext,
            },
        };
        let pin = fpr_jose::util::random_digits(pin_req.pin.length as usize)
            .map_err(|e| e.to_string())?;
        let pin_resp = PinResponse::new(pin_req.request_id.clone(), serial.clone(), pin);
        let signer = {
            let y = app.keys.yubico();
            let published = y.signing.first().ok_or("no signing key")?;
            if fault.bad_signature {
                SigningKey::generate(Curve::P384, published.kid()).map_err(|e| e.to_string())?
            } else if fault.wrong_kid {
                SigningKey::generate(Curve::P384, "APCS-Tsgnkey-NOT-PUBLISHED")
                    .map_err(|e| e.to_string())?
            } else {
                published.clone()
            }
        };
        let pin_signer = if fault.bad_pin_signature {
            SigningKey::generate(Curve::P384, signer.kid()).map_err(|e| e.to_string())?
        } else {
            signer.clone()
        };
        let seal = |payload: &[u8], signer: &SigningKey| -> Result<String, String> {
            let signed =
                zeroize::Zeroizing::new(jws::sign(payload, signer).map_err(|e| e.to_string())?);
            jwe::encrypt(signed.as_bytes(), &response_key, Algorithms::default())
                .map_err(|e| e.to_string())
        };
        let cred_json = serde_json::to_vec(&response).map_err(|e| e.to_string())?;
        let pin_json = pin_resp.to_json().map_err(|e| e.to_string())?;
        ProductData {
            serial_number: serial,
            firmware_version: product.firmware.into(),
            fido_pin_response: seal(&pin_json, &pin_signer)?,
            fido_credential_responses: vec![seal(&cred_json, &signer)?],
        }
    };
    let mut st = app.state();
    st.last_product_data = Some(data.clone());
    if let Some(s) = st.shipments.get_mut(id) {
        s.tracking_link = Some(format!("https://tracking.sandbox.invalid/{id}"));
        s.product_data = Some(data);
    }
    tracing::info!(shipment.id = %id, "Key programmed and shipped");
    Ok(())
}

fn fpr_view(s: &Shipment, state: u32) -> Value {
    let mut items = s
        .request
        .get("shipment_items")
        .cloned()
        .unwrap_or(json!([]));
    if let Some(arr) = items.as_array_mut() {
        for it in arr.iter_mut() {
            if let Some(o) = it.as_object_mut() {
                o.remove("product_customizations");
                if (103..=104).contains(&state)
                    && let Some(pd) = &s.product_data
                {
                    o.insert("product_data".into(), json!([pd]));
                }
            }
        }
    }
    let message = s
        .message
        .clone()
        .unwrap_or_else(|| state_message(state).into());
    json!({
        "shipment_id": s.id,
        "shipment_state": {"shipment_state_id": state, "shipment_state_message": message},
        "delivery_type": s.request.get("delivery_type"),
        "recipient": s.request.get("recipient"),
        "mailing_address": s.request.get("mailing_address"),
        "shipment_items": items,
        "tracking_link": s.tracking_link,
        "shipment_request_date": crate::http::rfc3339(s.created_at),
    })
}

async fn get_fpr(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.get").await {
        return r;
    }
    read_view(&app, &id, fpr_view)
}

/// The shipment in its current state, through `view`; 404 when unknown or deleted.
fn read_view(app: &App, id: &str, view: fn(&Shipment, u32) -> Value) -> Response {
    let Some(state) = current_state(app, id) else {
        return not_found();
    };
    let st = app.state();
    st.shipments
        .get(id)
        .map_or_else(not_found, |s| json(StatusCode::OK, view(s, state)))
}

fn exact_view(s: &Shipment, state: u32) -> Value {
    let r = s.request.get("recipient").cloned().unwrap_or(json!({}));
    let a = s
        .request
        .get("mailing_address")
        .cloned()
        .unwrap_or(json!({}));
    let item = s
        .request
        .pointer("/shipment_items/0")
        .cloned()
        .unwrap_or(json!({}));
    let product = item
        .get("product_id")
        .and_then(Value::as_u64)
        .and_then(|id| PRODUCTS.iter().find(|p| u64::from(p.id) == id));
    json!({
        "shipment_id": s.id,
        "shipment_state_id": state,
        "shipment_state_message": s.message.clone().unwrap_or_else(|| state_message(state).into()),
        "shipment_type": "AUTO FIDO PRE-REG",
        "delivery_type": s.request.get("delivery_type"),
        "recipient": r.get("recipient_company"),
        "recipient_email": r.get("recipient_email"),
        "recipient_firstname": r.get("recipient_firstname"),
        "recipient_lastname": r.get("recipient_lastname"),
        "recipient_telephone": r.get("recipient_telephone"),
        "street_line1": a.get("street_line1"),
        "street_line2": a.get("street_line2"),
        "city": a.get("city"),
        "region": a.get("region"),
        "postal_code": a.get("postal_code"),
        "country_code_2": a.get("country_code_2"),
        "is_shipped": state >= 103 && state != 105,
        "is_delivered": state == 104,
        "tracking_link": s.tracking_link,
        "shipment_items": [{
            "product_id": item.get("product_id"),
            "inventory_product_id": item.get("inventory_product_id"),
            "shipment_product_quantity": item.get("product_quantity"),
            "product_name": product.map(|p| p.name),
        }],
    })
}

async fn get_exact(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.exact").await {
        return r;
    }
    read_view(&app, &id, exact_view)
}

fn locked(state: u32) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"error": "Bad Request", "message": format!("Shipment can no longer be changed (state {state})"), "field": "shipment_state_id"}),
    )
}

async fn put_exact(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.exact").await {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("body", "body is not JSON".into());
    };
    let Some(state) = current_state(&app, &id) else {
        return not_found();
    };
    if state >= 10 {
        return locked(state);
    }
    if let Err(r) = check_delivery_type(body.get("delivery_type")) {
        return r;
    }
    let get = |n: &str| body.get(n).cloned();
    if let Err(r) = check_contact(&get, "", "") {
        return r;
    }
    let mut st = app.state();
    let Some(s) = st.shipments.get_mut(&id) else {
        return not_found();
    };
    let pick = |keys: &[&str], rename: &[(&str, &str)]| {
        let mut m = serde_json::Map::new();
        for k in keys {
            let src = rename
                .iter()
                .find(|(to, _)| to == k)
                .map_or(*k, |(_, from)| *from);
            m.insert(
                (*k).into(),
                body.get(src)
                    .cloned()
                    .unwrap_or(Value::String(String::new())),
            );
        }
        Value::Object(m)
    };
    s.request["delivery_type"] = body["delivery_type"].clone();
    s.request["recipient"] = pick(
        &[
            "recipient_company",
            "recipient_email",
            "recipient_firstname",
            "recipient_lastname",
            "recipient_telephone",
        ],
        &[("recipient_company", "recipient")],
    );
    s.request["mailing_address"] = pick(
        &[
            "street_line1",
            "street_line2",
            "city",
            "region",
            "postal_code",
            "country_code_2",
        ],
        &[],
    );
    let view = exact_view(s, state);
    json(StatusCode::OK, view)
}

async fn delete_exact(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.exact").await {
        return r;
    }
    let Some(state) = current_state(&app, &id) else {
        return not_found();
    };
    if state >= 10 {
        return locked(state);
    }
    let mut st = app.state();
    let bucket = match st.shipments.get_mut(&id) {
        Some(s) => {
            s.deleted = true;
            s.inventory_product_id
        }
        None => return not_found(),
    };
    if let Some(b) = st.inventory.iter_mut().find(|b| b.product_id == bucket) {
        b.quantity += 1;
    }
    tracing::info!(shipment.id = %id, "YubiEnterprise shipment deleted");
    StatusCode::NO_CONTENT.into_response()
}

async fn products(AxState(app): AxState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.products").await {
        return r;
    }
    let list: Vec<Value> = PRODUCTS
        .iter()
        .map(|p| json!({"product_id": p.id, "product_name": p.name, "fido_prereg_capable": p.fpr}))
        .collect();
    json(
        StatusCode::OK,
        json!({"count": list.len(), "total_count": list.len(), "products": list}),
    )
}

async fn inventory(AxState(app): AxState<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.inventory").await {
        return r;
    }
    let st = app.state();
    let list: Vec<Value> = st
        .inventory
        .iter()
        .map(|b| {
            json!({
                "organization_product_inventory_id": format!("INV{}", b.product_id),
                "is_subscription_product": true, "is_virtual_product": true,
                "organization_id": "SANDBOXORG",
                "organization_product_quantity": b.quantity,
                "product_id": b.product_id, "inventory_type": 3, "product_name": b.name,
                "product_tier": 2, "product_mapping": b.mapping,
            })
        })
        .collect();
    json(
        StatusCode::OK,
        json!({"count": list.len(), "total_count": list.len(), "organization_product_inventory": list}),
    )
}

async fn transport_jwks(AxState(app): AxState<Arc<App>>) -> Response {
    if let Some(r) = inject(&app, "yubico.jwks").await {
        return r;
    }
    json(StatusCode::OK, app.keys.yubico().transport_jwks().to_json())
}

async fn sign_jwks(AxState(app): AxState<Arc<App>>) -> Response {
    if let Some(r) = inject(&app, "yubico.jwks").await {
        return r;
    }
    json(StatusCode::OK, app.keys.yubico().signing_jwks().to_json())
}

/// Body of the admin API's shipment views.
pub(crate) fn admin_view(app: &App, id: &str) -> Option<Value> {
    let state = current_state(app, id)?;
    let st = app.state();
    st.shipments.get(id).map(|s| {
        let mut v = fpr_view(s, state);
        v["kind"] = json!(s.kind);
        v
    })
}
