#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The accepted-token memory: what it skips, and what it still checks.

use std::sync::{Arc, Mutex};

use fpr_sandbox::tokens::TokenSigner;
use serde_json::{Value, json};

use super::{ROLE_CREATE, ROLE_READ, Refusal, Verifier, now};
use crate::config::AuthConfig;

const ISSUER: &str = "https://issuer.test/v2.0";

/// A JWKS endpoint on loopback serving whatever `keys` holds at each fetch.
async fn jwks_server(keys: Arc<Mutex<Value>>) -> url::Url {
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { axum::Json(keys.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/keys").parse().unwrap()
}

fn claims(exp: u64, roles: &[&str]) -> Value {
    let now = now();
    json!({"iss": ISSUER, "aud": "api://fpr", "azp": "app-1", "oid": "caller-1",
           "iat": now - 10, "nbf": now - 10, "exp": exp, "roles": roles})
}

async fn verifier(signer: &TokenSigner) -> (Arc<Verifier>, Arc<Mutex<Value>>) {
    let keys = Arc::new(Mutex::new(json!({"keys": [signer.public_jwk()]})));
    let url = jwks_server(keys.clone()).await;
    let cfg = AuthConfig::new(ISSUER, url, vec!["api://fpr".into()], vec!["app-1".into()]);
    (Verifier::start(cfg).await, keys)
}

#[tokio::test]
async fn an_accepted_token_is_not_checked_again_until_it_expires() {
    let signer = TokenSigner::generate("k1").unwrap();
    let (v, _) = verifier(&signer).await;
    let exp = now() + 600;
    let token = signer.sign(&claims(exp, &[ROLE_CREATE])).unwrap();
    for _ in 0..50 {
        let caller = v.verify(&token, ROLE_CREATE).await.unwrap();
        assert_eq!(
            (caller.app.as_str(), caller.oid.as_str()),
            ("app-1", "caller-1")
        );
    }
    assert_eq!(v.signature_checks(), 1);
    // The role each call needs is still checked.
    assert!(matches!(
        v.verify(&token, ROLE_READ).await,
        Err(Refusal::Forbidden(_))
    ));
    // Time still runs for a remembered token: past exp and the skew, it is refused...
    let skew = v.cfg.clock_skew.as_secs();
    v.verify_at(&token, ROLE_CREATE, exp + skew).await.unwrap();
    let late = v.verify_at(&token, ROLE_CREATE, exp + skew + 1).await;
    assert_eq!(
        late,
        Err(Refusal::Unauthenticated("token refused: expired".into()))
    );
    // ... and before its nbf too.
    let early = v
        .verify_at(&token, ROLE_CREATE, now() - 10 - skew - 1)
        .await;
    assert!(
        matches!(early, Err(Refusal::Unauthenticated(_))),
        "{early:?}"
    );
    assert_eq!(v.signature_checks(), 1);
    // A token differing from the remembered one is checked in full, and a forged one refused.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(matches!(
        v.verify(&forged, ROLE_CREATE).await,
        Err(Refusal::Unauthenticated(_))
    ));
    assert_eq!(v.signature_checks(), 2);
}

#[tokio::test]
async fn a_key_dropped_by_the_issuer_ends_its_remembered_tokens() {
    let old = TokenSigner::generate("old").unwrap();
    let new = TokenSigner::generate("new").unwrap();
    let (v, keys) = verifier(&old).await;
    let token = old.sign(&claims(now() + 600, &[ROLE_CREATE])).unwrap();
    v.verify(&token, ROLE_CREATE).await.unwrap();
    // The issuer rolls its key over; the next fetch (here, for a token of the new key) drops
    // the old one and everything it let in.
    *keys.lock().unwrap() = json!({"keys": [new.public_jwk()]});
    let fresh = new.sign(&claims(now() + 600, &[ROLE_CREATE])).unwrap();
    v.verify(&fresh, ROLE_CREATE).await.unwrap();
    assert_eq!(
        v.verify(&token, ROLE_CREATE).await,
        Err(Refusal::Unauthenticated(
            "token signed by an unknown key".into()
        ))
    );
}

#[tokio::test]
async fn the_memory_stays_bounded() {
    let signer = TokenSigner::generate("k1").unwrap();
    let (v, _) = verifier(&signer).await;
    let exp = now() + 600;
    for i in 0..(super::MAX_ACCEPTED + 10) {
        let mut c = claims(exp, &[ROLE_CREATE]);
        c["jti"] = json!(i);
        let t = signer.sign(&c).unwrap();
        v.verify(&t, ROLE_CREATE).await.unwrap();
    }
    let held = v.accepted.lock().unwrap().tokens.len();
    assert!(held <= super::MAX_ACCEPTED, "{held} tokens held");
}
