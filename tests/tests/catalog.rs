//! GetCatalog end to end: the products FIDO Pre-reg can program, the inventory and its
//! credits as YubiEnterprise (the sandbox) reports them, and the customization ids of the
//! orders it accepted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_tests::{Stack, create_shipment, manual_sandbox};

async fn catalog(stack: &Stack) -> pb::GetCatalogResponse {
    let mut client = stack.client().await;
    client
        .get_catalog(pb::GetCatalogRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn credits(c: &pb::GetCatalogResponse, bucket: u32) -> u64 {
    c.inventory
        .iter()
        .find(|b| b.inventory_product_id == bucket)
        .unwrap()
        .credits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_lists_products_credits_and_accepted_customizations() {
    let stack = Stack::start(fpr_sandbox::Config {
        inventory_credits: 5,
        ..manual_sandbox()
    })
    .await;
    let before = catalog(&stack).await;
    let ids: Vec<u32> = before.products.iter().map(|p| p.product_id).collect();
    assert_eq!(
        ids,
        [1, 29, 54, 55],
        "only the models FIDO Pre-reg can program"
    );
    let fips = before.products.iter().find(|p| p.product_id == 55).unwrap();
    assert_eq!(fips.name, "YubiKey 5C NFC FIPS");
    assert!(
        fips.aaguids
            .contains(&"fcc0118f-cd45-435b-8da1-9782b2da0715".to_owned()),
        "{fips:?}"
    );
    let bucket = before
        .inventory
        .iter()
        .find(|b| b.inventory_product_id == 106)
        .unwrap();
    assert_eq!(
        (bucket.credits, bucket.product_ids.contains(&29)),
        (5, true)
    );
    assert!(before.customizations.is_empty());

    let mut client = stack.client().await;
    let a = create_shipment(&mut client, "cat-1", "adele.vance@contoso.test").await;
    let b = create_shipment(&mut client, "cat-2", "alex.wilber@contoso.test").await;
    assert!(!a.yubienterprise_shipment_id.is_empty() && !b.yubienterprise_shipment_id.is_empty());

    let after = catalog(&stack).await;
    assert_eq!(credits(&after, 106), 3, "one credit an order");
    assert_eq!(credits(&after, 107), 5);
    assert_eq!(after.customizations.len(), 1, "{:?}", after.customizations);
    let seen = &after.customizations[0];
    assert_eq!((seen.customization_id.as_str(), seen.orders), ("RXJN83", 2));
    assert!(seen.last_ordered.is_some());
}
