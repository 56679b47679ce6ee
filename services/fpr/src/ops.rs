//! The admin subcommands: one ShipmentService call each, a table for people or JSON for scripts.

use std::path::Path;

use anyhow::Context as _;
use fpr_proto::v1 as pb;
use serde_json::json;

use crate::client::{self, Client};
use crate::output::{self, LIST_HEADERS, list_row, shipment_detail, shipment_json};

/// Output mode.
#[derive(Debug, Clone, Copy)]
pub struct OutputMode {
    /// JSON instead of tables.
    pub json: bool,
}

impl OutputMode {
    /// Prints one shipment.
    pub fn shipment(self, s: &pb::Shipment) {
        if self.json {
            println!("{}", shipment_json(s));
        } else {
            print!("{}", shipment_detail(s));
        }
    }
}

/// A gRPC status as an error for people.
pub fn grpc(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(client::describe(&status))
}

/// `fpr status`: exit code 1 when a dependency is failing.
pub async fn status(mut c: Client, out: OutputMode) -> anyhow::Result<u8> {
    let s = c
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(grpc)?
        .into_inner();
    let code = u8::from(s.dependencies.iter().any(|d| !d.healthy));
    if out.json {
        let deps: Vec<_> = s
            .dependencies
            .iter()
            .map(|d| json!({"name": d.name, "healthy": d.healthy, "detail": d.detail}))
            .collect();
        println!(
            "{}",
            json!({"version": s.version, "settings": s.settings, "dependencies": deps})
        );
        return Ok(code);
    }
    println!("fpr orchestrator {}\n", s.version);
    let rows: Vec<Vec<String>> = s
        .dependencies
        .iter()
        .map(|d| {
            vec![
                d.name.clone(),
                if d.healthy { "ok" } else { "FAILING" }.into(),
                output::truncate(&d.detail, 90),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["DEPENDENCY", "HEALTH", "DETAIL"], &rows)
    );
    let mut settings: Vec<(&String, &String)> = s.settings.iter().collect();
    settings.sort();
    let rows: Vec<Vec<String>> = settings
        .into_iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    println!();
    print!("{}", output::table(&["SETTING", "VALUE"], &rows));
    Ok(code)
}

/// `fpr catalog`: the products FIDO Pre-reg can program, the inventory buckets with their
/// credits, and the customization ids YubiEnterprise has accepted from fpr.
pub async fn catalog(mut c: Client, out: OutputMode) -> anyhow::Result<()> {
    let cat = c
        .get_catalog(pb::GetCatalogRequest {})
        .await
        .map_err(grpc)?
        .into_inner();
    if out.json {
        let products: Vec<_> = cat
            .products
            .iter()
            .map(|p| json!({"product_id": p.product_id, "name": p.name, "aaguids": p.aaguids}))
            .collect();
        let inventory: Vec<_> = cat
            .inventory
            .iter()
            .map(|b| {
                json!({"inventory_product_id": b.inventory_product_id, "name": b.name,
                       "credits": b.credits, "product_ids": b.product_ids})
            })
            .collect();
        let customizations: Vec<_> = cat
            .customizations
            .iter()
            .map(|c| {
                json!({"customization_id": c.customization_id, "orders": c.orders,
                       "last_ordered": output::ts(c.last_ordered.as_ref())})
            })
            .collect();
        println!(
            "{}",
            json!({"products": products, "inventory": inventory, "customizations": customizations})
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = cat
        .products
        .iter()
        .map(|p| {
            vec![
                p.product_id.to_string(),
                p.name.clone(),
                p.aaguids.join(" "),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["PRODUCT ID", "FIDO PRE-REG PRODUCT", "AAGUIDS"], &rows)
    );
    let rows: Vec<Vec<String>> = cat
        .inventory
        .iter()
        .map(|b| {
            let supplies: Vec<String> = b.product_ids.iter().map(u32::to_string).collect();
            vec![
                b.inventory_product_id.to_string(),
                b.name.clone(),
                b.credits.to_string(),
                supplies.join(","),
            ]
        })
        .collect();
    println!();
    print!(
        "{}",
        output::table(
            &["INVENTORY PRODUCT ID", "BUCKET", "CREDITS", "SUPPLIES"],
            &rows
        )
    );
    let rows: Vec<Vec<String>> = cat
        .customizations
        .iter()
        .map(|c| {
            vec![
                c.customization_id.clone(),
                c.orders.to_string(),
                output::ts(c.last_ordered.as_ref()),
            ]
        })
        .collect();
    println!();
    if rows.is_empty() {
        println!("no customization id accepted yet: Yubico gives yours at onboarding");
    } else {
        print!(
            "{}",
            output::table(&["CUSTOMIZATION ID", "ORDERS", "LAST ORDERED"], &rows)
        );
    }
    Ok(())
}

/// Before ordering: a warning on stderr for each inventory bucket that `orders` (bucket id →
/// how many) would overdraw, or that YubiEnterprise does not list. Silent when the catalog
/// cannot be read (the caller may lack the read role): the orders themselves will tell.
pub async fn warn_credits(c: &Client, orders: &std::collections::BTreeMap<u32, u64>) {
    for short in short_credits(c, orders).await {
        eprintln!("warning: {short}: YubiEnterprise will refuse the orders beyond them");
    }
}

/// Each inventory bucket that `orders` (bucket id → how many) would overdraw, described; a
/// warning on stderr for each bucket YubiEnterprise does not list. Empty when the catalog
/// cannot be read (the caller may lack the read role): the orders themselves will tell.
pub async fn short_credits(
    c: &Client,
    orders: &std::collections::BTreeMap<u32, u64>,
) -> Vec<String> {
    let Ok(cat) = c.clone().get_catalog(pb::GetCatalogRequest {}).await else {
        return Vec::new();
    };
    let cat = cat.into_inner();
    let mut short = Vec::new();
    for (bucket, n) in orders {
        match cat
            .inventory
            .iter()
            .find(|b| b.inventory_product_id == *bucket)
        {
            Some(b) if b.credits < *n => short.push(format!(
                "inventory bucket {bucket} ({}) has {} credits left, {n} needed",
                b.name, b.credits
            )),
            Some(_) => {}
            None => eprintln!(
                "warning: YubiEnterprise lists no inventory bucket {bucket}; see `fpr catalog`"
            ),
        }
    }
    short
}

/// The inventory bucket of an order.
pub fn bucket_of(req: &pb::CreateShipmentRequest) -> u32 {
    req.yubico_shipment_request
        .as_ref()
        .and_then(|y| y.shipment_items.first())
        .map_or(0, |i| i.inventory_product_id)
}

/// `fpr ship`: one order.
pub async fn ship(
    c: &Client,
    req: pb::CreateShipmentRequest,
    out: OutputMode,
) -> anyhow::Result<()> {
    let key = req.idempotency_key.clone();
    let dry = req.validate_only;
    let r = client::create(c, req).await.map_err(grpc)?;
    if out.json {
        println!(
            "{}",
            json!({"shipment_id": r.shipment_id, "shipment_state": output::state(r.shipment_state),
                "yubienterprise_shipment_id": r.yubienterprise_shipment_id, "idempotency_key": key,
                "validate_only": dry})
        );
    } else if dry && r.shipment_id.is_empty() {
        println!("valid; dry run: nothing ordered");
    } else {
        println!(
            "shipment {}  state {}  yubienterprise {}  (idempotency key {key})",
            r.shipment_id,
            output::state(r.shipment_state),
            if r.yubienterprise_shipment_id.is_empty() {
                "-"
            } else {
                &r.yubienterprise_shipment_id
            }
        );
    }
    Ok(())
}

/// `fpr get`.
pub async fn get(mut c: Client, id: String, out: OutputMode) -> anyhow::Result<()> {
    let s = c
        .get_shipment(pb::GetShipmentRequest { shipment_id: id })
        .await
        .map_err(grpc)?
        .into_inner();
    out.shipment(&s);
    Ok(())
}

/// `fpr list`: newest first; `limit` 0 means every page.
pub async fn list(
    mut c: Client,
    mut req: pb::ListShipmentsRequest,
    limit: usize,
    out: OutputMode,
) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut more = false;
    loop {
        let want = if limit == 0 {
            500
        } else {
            (limit - all.len()).min(500)
        };
        req.page_size = u32::try_from(want).unwrap_or(500);
        let page = c
            .list_shipments(req.clone())
            .await
            .map_err(grpc)?
            .into_inner();
        all.extend(page.shipments);
        if page.next_page_token.is_empty() {
            break;
        }
        if limit != 0 && all.len() >= limit {
            more = true;
            break;
        }
        req.page_token = page.next_page_token;
    }
    if out.json {
        let list: Vec<_> = all.iter().map(shipment_json).collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        let rows: Vec<Vec<String>> = all.iter().map(list_row).collect();
        print!("{}", output::table(&LIST_HEADERS, &rows));
        eprintln!(
            "{} shipment{}{}",
            all.len(),
            if all.len() == 1 { "" } else { "s" },
            if more {
                " (there are more: --limit 0 lists all)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `fpr watch`: every change until the shipment ends; JSON is one object a line.
pub async fn watch(mut c: Client, id: String, out: OutputMode) -> anyhow::Result<()> {
    let mut stream = c
        .watch_shipment(pb::WatchShipmentRequest { shipment_id: id })
        .await
        .map_err(grpc)?
        .into_inner();
    let mut first = true;
    while let Some(s) = stream.message().await.map_err(grpc)? {
        if out.json {
            println!("{}", shipment_json(&s));
        } else {
            if first {
                println!(
                    "watching {} ({} {})",
                    s.shipment_id,
                    output::idp(s.idp),
                    s.user_id
                );
                first = false;
            }
            let note = if s.error_message.is_empty() {
                s.last_error.clone()
            } else {
                format!("{}: {}", s.error_kind, s.error_message)
            };
            let line = format!(
                "{}  {:<9} {:<10} serial {:<10} {}",
                output::ts(s.updated_at.as_ref()),
                output::state(s.shipment_state),
                s.step,
                if s.serial_number.is_empty() {
                    "-"
                } else {
                    &s.serial_number
                },
                note
            );
            println!("{}", line.trim_end());
        }
    }
    Ok(())
}

/// `fpr update`, `cancel`, `retry`, `complete`, `resend-pin`: one call returning the shipment.
pub async fn act(mut c: Client, action: Action, out: OutputMode) -> anyhow::Result<()> {
    let s = match action {
        Action::Update(r) => c.update_shipment(*r).await,
        Action::Cancel(r) => c.cancel_shipment(r).await,
        Action::Retry(r) => c.retry_shipment(r).await,
        Action::Complete(r) => c.complete_shipment(r).await,
        Action::ResendPin(r) => c.resend_pin(r).await,
    }
    .map_err(grpc)?
    .into_inner();
    out.shipment(&s);
    Ok(())
}

/// A call that changes one shipment.
#[derive(Debug)]
pub enum Action {
    /// UpdateShipment.
    Update(Box<pb::UpdateShipmentRequest>),
    /// CancelShipment.
    Cancel(pb::CancelShipmentRequest),
    /// RetryShipment.
    Retry(pb::RetryShipmentRequest),
    /// CompleteShipment.
    Complete(pb::CompleteShipmentRequest),
    /// ResendPin.
    ResendPin(pb::ResendPinRequest),
}

/// `fpr process-now`.
pub async fn process_now(mut c: Client, out: OutputMode) -> anyhow::Result<()> {
    let r = c
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .map_err(grpc)?
        .into_inner();
    if out.json {
        println!(
            "{}",
            json!({"examined": r.examined, "advanced": r.advanced, "completed": r.completed,
                "errored": r.errored, "deferred": r.deferred})
        );
    } else {
        println!(
            "examined {}, advanced {}, completed {}, errored {}, deferred {}",
            r.examined, r.advanced, r.completed, r.errored, r.deferred
        );
    }
    Ok(())
}

/// `fpr keys`: the Yubico transport and signing keys the vault has pinned, over its socket.
pub async fn keys(socket: &Path, out: OutputMode) -> anyhow::Result<()> {
    use fpr_proto::vault::v1 as vpb;
    let channel = fpr_orchestrator::server::vault_channel(socket)
        .with_context(|| format!("the vault socket {}", socket.display()))?;
    let r = vpb::vault_service_client::VaultServiceClient::new(channel)
        .get_yubico_keys(vpb::GetYubicoKeysRequest {})
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "{}\n  (vault socket {}: run on the vault's host as a uid it allows)",
                client::describe(&s),
                socket.display()
            )
        })?
        .into_inner();
    let sets = [
        ("transport", &r.transport_jwks_json, r.transport.as_ref()),
        ("signing", &r.signing_jwks_json, r.signing.as_ref()),
    ];
    let mut rows = Vec::new();
    let mut js = Vec::new();
    for (name, jwks, status) in sets {
        let parsed: serde_json::Value = serde_json::from_str(jwks).unwrap_or_default();
        let keys = parsed["keys"].as_array().cloned().unwrap_or_default();
        let fetched = output::ts(status.and_then(|s| s.fetched_at.as_ref()));
        let source = status.map(|s| s.source.clone()).unwrap_or_default();
        let error = status.map(|s| s.last_error.clone()).unwrap_or_default();
        for k in &keys {
            rows.push(vec![
                name.to_owned(),
                k["kid"].as_str().unwrap_or_default().to_owned(),
                format!(
                    "{} {}",
                    k["kty"].as_str().unwrap_or_default(),
                    k["crv"].as_str().unwrap_or_default()
                ),
                fetched.clone(),
                source.clone(),
                error.clone(),
            ]);
        }
        js.push(json!({"set": name, "keys": keys, "fetched_at": fetched, "source": source, "last_error": error}));
    }
    if out.json {
        println!("{}", serde_json::Value::Array(js));
    } else {
        print!(
            "{}",
            output::table(
                &["SET", "KID", "KEY", "FETCHED", "SOURCE", "LAST ERROR"],
                &rows
            )
        );
    }
    Ok(())
}

/// `fpr health`: 0 when the server reports SERVING, 1 otherwise (with the reason).
pub async fn health(
    channel: tonic::transport::Channel,
    service: String,
    out: OutputMode,
) -> anyhow::Result<u8> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        HealthClient::new(channel).check(HealthCheckRequest {
            service: service.clone(),
        }),
    )
    .await;
    let status = match r {
        Ok(Ok(r)) => ServingStatus::try_from(r.into_inner().status)
            .unwrap_or(ServingStatus::Unknown)
            .as_str_name()
            .to_owned(),
        Ok(Err(s)) => client::describe(&s),
        Err(_) => "no answer within 5 s".into(),
    };
    if out.json {
        println!("{}", json!({"service": service, "status": status}));
    } else {
        println!("{status}");
    }
    Ok(if status == "SERVING" { 0 } else { 1 })
}
