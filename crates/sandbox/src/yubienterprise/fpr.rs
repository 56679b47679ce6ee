//! FIDO Pre-reg shipments: create (with YubiEnterprise's field rules) and read, with the state the clock gives.

use super::*;

pub(super) async fn create(
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
            deleted_at: None,
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
pub(super) fn clock_state(app: &App, s: &Shipment) -> u32 {
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

pub(super) fn fpr_view(s: &Shipment, state: u32) -> Value {
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

pub(super) async fn get_fpr(
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
pub(super) fn read_view(app: &App, id: &str, view: fn(&Shipment, u32) -> Value) -> Response {
    let Some(state) = current_state(app, id) else {
        return not_found();
    };
    let st = app.state();
    st.shipments
        .get(id)
        .map_or_else(not_found, |s| json(StatusCode::OK, view(s, state)))
}
