//! The sandbox over HTTP: its mailbox (SMTP and webhook), key rotation, users and the
//! snapshot that survives a restart. The upstreams have files of their own (sandbox_*.rs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_sandbox::Config;
use fpr_tests::SandboxFixture;
use fpr_tests::sandbox_calls::jwks;
use reqwest::Method;
use serde_json::json;

const GET: Method = Method::GET;
const POST: Method = Method::POST;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_over_smtp_and_webhook() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let sb = SandboxFixture::start(Config::default()).await;
    let stream = tokio::net::TcpStream::connect(sb.running.smtp_addr.unwrap())
        .await
        .unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = tokio::io::BufReader::new(r);
    let mut line = String::new();
    for cmd in [
        "",
        "EHLO test\r\n",
        "MAIL FROM:<vault@fpr.test>\r\n",
        "RCPT TO:<boss@contoso.test>\r\n",
        "DATA\r\n",
        "Subject: PIN\r\n\r\nPIN 12345678\r\n.\r\n",
        "QUIT\r\n",
    ] {
        w.write_all(cmd.as_bytes()).await.unwrap();
        loop {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                break;
            }
        }
        assert!(!line.starts_with('5'), "{cmd}: {line}");
    }
    let hook = sb
        .http
        .post(sb.url("/_sandbox/mailbox/webhook"))
        .header("x-fpr-signature", "t=1,v1=00")
        .json(&json!({"emails_to": ["boss@contoso.test"], "subject": "PIN", "pin": "87654321"}))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 200);
    let (_, mail, _) = sb.admin(GET, "/mailbox?to=boss@contoso.test", None).await;
    let m = mail["messages"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0]["via"].as_str(), m[0]["subject"].as_str()),
        (Some("smtp"), Some("PIN"))
    );
    assert!(m[0]["body"].as_str().unwrap().contains("12345678"));
    assert_eq!(m[1]["via"], "webhook");
    sb.admin(Method::DELETE, "/mailbox", None).await;
    assert!(
        sb.admin(GET, "/mailbox", None).await.1["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_users_and_snapshot_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: Some(dir.path().to_owned()),
        seed_users: 10,
        ..Config::default()
    };
    let sb = SandboxFixture::start(config.clone()).await;
    let before = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    assert_eq!(before.keys().len(), 2);
    let (_, rotated, _) = sb.admin(POST, "/yubico/rotate/signing", None).await;
    let after = jwks(&sb, "/.well-known/yubico-sign.jwks").await;
    assert_eq!(
        after.kids(),
        rotated["kids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(after.keys().len(), 2);
    assert_eq!(
        after.kids()[1],
        before.kids()[0],
        "the newest old key stays published"
    );
    let (s, _, _) = sb.admin(POST, "/users", Some(json!({"idp": "entra", "login": "new.hire@contoso.test", "given_name": "New", "surname": "Hire", "manager": "megan.bowen@contoso.test",
        "address": {"street": "1 Road", "city": "Boston", "region": "MA", "postal_code": "02108", "country": "US"}}))).await;
    assert_eq!(s, 201);
    assert_eq!(sb.admin(POST, "/users", Some(json!({"idp": "entra", "login": "new.hire@contoso.test", "given_name": "A", "surname": "B"}))).await.0, 409);
    let (_, all, _) = sb.admin(GET, "/users", None).await;
    assert_eq!(all.as_array().unwrap().len(), 10 + 11);
    sb.running.stop().await;

    let again = SandboxFixture::start(config).await;
    assert_eq!(
        jwks(&again, "/.well-known/yubico-sign.jwks").await,
        after,
        "keys persist"
    );
    let (_, u, _) = again
        .graph(GET, "/v1.0/users/new.hire@contoso.test/manager", None)
        .await;
    assert_eq!(u["mail"], "megan.bowen@contoso.test", "state persists");
}
