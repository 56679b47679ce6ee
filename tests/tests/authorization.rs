//! Who may call what: caller tokens from the sandbox tenant, checked by the orchestrator over a
//! real socket. The inbound-JWT catalogue: each case names the token and the refusal it gets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_jose::util::{b64e, hmac_sha256};
use fpr_proto::v1 as pb;
use fpr_sandbox::tokens::TokenSigner;
use fpr_tests::{Call, ShipmentClient, Stack, captured_logs, create_request, manual_sandbox};
use serde_json::{Value, json};
use tonic::Code;

/// Calls `rpc` of ShipmentService with `client` and returns the status code (Ok for success).
async fn call(client: &mut ShipmentClient, rpc: &str) -> Code {
    let id = || "00000000-0000-0000-0000-000000000000".to_owned();
    let c = match rpc {
        "GetStatus" => Call::Status,
        "ListShipments" => Call::List(pb::ListShipmentsRequest::default()),
        "GetShipment" => Call::Get(id()),
        "WatchShipment" => Call::Watch(id()),
        "CreateShipment" => Call::Create(Box::new(create_request(
            &format!("auth-{}", fpr_jose::util::random_id().unwrap()),
            "adele.vance@contoso.test",
        ))),
        "UpdateShipment" => Call::Update(pb::UpdateShipmentRequest {
            shipment_id: id(),
            ..Default::default()
        }),
        "CancelShipment" => Call::Cancel(id(), "test".into()),
        "RetryShipment" => Call::Retry(id()),
        "CompleteShipment" => Call::Complete(id(), "test".into()),
        "ResendPin" => Call::Resend(id()),
        "ProcessShipments" => Call::Process,
        "GetCatalog" => Call::Catalog,
        "PlanGroupOrder" => Call::PlanGroup(group_request()),
        "OrderGroup" => Call::OrderGroup(group_request()),
        other => panic!("unknown rpc {other}"),
    };
    match fpr_tests::call(client, c).await {
        Ok(()) => Code::Ok,
        Err(s) => {
            if s.code() == Code::PermissionDenied {
                assert!(
                    s.message().contains("lacks the app role Shipments."),
                    "{rpc}: {}",
                    s.message()
                );
            }
            s.code()
        }
    }
}

const READ: [&str; 5] = [
    "GetStatus",
    "ListShipments",
    "GetShipment",
    "WatchShipment",
    "GetCatalog",
];
/// A group order for a group that does not exist: past the role check, it orders nothing.
fn group_request() -> pb::GroupOrderRequest {
    pb::GroupOrderRequest {
        idp: pb::Idp::Entra as i32,
        group: "No such group".into(),
        ..Default::default()
    }
}

