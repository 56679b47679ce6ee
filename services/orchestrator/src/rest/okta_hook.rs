//! Okta Event Hooks as a trigger, at `/v1/okta/event-hooks` on the REST listener.
//!
//! - `GET` is Okta's one-time verification: the `x-okta-verification-challenge` header's value
//!   comes back as `{"verification": …}`.
//! - `POST` carries a batch of LogEvents. `system.mfa.preregister.initiate` (an admin's "Add" of
//!   a pre-enrolled authenticator, or a call of initiate-fulfillment-request) and, for the
//!   configured groups, `group.user_membership.add` become a CreateShipment for the event's
//!   `User` target, idempotent on the event's `uuid`, so Okta's retries never order twice.
//!   Every other event is acknowledged and ignored.
//!
//! Both check the `Authorization` header against the configured secret in constant time. The
//! answer comes as soon as the shipments are on disk (accept only); the orders are placed on
//! tasks of their own, within Okta's time limit whatever YubiEnterprise does. Where the order
//! ids come from is decision 0013.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use fpr_domain::model::ShipmentId;
use fpr_proto::v1 as pb;
use fpr_proto::v1::shipment_service_server::ShipmentService as _;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use tonic::Request;
use tracing::{info, warn};

use crate::config::OktaEventHookConfig;
use crate::service::ShipmentService;

/// The path Okta calls.
pub const PATH: &str = "/v1/okta/event-hooks";

/// The event an admin's "Add" (or initiate-fulfillment-request) emits.
pub const INITIATE: &str = "system.mfa.preregister.initiate";
/// A user added to a group.
pub const GROUP_ADD: &str = "group.user_membership.add";

struct Hook {
    service: ShipmentService,
    cfg: OktaEventHookConfig,
    secret: fpr_upstream::SecretSource,
}

/// The hook's routes.
pub fn routes(service: ShipmentService, cfg: OktaEventHookConfig) -> Result<Router, crate::Error> {
    let secret = cfg.secret.source("okta_event_hook.secret")?;
    Ok(Router::new()
        .route(PATH, get(verify).post(events))
        .with_state(Arc::new(Hook {
            service,
            cfg,
            secret,
        })))
}

impl Hook {
    /// Whether the request carries the hook's secret.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let given = headers
            .get("authorization")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        match self.secret.read("okta_event_hook.secret") {
            Ok(s) => bool::from(s.expose_secret().as_bytes().ct_eq(given)),
            Err(e) => {
                warn!(error = %e, "The Okta event hook's secret cannot be read");
                false
            }
        }
    }
}

async fn verify(State(hook): State<Arc<Hook>>, headers: HeaderMap) -> Response {
    if !hook.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "bad Authorization").into_response();
    }
    match headers
        .get("x-okta-verification-challenge")
        .and_then(|v| v.to_str().ok())
    {
        Some(c) => Json(json!({ "verification": c })).into_response(),
        None => (StatusCode::BAD_REQUEST, "no x-okta-verification-challenge").into_response(),
    }
}

