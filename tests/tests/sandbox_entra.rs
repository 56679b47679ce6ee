//! The sandbox's Microsoft login and Graph over HTTP: tokens, users and managers, creation
//! options, registration rules, throttling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_jose::protocol::CredentialResponse;
use fpr_sandbox::Config;
use fpr_tests::SandboxFixture;
use fpr_tests::sandbox_calls::{creation_options, jwks, open, ship};
use reqwest::Method;
use serde_json::{Value, json};

const GET: Method = Method::GET;
const POST: Method = Method::POST;

async fn token_reply(sb: &SandboxFixture, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = sb
        .http
        .post(sb.url(&format!("/{}/oauth2/v2.0/token", sb.config.tenant)))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_tokens_users_and_registration_rules() {
    let sb = SandboxFixture::start(Config {
        graph_rate_per_s: Some(1000),
        ..Config::default()
    })
    .await;
    let c = &sb.config;
    // Token endpoint errors, as Entra words them.
    let (s, v) = token_reply(
        &sb,
        &[
            ("client_id", &c.graph_client_id),
            ("client_secret", "wrong"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (401, Some("invalid_client")));
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215")
    );
    let (s, v) = token_reply(
        &sb,
        &[
            ("client_id", "nobody"),
            ("client_secret", "x"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((s, v["error_codes"][0].as_u64()), (400, Some(700016)));
    let (s, v) = token_reply(
        &sb,
        &[
            ("client_id", &c.graph_client_id),
            ("client_secret", &c.graph_client_secret),
            ("scope", "api://other/.default"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_scope")));
    // A caller token for fpr's own API verifies with the tenant's published keys.
    let scope = format!("{}/.default", c.api_audience);
    let (s, v) = token_reply(
        &sb,
        &[
            ("client_id", &c.caller_client_id),
            ("client_secret", &c.caller_client_secret),
            ("scope", &scope),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(s, 200);
    let keys: Value = sb
        .http
        .get(sb.url(&format!("/{}/discovery/v2.0/keys", c.tenant)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = fpr_sandbox::tokens::verify(
        v["access_token"].as_str().unwrap(),
        keys["keys"].as_array().unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            claims["aud"].as_str(),
            claims["azp"].as_str(),
            claims["idtyp"].as_str()
        ),
        (
            Some(c.api_audience.as_str()),
            Some(c.caller_client_id.as_str()),
            Some("app")
        )
    );
    // The caller token does not open Graph.
    let (s, _, _) = sb
        .send_with(
            GET,
            "/v1.0/users/megan.bowen@contoso.test",
            v["access_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(s, 401);
    assert_eq!(
        sb.http
            .get(sb.url("/v1.0/users/x"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );

    // Users by UPN and id, $select, manager.
    let (s, u, _) = sb
        .graph(
            GET,
            "/v1.0/users/adele.vance@contoso.test?$select=id,mail,userPrincipalName,otherMails",
            None,
        )
        .await;
    assert_eq!(
        (s, u["mail"].as_str()),
        (200, Some("adele.vance@contoso.test"))
    );
    assert!(u["otherMails"].is_array() && u.get("givenName").is_none());
    let (_, by_id, _) = sb
        .graph(
            GET,
            &format!("/beta/users/{}", u["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(by_id["userPrincipalName"], "adele.vance@contoso.test");
    let (s, m, _) = sb
        .graph(GET, "/v1.0/users/adele.vance@contoso.test/manager", None)
        .await;
    assert_eq!(
        (s, m["mail"].as_str(), m["@odata.type"].as_str()),
        (
            200,
            Some("megan.bowen@contoso.test"),
            Some("#microsoft.graph.user")
        )
    );
    assert_eq!(
        sb.graph(GET, "/v1.0/users/lee.gu@contoso.test/manager", None)
            .await
            .0,
        404,
        "no manager"
    );
    let (_, nomail, _) = sb
        .graph(GET, "/v1.0/users/johanna.lorenz@contoso.test/manager", None)
        .await;
    assert!(nomail["mail"].is_null(), "a manager without mail");
    let (s, e, _) = sb.graph(GET, "/v1.0/users/ghost@contoso.test", None).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("Request_ResourceNotFound"))
    );

    // creationOptions: the function form on beta (5 to 43,200), v1.0 without a parameter.
    let base = "/users/alex.wilber@contoso.test/authentication/fido2Methods";
    assert_eq!(
        sb.graph(
            GET,
            &format!("/beta{base}/creationOptions?challengeTimeoutInMinutes=60"),
            None
        )
        .await
        .0,
        405
    );
    assert_eq!(
        sb.graph(
            GET,
            &format!("/beta{base}/creationOptions(challengeTimeoutInMinutes=4)"),
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        sb.graph(
            GET,
            &format!("/beta{base}/creationOptions(challengeTimeoutInMinutes=43201)"),
            None
        )
        .await
        .0,
        400
    );
    let (s, beta, _) = sb
        .graph(
            GET,
            &format!("/beta{base}/creationOptions(challengeTimeoutInMinutes=43200)"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        beta["publicKey"]["challenge"]
            .as_str()
            .unwrap()
            .ends_with('='),
        "beta: padded standard base64"
    );
    let (s, v1, _) = sb
        .graph(GET, &format!("/v1.0{base}/creationOptions"), None)
        .await;
    assert_eq!(s, 200);
    let ch = v1["publicKey"]["challenge"].as_str().unwrap();
    assert!(!ch.contains(['=', '+', '/']), "v1.0: unpadded base64url");
    assert_eq!(v1["publicKey"]["rp"]["id"], "login.microsoft.com");

    // Registration rules: a challenge issued to someone else, displayName, forbidden fields.
    let diego = sb.user("diego.siciliani@contoso.test").await;
    let options = creation_options(&sb, diego["id"].as_str().unwrap()).await;
    let (_, key, shipment) = ship(&sb, &options).await;
    let signing = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    let pd = &shipment["shipment_items"][0]["product_data"][0];
    let cred: CredentialResponse = serde_json::from_slice(
        &open(
            pd["fido_credential_responses"][0].as_str().unwrap(),
            &key,
            &signing,
        )
        .unwrap(),
    )
    .unwrap();
    let body = |name: &str| {
        json!({"displayName": name, "publicKeyCredential": {"id": cred.credential.id, "response": {
            "clientDataJSON": cred.credential.response.client_data_json, "attestationObject": cred.credential.response.attestation_object}}})
    };
    let (s, e, _) = sb
        .graph(POST, &format!("/v1.0{base}"), Some(body("key")))
        .await;
    assert_eq!(
        (s, e["error"]["message"].as_str()),
        (400, Some("The challenge was not issued to this user."))
    );
    let diego_path = format!(
        "/v1.0/users/{}/authentication/fido2Methods",
        diego["id"].as_str().unwrap()
    );
    assert_eq!(
        sb.graph(POST, &diego_path, Some(body(&"x".repeat(31))))
            .await
            .0,
        400
    );
    let mut with_raw = body("key");
    with_raw["publicKeyCredential"]["rawId"] = json!("abc");
    assert_eq!(sb.graph(POST, &diego_path, Some(with_raw)).await.0, 400);
    assert_eq!(
        sb.graph(POST, &diego_path, Some(json!("a string"))).await.1["error"]["message"],
        "The request is missing a fido2AuthenticationMethod entity"
    );
    let (s, m, _) = sb.graph(POST, &diego_path, Some(body("Diego's key"))).await;
    assert_eq!(s, 201);
    let mid = m["id"].as_str().unwrap();
    assert_eq!(
        sb.graph(GET, &format!("{diego_path}/{mid}"), None).await.0,
        200
    );
    assert_eq!(
        sb.graph(Method::DELETE, &format!("{diego_path}/{mid}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        sb.graph(Method::DELETE, &format!("{diego_path}/{mid}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        sb.admin(GET, "/credentials", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_throttles_with_retry_after() {
    let sb = SandboxFixture::start(Config {
        graph_rate_per_s: Some(2),
        ..Config::default()
    })
    .await;
    let token = sb.graph_token().await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (s, _, h) = sb
            .send_with(GET, "/v1.0/users/megan.bowen@contoso.test", &token)
            .await;
        if s == 429 {
            assert!(h.get("retry-after").is_some());
        }
        statuses.push(s);
    }
    assert!(
        statuses.contains(&429) && statuses.contains(&200),
        "{statuses:?}"
    );
}