const CREATE: [&str; 3] = ["CreateShipment", "PlanGroupOrder", "OrderGroup"];
const ADMIN: [&str; 6] = [
    "UpdateShipment",
    "CancelShipment",
    "RetryShipment",
    "CompleteShipment",
    "ResendPin",
    "ProcessShipments",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_roles_decide_each_rpc() {
    let stack = Stack::start(manual_sandbox()).await;
    let with_roles = |roles: Value| {
        let stack = &stack;
        async move {
            let t = stack.mint_token(json!({ "roles": roles })).await;
            stack.client_with(Some(t)).await
        }
    };
    let all: Vec<&str> = READ.iter().chain(&CREATE).chain(&ADMIN).copied().collect();
    assert_eq!(all.len(), 14, "every RPC of ShipmentService");

    // No role at all, or no roles claim: every RPC is PERMISSION_DENIED.
    let mut none = with_roles(json!([])).await;
    let t = stack
        .mint_token(json!({ "claims": { "roles": null } }))
        .await;
    let mut no_claim = stack.client_with(Some(t)).await;
    for rpc in &all {
        assert_eq!(call(&mut none, rpc).await, Code::PermissionDenied, "{rpc}");
        assert_eq!(
            call(&mut no_claim, rpc).await,
            Code::PermissionDenied,
            "{rpc}"
        );
    }

    // Read-only: reads pass (NOT_FOUND for the unknown id is past the check), nothing else.
    let mut reader = with_roles(json!(["Shipments.Read"])).await;
    for rpc in READ {
        assert_ne!(
            call(&mut reader, rpc).await,
            Code::PermissionDenied,
            "{rpc}"
        );
    }
    for rpc in ADMIN.iter().chain(&CREATE) {
        assert_eq!(
            call(&mut reader, rpc).await,
            Code::PermissionDenied,
            "{rpc}"
        );
    }

    // Create-only: orders, and cannot read or administer.
    let mut creator = with_roles(json!(["Shipments.Create"])).await;
    assert_eq!(call(&mut creator, "CreateShipment").await, Code::Ok);
    for rpc in ["PlanGroupOrder", "OrderGroup"] {
        assert_eq!(
            call(&mut creator, rpc).await,
            Code::InvalidArgument,
            "{rpc}: past the role check, an unknown group"
        );
    }
    for rpc in READ.iter().chain(&ADMIN) {
        assert_eq!(
            call(&mut creator, rpc).await,
            Code::PermissionDenied,
            "{rpc}"
        );
    }

    // Admin holds every role.
    let mut admin = with_roles(json!(["Shipments.Admin"])).await;
    for rpc in &all {
        assert_ne!(call(&mut admin, rpc).await, Code::PermissionDenied, "{rpc}");
    }
    // Roles of another API mean nothing here.
    let mut other = with_roles(json!(["Shipments.ReadWrite", "Directory.Read.All"])).await;
    assert_eq!(call(&mut other, "GetStatus").await, Code::PermissionDenied);

    // Two shipments were ordered (creator and admin); nothing else changed anything.
    let listed = admin
        .list_shipments(pb::ListShipmentsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.shipments.len(), 2);

    // Each accepted call is logged with the caller's app and object id.
    let logs = captured_logs();
    assert!(
        logs.lines().any(|l| l.contains("Caller call")
            && l.contains("caller.app=fpr-caller-app")
            && l.contains("caller.oid=")
            && l.contains("CreateShipment")),
        "no caller log line"
    );
}

/// A token with `header` and `claims`, signed HS256 with `secret` or unsigned.
fn handmade(header: &Value, claims: &Value, hs256_secret: Option<&[u8]>) -> String {
    let input = format!(
        "{}.{}",
        b64e(header.to_string().as_bytes()),
        b64e(claims.to_string().as_bytes())
    );
    let sig = hs256_secret.map_or_else(String::new, |k| b64e(&hmac_sha256(k, input.as_bytes())));
    format!("{input}.{sig}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_token_catalogue() {
    let stack = Stack::start(manual_sandbox()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let minted: Value = stack
        .sandbox
        .http
        .post(stack.sandbox.url("/_sandbox/tokens"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let good_claims = minted["claims"].clone();
    let jwks: Value = serde_json::from_str(&stack.sandbox.tenant_jwks().await).unwrap();
    let tenant_kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let rogue = TokenSigner::generate("rogue-kid-1").unwrap();
    let impostor = TokenSigner::generate(&tenant_kid).unwrap();
    let with = |edits: Value| {
        let mut c = good_claims.clone();
        for (k, v) in edits.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };

    let mint = |claims: Value| {
        let stack = &stack;
        async move { stack.mint_token(json!({ "claims": claims })).await }
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            mint(json!({"exp": now - 600, "iat": now - 4000, "nbf": now - 4000})).await,
        ),
        (
            "not yet valid (nbf 10 min ahead)",
            mint(json!({"nbf": now + 600})).await,
        ),
        (
            "issued in the future (iat 10 min ahead)",
            mint(json!({"iat": now + 600})).await,
        ),
        ("no exp", mint(json!({"exp": null})).await),
        ("no iat", mint(json!({"iat": null})).await),
        (
            "wrong issuer",
            mint(json!({"iss": "https://login.microsoftonline.com/other/v2.0"})).await,
        ),
        (
            "wrong audience",
            mint(json!({"aud": "api://another-api"})).await,
        ),
        (
            "unknown app of the same tenant",
            stack
                .mint_token(json!({"client_id": "another-app-of-the-tenant"}))
                .await,
        ),
        (
            "no app claim",
            mint(json!({"azp": null, "appid": null})).await,
        ),
        (
            "Graph token (wrong audience)",
            stack.sandbox.graph_token().await,
        ),
        (
            "alg none",
            handmade(
                &json!({"alg": "none", "typ": "JWT", "kid": tenant_kid}),
                &good_claims,
                None,
            ),
        ),
        (
            "HS256 keyed with the RSA public key",
            handmade(
                &json!({"alg": "HS256", "typ": "JWT", "kid": tenant_kid}),
                &good_claims,
                Some(jwks["keys"][0].to_string().as_bytes()),
            ),
        ),
        ("unknown kid", rogue.sign(&good_claims).unwrap()),
        (
            "known kid, another key",
            impostor.sign(&good_claims).unwrap(),
        ),
        ("tampered claims", {
            let t = stack.mint_token(json!({})).await;
            let parts: Vec<&str> = t.split('.').collect();
            let more = with(json!({"roles": ["Shipments.Admin", "Everything"]}));
            format!(
                "{}.{}.{}",
                parts[0],
                b64e(more.to_string().as_bytes()),
                parts[2]
            )
        }),
        ("garbage", "not-a-jwt".into()),
        ("empty", String::new()),
    ];
    for (name, token) in &cases {
        let mut client = stack.client_with(Some(token.clone())).await;
        let err = client
            .get_status(pb::GetStatusRequest {})
            .await
            .expect_err(name);
        assert_eq!(
            err.code(),
            Code::Unauthenticated,
            "{name}: {}",
            err.message()
        );
        assert!(
            token.is_empty() || !err.message().contains(token.as_str()),
            "{name}: the token is echoed"
        );
    }
    let mut anon = stack.client_with(None).await;
    assert_eq!(
        anon.get_status(pb::GetStatusRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // Within the allowed skew (60 s by default) is fine.
    let skewed = mint(json!({"nbf": now + 20, "iat": now + 20})).await;
    let mut ok = stack.client_with(Some(skewed)).await;
    ok.get_status(pb::GetStatusRequest {}).await.unwrap();

    // An unknown-kid flood: at most one fetch of the issuer's keys per interval.
    let before = stack.verifier.fetches();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let t = TokenSigner::generate(&format!("flood-{i}"))
            .unwrap()
            .sign(&good_claims)
            .unwrap();
        let mut c = stack.client_with(Some(t)).await;
        tasks.push(tokio::spawn(async move {
            c.get_status(pb::GetStatusRequest {})
                .await
                .unwrap_err()
                .code()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Code::Unauthenticated);
    }
    let fetched = stack.verifier.fetches() - before;
    assert!(fetched <= 1, "{fetched} fetches for 40 unknown kids");
    println!(
        "inbound JWT catalogue: {} refused kinds, unknown-kid flood of 40 caused {fetched} fetch(es)",
        cases.len() + 1
    );
}

/// The issuer's keys are fetched without following a redirect: a JWKS URL that redirects
/// elsewhere loads no key, and every token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuer_keys_are_never_fetched_through_a_redirect() {
    let keys_host = fpr_tests::http::Server::start().await;
    keys_host.redirect("/keys-moved", &keys_host.url("/keys"));
    let moved = keys_host.url("/keys-moved").parse().unwrap();
    let stack = Stack::start_tweaked(manual_sandbox(), |c| c.auth.jwks_url = moved).await;
    // The tenant's real keys, one redirect away: following it would make tokens valid.
    keys_host.route("/keys", 200, stack.sandbox.tenant_jwks().await);
    let mut client = stack.client().await;
    let err = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());
    let fetched: Vec<String> = keys_host.recorded().into_iter().map(|r| r.path).collect();
    assert!(fetched.iter().all(|p| p == "/keys-moved"), "{fetched:?}");
}