async fn events(State(hook): State<Arc<Hook>>, headers: HeaderMap, body: String) -> Response {
    if !hook.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "bad Authorization").into_response();
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let events = body
        .pointer("/data/events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut accepted = Vec::new();
    for event in &events {
        let Some(req) = order_for(&hook.cfg, event) else {
            continue;
        };
        let user = req.user_id.clone();
        match hook.service.create_shipment(Request::new(req)).await {
            Ok(r) => {
                let r = r.into_inner();
                info!(shipment.id = %r.shipment_id, okta.event = %uuid(event), "Okta event ordered a key");
                if let Ok(id) = ShipmentId::try_new(&r.shipment_id) {
                    let note = provenance(&hook.cfg, event);
                    let noted = hook.service.workflow().update(&id, |rec| {
                        // A retried event finds its note there already.
                        if rec.history.is_empty() {
                            rec.note(crate::workflow::now(), note);
                        }
                        Ok(())
                    });
                    if let Err(e) = noted.await {
                        warn!(shipment.id = %r.shipment_id, error = %e, "History not noted");
                    }
                }
                if r.yubienterprise_shipment_id.is_empty() {
                    accepted.push(r.shipment_id);
                }
            }
            // A refusal will not change on a retry: acknowledged, logged, nothing ordered.
            Err(s) if s.code() != tonic::Code::Internal && s.code() != tonic::Code::Unavailable => {
                warn!(okta.event = %uuid(event), user = %user, code = ?s.code(), error = %s.message(),
                    "Okta event not ordered");
            }
            // fpr could not record it: Okta delivers the batch again, and the uuids keep it once.
            Err(s) => {
                warn!(okta.event = %uuid(event), error = %s.message(), "Okta event not recorded");
                return (StatusCode::INTERNAL_SERVER_ERROR, "not recorded").into_response();
            }
        }
    }
    for id in accepted {
        let Ok(id) = ShipmentId::try_new(&id) else {
            continue;
        };
        let wf = hook.service.workflow().clone();
        tokio::spawn(async move {
            if let Err(e) = wf.drive(&id).await {
                warn!(error = %e, "Placing the order failed; processing retries it");
            }
        });
    }
    StatusCode::OK.into_response()
}

fn uuid(event: &Value) -> &str {
    event["uuid"].as_str().unwrap_or_default()
}

/// An order id (`productId`, `inventoryProductId`, `customizationId`) of an event, and where it
/// was found: the event's debug data, else the enrollment target's details.
fn find_id(event: &Value, key: &str) -> Option<(String, &'static str)> {
    let enrollment = event["target"].as_array().and_then(|t| {
        t.iter()
            .find(|x| x["type"] == "AuthenticatorEnrollment")
            .map(|x| &x["detailEntry"])
    });
    [
        (
            event.pointer("/debugContext/debugData"),
            "debugContext.debugData",
        ),
        (
            enrollment,
            "the AuthenticatorEnrollment target's detailEntry",
        ),
    ]
    .into_iter()
    .find_map(|(d, from)| {
        d?[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_owned(), from))
    })
}

/// The history entry of a shipment an event ordered: the event, and where each order id came
/// from (saying so when the configured default stood in).
pub fn provenance(cfg: &OktaEventHookConfig, event: &Value) -> String {
    let ids = [
        ("productId", cfg.default_product_id.to_string()),
        (
            "inventoryProductId",
            cfg.default_inventory_product_id.to_string(),
        ),
        ("customizationId", cfg.default_customization_id.clone()),
    ]
    .map(|(key, default)| match find_id(event, key) {
        Some((v, from)) => format!("{key} {v} from {from}"),
        None => format!("{key} {default}: the event has none, the configured default used"),
    });
    format!(
        "ordered by Okta event {} ({}); {}",
        uuid(event),
        event["eventType"].as_str().unwrap_or_default(),
        ids.join("; ")
    )
}

