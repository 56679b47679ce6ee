//! The Delivery API's view of a shipment (`/shipments_exact`): list, read, replace and cancel while editable.

use super::*;

/// `GET /v1/shipments_exact?limit&offset`: every shipment not deleted (FPR ones included, as
/// the Delivery API lists them), oldest first, at most 100 a page, with `count` and
/// `total_count`. The list does not fulfil shipments; reading one does.
pub(super) async fn list_exact(
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

pub(super) fn exact_view(s: &Shipment, state: u32) -> Value {
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

pub(super) async fn get_exact(
    AxState(app): AxState<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = gate(&app, &headers, "ye.exact").await {
        return r;
    }
    read_view(&app, &id, exact_view)
}

pub(super) fn locked(state: u32) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"error": "Bad Request", "message": format!("Shipment can no longer be changed (state {state})"), "field": "shipment_state_id"}),
    )
}

pub(super) async fn put_exact(
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

pub(super) async fn delete_exact(
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
            s.deleted_at = Some(crate::http::now());
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
