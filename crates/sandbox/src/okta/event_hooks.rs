//! Okta Event Hooks: registered through the admin API (after Okta's one-time verification
//! against the hook), then sent `system.mfa.preregister.initiate` when
//! `initiate-fulfillment-request` is called. Okta does not document where that request's
//! order ids appear in the LogEvent; the sandbox puts them in `debugContext.debugData` (as
//! strings, as the request has them), which is where fpr looks first.

use super::*;

/// A registered, verified hook.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EventHook {
    /// Where events go.
    pub url: String,
    /// The `Authorization` header value sent with each call.
    pub authorization: String,
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string())
}

/// Okta's verification step: a GET with a challenge the hook must echo back.
pub async fn verify(hook: &EventHook) -> Result<(), String> {
    let challenge = fpr_jose::util::random_id().map_err(|e| e.to_string())?;
    let resp = client()?
        .get(&hook.url)
        .header("authorization", &hook.authorization)
        .header("x-okta-verification-challenge", &challenge)
        .send()
        .await
        .map_err(|e| format!("verification call failed: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() && body["verification"] == challenge.as_str() {
        Ok(())
    } else {
        Err(format!("verification failed: {status} {body}"))
    }
}

/// The LogEvent of an initiate-fulfillment-request for `user`.
pub fn initiate_event(app: &App, user: &User, data: &Value) -> Value {
    let uuid = fpr_jose::util::random_id().unwrap_or_default();
    json!({
        "uuid": uuid,
        "published": rfc3339(now()),
        "eventType": "system.mfa.preregister.initiate",
        "version": "0",
        "displayMessage": "Initiate fulfillment request for a preregistered authenticator",
        "severity": "INFO",
        "actor": {"id": "00usandboxadmin", "type": "User", "alternateId": "admin@example.okta.com",
                  "displayName": "Sandbox Admin"},
        "outcome": {"result": "SUCCESS"},
        "target": [{"id": user.id, "type": "User", "alternateId": user.login,
                    "displayName": user.display_name()}],
        "debugContext": {"debugData": {
            "productId": data["productId"], "customizationId": data["customizationId"],
            "inventoryProductId": data["inventoryProductId"]}},
        "transaction": {"type": "WEB", "id": format!("sandbox-{uuid}")},
        "_sandbox": {"org": app.base()}
    })
}

/// Sends `events` to every registered hook, on a task of its own; one retry on a failure, as
/// Okta retries once. Each outcome is kept for the admin API.
pub fn deliver(app: Arc<App>, events: Vec<Value>) {
    let hooks = app.state().okta_event_hooks.clone();
    if hooks.is_empty() || events.is_empty() {
        return;
    }
    let body = json!({
        "eventType": "com.okta.event_hook", "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1", "source": format!("{}/api/v1/eventHooks/sandbox", app.base()),
        "eventId": fpr_jose::util::random_id().unwrap_or_default(),
        "eventTime": rfc3339(now()), "contentType": "application/json",
        "data": {"events": events},
    });
    tokio::spawn(async move {
        let Ok(http) = client() else { return };
        for hook in hooks {
            let mut outcome = String::new();
            for _ in 0..2 {
                let sent = http
                    .post(&hook.url)
                    .header("authorization", &hook.authorization)
                    .json(&body)
                    .send()
                    .await;
                outcome = match sent {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(e) => format!("error: {e}"),
                };
                if outcome == "200" || outcome == "204" {
                    break;
                }
            }
            app.state()
                .okta_event_deliveries
                .push(json!({"url": hook.url, "event_id": body["eventId"], "outcome": outcome}));
        }
    });
}