/// The CreateShipment an event asks for, if it asks for one.
pub fn order_for(cfg: &OktaEventHookConfig, event: &Value) -> Option<pb::CreateShipmentRequest> {
    let targets = event["target"].as_array()?;
    let of_type = |t: &str| targets.iter().find(|x| x["type"] == t);
    match event["eventType"].as_str()? {
        INITIATE => {}
        GROUP_ADD => {
            let group = of_type("UserGroup")?;
            let named = |k: &str| {
                group[k]
                    .as_str()
                    .is_some_and(|v| cfg.groups.iter().any(|g| g == v))
            };
            if !named("id") && !named("displayName") {
                return None;
            }
        }
        _ => return None,
    }
    let user = of_type("User")?["id"].as_str()?.to_owned();
    let event_id = uuid(event);
    if event_id.is_empty() {
        return None;
    }
    // The order's ids: the event's debug data, else the enrollment target's details, else
    // the configured defaults (decision 0013).
    let pick = |key: &str| find_id(event, key).map(|(v, _)| v);
    let num = |key: &str, default: u32| pick(key).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (shipping, pin) = fpr_domain::shipping::one_key(
        1,
        (
            num("productId", cfg.default_product_id),
            num("inventoryProductId", cfg.default_inventory_product_id),
            pick("customizationId").unwrap_or_else(|| cfg.default_customization_id.clone()),
        ),
        8,
    );
    Some(pb::CreateShipmentRequest {
        idempotency_key: format!("okta-event-{event_id}"),
        idp: pb::Idp::Okta as i32,
        user_id: user,
        pin_request: Some(pin),
        enrollment_contacts: None,
        yubico_shipment_request: Some(shipping),
        validate_only: false,
        accept_only: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OktaEventHookConfig {
        OktaEventHookConfig {
            secret: crate::config::SecretRef::danger_inline("s"),
            groups: vec!["00gKeys".into(), "Security keys".into()],
            default_product_id: 29,
            default_inventory_product_id: 106,
            default_customization_id: "DEFLT1".into(),
        }
    }

    fn item(r: &pb::CreateShipmentRequest) -> (u32, u32, String) {
        let i = &r.yubico_shipment_request.as_ref().unwrap().shipment_items[0];
        (
            i.product_id,
            i.inventory_product_id,
            i.customization_id.clone(),
        )
    }

    #[test]
    fn the_order_ids_come_from_debug_data_then_the_enrollment_then_the_defaults() {
        let user = json!({"id": "00u1", "type": "User"});
        let debug = json!({"uuid": "u1", "eventType": INITIATE, "target": [user],
            "debugContext": {"debugData": {"productId": "55", "customizationId": "ABC123",
                "inventoryProductId": "107"}}});
        let r = order_for(&cfg(), &debug).unwrap();
        assert_eq!(item(&r), (55, 107, "ABC123".into()));
        assert_eq!(
            (r.idempotency_key.as_str(), r.user_id.as_str()),
            ("okta-event-u1", "00u1")
        );
        assert!(r.accept_only && r.idp == pb::Idp::Okta as i32);

        let enrollment = json!({"uuid": "u2", "eventType": INITIATE, "target": [user,
            {"type": "AuthenticatorEnrollment", "detailEntry": {"productId": "54",
                "customizationId": "XYZ789", "inventoryProductId": "106"}}]});
        assert_eq!(
            item(&order_for(&cfg(), &enrollment).unwrap()),
            (54, 106, "XYZ789".into())
        );

        let bare = json!({"uuid": "u3", "eventType": INITIATE, "target": [user]});
        assert_eq!(
            item(&order_for(&cfg(), &bare).unwrap()),
            (29, 106, "DEFLT1".into())
        );
        let said = provenance(&cfg(), &bare);
        assert!(
            said.contains("customizationId DEFLT1: the event has none, the configured default"),
            "{said}"
        );
        assert!(provenance(&cfg(), &debug).contains("productId 55 from debugContext.debugData"));
    }

    #[test]
    fn only_configured_groups_and_known_events_order() {
        let add = |group: Value| {
            json!({"uuid": "g", "eventType": GROUP_ADD, "target": [
                {"id": "00u1", "type": "User"}, group]})
        };
        assert!(order_for(&cfg(), &add(json!({"id": "00gKeys", "type": "UserGroup"}))).is_some());
        let by_name = json!({"id": "00gX", "type": "UserGroup", "displayName": "Security keys"});
        assert!(order_for(&cfg(), &add(by_name)).is_some());
        let other = json!({"id": "00gY", "type": "UserGroup", "displayName": "Sales"});
        assert!(order_for(&cfg(), &add(other)).is_none());
        let login = json!({"uuid": "l", "eventType": "user.session.start",
            "target": [{"id": "00u1", "type": "User"}]});
        assert!(order_for(&cfg(), &login).is_none());
        let no_uuid = json!({"eventType": INITIATE, "target": [{"id": "00u1", "type": "User"}]});
        assert!(order_for(&cfg(), &no_uuid).is_none());
    }
}
