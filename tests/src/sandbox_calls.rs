//! Calls a client of the real services makes to the sandbox over HTTP, for the sandbox's tests:
//! its key sets, requests sealed as the vault seals them, creation options, a shipment.

use fpr_jose::jwe::Algorithms;
use fpr_jose::protocol::PinSpec;
use fpr_jose::{Jwks, PrivateKey};
use reqwest::Method;
use serde_json::Value;

use crate::{SandboxFixture, fpr_shipment};

const GET: Method = Method::GET;
const POST: Method = Method::POST;

/// A key set the sandbox publishes at `path`.
pub async fn jwks(sb: &SandboxFixture, path: &str) -> Jwks {
    let text = sb
        .http
        .get(sb.url(path))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    Jwks::from_json(&text).unwrap()
}

/// Seals requests for `options` exactly as the vault does, to a transport key fetched over HTTP.
pub async fn seal(sb: &SandboxFixture, options: &Value) -> (PrivateKey, String, String) {
    let transport = jwks(sb, "/.well-known/yubico-transport-keys.jwks").await;
    let key = transport.choose_encryption_key().unwrap().unwrap().clone();
    let pin = PinSpec {
        kind: "generate".into(),
        length: 8,
        force_change: false,
    };
    fpr_vault::service::seal_requests(options, &pin, &key, Algorithms::default()).unwrap()
}

/// Opens a Yubico response as the vault does: decrypt, then verify against `signing`.
pub fn open(token: &str, key: &PrivateKey, signing: &Jwks) -> Result<Vec<u8>, fpr_jose::Error> {
    fpr_vault::service::open_response(token, key, signing).map(|v| v.payload.to_vec())
}

/// Graph's creation options for `user_id` (beta, 14 days), the `publicKey` member.
pub async fn creation_options(sb: &SandboxFixture, user_id: &str) -> Value {
    let (s, v, _) = sb.graph(GET, &format!("/beta/users/{user_id}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=20160)"), None).await;
    assert_eq!(s, 200, "{v}");
    v["publicKey"].clone()
}

/// Creates a shipment for `options` and reads it back; returns (shipment id, response key, body).
pub async fn ship(sb: &SandboxFixture, options: &Value) -> (String, PrivateKey, Value) {
    let (key, cred, pin) = seal(sb, options).await;
    let (s, created, _) = sb
        .ye(POST, "/v1/fpr/shipments", Some(fpr_shipment(&pin, &cred)))
        .await;
    assert_eq!(s, 200, "{created}");
    let id = created["shipment_id"].as_str().unwrap().to_owned();
    let (s, got, _) = sb.ye(GET, &format!("/v1/fpr/shipments/{id}"), None).await;
    assert_eq!(s, 200);
    (id, key, got)
}
