//! The FIDO Connector's REST API on the orchestrator, driven as a connector script drives it:
//! the documented request and answers, over real HTTP, through to a completed shipment. Every
//! answer is checked against the OpenAPI document the orchestrator serves, and every documented
//! endpoint is called.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::collections::BTreeSet;

use fpr_orchestrator::config::RestConfig;
use fpr_tests::{Stack, manual_sandbox, ship_at_yubico};
use reqwest::Method;
use serde_json::{Value, json};

/// A REST client that checks every answer against the served OpenAPI document.
struct Api {
    http: reqwest::Client,
    base: String,
    doc: Value,
    called: BTreeSet<(String, String)>,
}

impl Api {
    async fn new(stack: &Stack) -> Self {
        let base = format!("http://{}", stack.rest.expect("rest.listen is set"));
        let http = reqwest::Client::new();
        let doc: Value = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
        Self {
            http,
            base,
            doc,
            called: BTreeSet::new(),
        }
    }

    /// Calls `path` (an instance of the documented `template`) and checks the answer.
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        let m = method.as_str().to_ascii_lowercase();
        self.called.insert((template.to_owned(), m.clone()));
        let op = &self.doc["paths"][template][&m];
        assert!(op.is_object(), "{m} {template} is not documented");
        let documented = &op["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{m} {path} answered {status}, which is not documented: {body}"
        );
        match documented["content"]["application/json"]["schema"].clone() {
            Value::Null => assert_eq!(body, Value::Null, "{m} {path}: {status} has no body"),
            mut schema => {
                schema["components"] = self.doc["components"].clone();
                let v = jsonschema::validator_for(&schema).unwrap();
                let errors: Vec<String> = v.iter_errors(&body).map(|e| e.to_string()).collect();
                assert!(
                    errors.is_empty(),
                    "{m} {path} {status}: {body} breaks the document: {errors:?}"
                );
            }
        }
        (status, body)
    }
}

impl Api {
    /// `POST /v1/fpr/shipments` with `body`, checked as [`Api::call`] checks.
    async fn create(&mut self, token: Option<&str>, body: Value) -> (u16, Value) {
        const PATH: &str = "/v1/fpr/shipments";
        self.call(Method::POST, PATH, PATH, token, Some(body)).await
    }
}

