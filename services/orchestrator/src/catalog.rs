//! GetCatalog: what an admin needs before ordering. The products FIDO Pre-reg can program and
//! the organization's inventory come from YubiEnterprise at each call (credits change with
//! every order); the AAGUIDs from the workspace's YubiKey table; the customization ids from
//! the orders YubiEnterprise accepted, as the store remembers them.

use std::collections::BTreeMap;

use fpr_domain::model::Step;
use fpr_domain::yubikey;
use fpr_proto::v1 as pb;

use crate::Error;
use crate::store::Shipments;

/// The catalog now.
pub async fn catalog(
    yubienterprise: &fpr_yubienterprise::Client,
    store: &Shipments,
) -> Result<pb::GetCatalogResponse, Error> {
    let (products, inventory) =
        tokio::try_join!(yubienterprise.products(), yubienterprise.inventory())?;
    let products = products
        .into_iter()
        .filter_map(|p| {
            let known = yubikey::product_by_id(p.id);
            // YubiEnterprise's flag when it gives one, else the workspace's table.
            let fpr = p.fpr_capable.unwrap_or(known.is_some_and(|k| k.fpr));
            fpr.then(|| pb::CatalogProduct {
                product_id: p.id,
                name: p.name,
                aaguids: known
                    .map(yubikey::aaguids_of)
                    .unwrap_or_default()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect();
    let inventory = inventory
        .into_iter()
        .map(|b| pb::InventoryBucket {
            inventory_product_id: b.id,
            name: b.name,
            credits: b.credits,
            product_ids: b.products,
        })
        .collect();
    Ok(pb::GetCatalogResponse {
        products,
        inventory,
        customizations: customizations_seen(store)?,
    })
}

/// The customization ids of the orders YubiEnterprise accepted, most used first.
fn customizations_seen(store: &Shipments) -> Result<Vec<pb::CustomizationSeen>, Error> {
    let mut seen: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for rec in store.all()? {
        if rec.ye_shipment_id.is_none() || rec.step < Step::Ordered {
            continue;
        }
        let Some(id) = rec.shipping["shipment_items"][0]["customization_id"].as_str() else {
            continue;
        };
        let at = rec
            .step_times
            .get(Step::Ordered.name())
            .copied()
            .unwrap_or(rec.created_at);
        let e = seen.entry(id.to_owned()).or_insert((0, at));
        e.0 += 1;
        e.1 = e.1.max(at);
    }
    let mut out: Vec<_> = seen
        .into_iter()
        .map(|(id, (orders, at))| pb::CustomizationSeen {
            customization_id: id,
            orders,
            last_ordered: Some(crate::convert::ts(at)),
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.orders));
    Ok(out)
}
