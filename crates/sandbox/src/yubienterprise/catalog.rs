//! Products, inventory and Yubico's published key sets.

use super::*;

pub(super) async fn products(AxState(app): AxState<Arc<App>>, headers: HeaderMap) -> Response {
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

pub(super) async fn inventory(AxState(app): AxState<Arc<App>>, headers: HeaderMap) -> Response {
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

pub(super) async fn transport_jwks(AxState(app): AxState<Arc<App>>) -> Response {
    if let Some(r) = inject(&app, "yubico.jwks").await {
        return r;
    }
    json(StatusCode::OK, app.keys.yubico().transport_jwks().to_json())
}

pub(super) async fn sign_jwks(AxState(app): AxState<Arc<App>>) -> Response {
    if let Some(r) = inject(&app, "yubico.jwks").await {
        return r;
    }
    json(StatusCode::OK, app.keys.yubico().signing_jwks().to_json())
}