/// The seed's documented request for `user`.
fn documented_request(user: &str) -> Value {
    json!({
        "user_id": user,
        "pin_request": { "type": "generate", "length": 8 },
        "yubico_shipment_request": {
            "delivery_type": 1,
            "recipient": {
                "recipient_company": "Contoso",
                "recipient_email": "pat.user@contoso.test",
                "recipient_firstname": "Pat",
                "recipient_lastname": "User",
                "recipient_telephone": "5555555555"
            },
            "mailing_address": {
                "street_line1": "7788 Foxrun Street",
                "street_line2": "Apt 1",
                "city": "Dedham",
                "region": "MA",
                "postal_code": "02026",
                "country_code_2": "US"
            },
            "shipment_items": [{
                "product_id": 29,
                "inventory_product_id": 106,
                "product_quantity": 1,
                "customization_id": "RXJN83"
            }]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_script_works_unchanged() {
    let stack = Stack::start_tweaked(manual_sandbox(), |c| {
        let mut rest = RestConfig::new("127.0.0.1:0");
        rest.order_wait = std::time::Duration::from_secs(20);
        c.rest = Some(rest);
    })
    .await;
    let mut api = Api::new(&stack).await;
    let (s, doc) = api
        .call(Method::GET, "/openapi.json", "/openapi.json", None, None)
        .await;
    assert_eq!((s, &doc), (200, &api.doc));
    let token = stack.caller_token().await;
    let t = Some(token.as_str());
    let (_, users, _) = stack
        .sandbox
        .admin(Method::GET, "/users?idp=entra", None)
        .await;
    // Users whose manager has a mailbox to receive the PIN (one seeded manager has none).
    let mailed_manager = |u: &Value| {
        users.as_array().unwrap().iter().any(|m| {
            m["id"] == u["manager_id"] && m["mail"].as_str().is_some_and(|s| !s.is_empty())
        })
    };
    let user = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| mailed_manager(u) && u["login"].as_str().unwrap().contains('1'))
        .unwrap();
    let user_id = user["id"].as_str().unwrap().to_owned();

    // Status: the connector's setting names.
    let (s, status) = api
        .call(Method::GET, "/v1/status", "/v1/status", t, None)
        .await;
    assert_eq!(s, 200);
    // Every key the connector documents.
    for key in [
        "AZURE_TABLES_ENDPOINT",
        "AZURE_TABLES_SHIPMENTS_TABLE_NAME",
        "AZURE_KEY_VAULT_ENDPOINT",
        "AZURE_TENANT_ID",
        "EMAIL_API_SEND_ENDPOINT",
        "LOGGING_LEVEL_COM_YUBICO",
        "YE_JWKS_SIGN_ENDPOINT",
        "YE_JWKS_TRANSPORT_ENDPOINT",
        "CRON_PROCESS_SHIPMENT_SCHEDULE",
        "CRON_DATA_CLEANUP_SCHEDULE",
        "CRON_DATA_CLEANUP_COMPLETED_DAYS",
        "ENTRA_FIDO_API_CLIENT_ID",
        "ENTRA_FIDO_API_VERSION",
        "ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES",
        "YE_API_BASE_URL",
    ] {
        assert!(status[key].is_string(), "{key} in {status}");
    }
    assert_eq!(status["YE_API_TOKEN"], "[redacted]");
    assert!(
        status["YE_JWKS_TRANSPORT_ENDPOINT"]
            .as_str()
            .unwrap()
            .ends_with("/.well-known/yubico-transport-keys.jwks"),
        "{status}"
    );
    assert!(
        status["EMAIL_API_SEND_ENDPOINT"]
            .as_str()
            .unwrap()
            .starts_with("smtp:")
    );

    // No token, a bad one, a token without the role.
    let (s, e) = api
        .call(Method::GET, "/v1/status", "/v1/status", None, None)
        .await;
    assert_eq!((s, e["error_code"].as_str()), (401, Some("unauthorized")));
    let (s, _) = api
        .call(
            Method::GET,
            "/v1/status",
            "/v1/status",
            Some("nonsense"),
            None,
        )
        .await;
    assert_eq!(s, 401);
    let reader = stack
        .mint_token(json!({ "roles": ["Shipments.Read"] }))
        .await;
    let (s, e) = api
        .create(Some(&reader), documented_request(&user_id))
        .await;
    assert_eq!((s, e["error_code"].as_str()), (403, Some("forbidden")));

    // The documented 400s: a field over its limit, an unknown user, a bad PIN length.
    let mut long = documented_request(&user_id);
    long["yubico_shipment_request"]["recipient"]["recipient_lastname"] =
        json!("Wolfeschlegelsteinhausen");
    let (s, e) = api.create(t, long).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error_code"], "ye_error");
    assert_eq!(e["error_data"]["code"], "validation_error");
    assert!(
        e["error_data"]["message"]
            .as_str()
            .unwrap()
            .contains("recipient_lastname"),
        "{e}"
    );
    let (s, e) = api
        .create(
            t,
            documented_request("7dc95e2f-5300-4f1e-9d2c-000000000000"),
        )
        .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error_code"], "idp_error");
    assert_eq!(
        e["error_message"],
        "Could not find user: 7dc95e2f-5300-4f1e-9d2c-000000000000"
    );
    let mut pin = documented_request(&user_id);
    pin["pin_request"]["length"] = json!(3);
    let (s, e) = api.create(t, pin).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error_code"], "api_error");
    assert_eq!(e["error_data"]["error_type"], "validation");
    assert!(
        e["error_message"]
            .as_str()
            .unwrap()
            .contains("pin_request.length")
    );
    let (s, e) = api.create(t, json!({"user_id": 7})).await;
    assert_eq!((s, e["error_code"].as_str()), (400, Some("api_error")));
    let before = stack.sandbox.shipments().await.len();
    assert_eq!(before, 0, "no refused request ordered anything");

    // The documented request: 201 with the YubiEnterprise id.
    let (s, created) = api.create(t, documented_request(&user_id)).await;
    assert_eq!(s, 201, "{created}");
    let ye_id = created["data"]["shipment_id"].as_str().unwrap().to_owned();
    let fpr_id = created["data"]["fpr_shipment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created["data"]["order_placed"], true);
    let ordered = stack.sandbox.shipments().await;
    assert_eq!(ordered.len(), 1);
    assert!(ordered[0].to_string().contains(&ye_id), "{ordered:?}");

    // Status by either id: ongoing.
    let template = "/v1/fpr/shipments/{shipment_id}";
    for id in [&ye_id, &fpr_id] {
        let (s, st) = api
            .call(
                Method::GET,
                template,
                &format!("/v1/fpr/shipments/{id}"),
                t,
                None,
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(st["shipment_id"], id.as_str());
        assert_eq!(st["shipment_state"], "ongoing");
        assert!(st.get("error_kind").is_none(), "{st}");
    }
    let (s, _) = api
        .call(
            Method::GET,
            template,
            "/v1/fpr/shipments/no-such-id",
            t,
            None,
        )
        .await;
    assert_eq!(s, 404);

    // Resend before completion is refused; process-shipments needs the admin role.
    let resend = "/v1/operations/resend-pin/{shipment_id}";
    let (s, _) = api
        .call(
            Method::GET,
            resend,
            &format!("/v1/operations/resend-pin/{ye_id}"),
            t,
            None,
        )
        .await;
    assert_eq!(s, 409);
    let process = "/v1/operations/process-shipments";
    let (s, _) = api
        .call(Method::GET, process, process, Some(&reader), None)
        .await;
    assert_eq!(s, 403);

    // Yubico ships; processing on demand completes it.
    ship_at_yubico(&stack, &ye_id).await;
    let (s, body) = api.call(Method::GET, process, process, t, None).await;
    assert_eq!((s, body), (204, Value::Null));
    let (s, st) = api
        .call(
            Method::GET,
            template,
            &format!("/v1/fpr/shipments/{ye_id}"),
            t,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(st["shipment_state"], "complete", "{st}");
    assert_eq!(st["fpr_state"], "complete");

    // Resend PIN: 204, and a second message reaches the PIN's recipient.
    let mailbox = || async {
        let (_, mail, _) = stack.sandbox.admin(Method::GET, "/mailbox", None).await;
        mail["messages"].as_array().map_or(0, Vec::len)
    };
    let sent = mailbox().await;
    assert!(sent >= 1);
    let (s, _) = api
        .call(
            Method::GET,
            resend,
            &format!("/v1/operations/resend-pin/{ye_id}"),
            t,
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(mailbox().await, sent + 1);

    // An Idempotency-Key makes a retried POST return the first shipment.
    let other = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| mailed_manager(u) && u["id"] != user["id"])
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let resp = api
            .http
            .post(format!("{}/v1/fpr/shipments", api.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", "hr-ticket-4711")
            .json(&documented_request(other["id"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let v: Value = resp.json().await.unwrap();
        ids.push(v["data"]["shipment_id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(stack.sandbox.shipments().await.len(), 2);

    // Every documented endpoint was called.
    let documented: BTreeSet<(String, String)> = api.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(|m| (p.clone(), m.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let untested: Vec<_> = documented
        .iter()
        .filter(|e| !api.called.contains(*e))
        .collect();
    assert!(
        untested.is_empty(),
        "documented but not called: {untested:?}"
    );
}
