//! Operating the vault: master key checks and rotation, mutual TLS, pinned JWKS files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_jose::seal::MasterKey;
use fpr_proto::vault::v1 as pb;
use fpr_proto::vault::v1::vault_service_client::VaultServiceClient;
use fpr_testkit::{Yubico, creation_options, smtp};
use fpr_tests::{Pins, VaultFixture, jwks_server};
use fpr_vault::keystore::KeyStore;

fn seal_req(shipment: &str) -> pb::SealRequestsRequest {
    pb::SealRequestsRequest {
        shipment_ref: shipment.into(),
        creation_options_json: creation_options(shipment).to_string(),
        pin_policy: Some(pb::PinPolicy {
            length: 8,
            force_change: false,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_master_key_fails_at_start_and_rotation_reseals() {
    let yubico = Yubico::new();
    let jwks = jwks_server(&yubico).await;
    let mail = smtp::Receiver::start().await;
    let mut vault = VaultFixture::builder(&jwks, Pins::Smtp(mail.addr))
        .start()
        .await;
    let mut client = vault.client().await;
    let sealed = client
        .seal_requests(seal_req("shp-rot"))
        .await
        .unwrap()
        .into_inner();
    vault.stop().await;

    // Another key is refused with both check values, before anything else happens.
    let old = MasterKey::from_encoded(&std::fs::read(&vault.master_key_file).unwrap()).unwrap();
    let wrong = MasterKey::from_bytes(&[9u8; 32]).unwrap();
    let err = KeyStore::open(&vault.store, wrong).unwrap_err();
    assert!(
        matches!(&err, fpr_vault::Error::WrongMasterKey { expected, found } if *expected == old.check_value() && found.len() == 6)
    );
    assert!(err.to_string().contains("wrong master key"));

    // Rotation re-seals every key; afterwards only the new key opens the store.
    let new_hex = MasterKey::generate_hex().unwrap();
    let mut store = KeyStore::open(&vault.store, old).unwrap();
    assert_eq!(
        store
            .rotate(MasterKey::from_encoded(new_hex.as_bytes()).unwrap())
            .unwrap(),
        1
    );
    drop(store);
    let old_again =
        MasterKey::from_encoded(&std::fs::read(&vault.master_key_file).unwrap()).unwrap();
    assert!(KeyStore::open(&vault.store, old_again).is_err());
    let store = KeyStore::open(
        &vault.store,
        MasterKey::from_encoded(new_hex.as_bytes()).unwrap(),
    )
    .unwrap();
    let rec = store.get("shp-rot").unwrap().unwrap();
    let key = store.response_key("shp-rot", &rec).unwrap();
    assert_eq!(key.kid(), sealed.request_id);
}

fn pem_pair(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> (String, String) {
    (cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_listener_requires_a_client_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let yubico = Yubico::new();
    let jwks = jwks_server(&yubico).await;
    let mail = smtp::Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();

    // A CA that signs the vault's and the client's certificates.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["vault.test".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["orchestrator.test".into()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let (s_pem, s_key) = pem_pair(&server_cert, &server_key);
    for (name, text) in [
        ("ca.pem", ca_cert.pem()),
        ("server.pem", s_pem),
        ("server.key", s_key),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    // Find a free port on loopback, then let the vault bind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra = format!(
        "\n[server.tls]\ncert_file = \"{0}/server.pem\"\nkey_file = \"{0}/server.key\"\nclient_ca_file = \"{0}/ca.pem\"\n",
        dir.path().display()
    );
    let vault = VaultFixture::builder(&jwks, Pins::Smtp(mail.addr))
        .listen(&format!("tcp:127.0.0.1:{port}"))
        .extra(&extra)
        .start()
        .await;

    let endpoint = |tls: tonic::transport::ClientTlsConfig| {
        tonic::transport::Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
    };
    let base = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_cert.pem()))
        .domain_name("vault.test");

    // Without a client certificate the handshake or the call fails.
    let refused = match endpoint(base.clone()).connect().await {
        Err(_) => true,
        Ok(ch) => VaultServiceClient::new(ch)
            .get_status(pb::GetStatusRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a call without a client certificate must fail");

    // With one it works.
    let identity =
        tonic::transport::Identity::from_pem(client_cert.pem(), client_key.serialize_pem());
    let ch = endpoint(base.identity(identity)).connect().await.unwrap();
    let status = VaultServiceClient::new(ch)
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status.key_store.unwrap().healthy);
    drop(vault);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_jwks_files_need_no_network() {
    let yubico = Yubico::new();
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("transport.jwks");
    let s = dir.path().join("sign.jwks");
    std::fs::write(&t, yubico.transport_jwks().to_json().to_string()).unwrap();
    std::fs::write(&s, yubico.signing_jwks().to_json().to_string()).unwrap();
    // The JWKS server publishes nothing: only the files can supply the keys.
    let empty = fpr_testkit::http::Server::start().await;
    let mail = smtp::Receiver::start().await;
    let vault = VaultFixture::builder(&empty, Pins::Smtp(mail.addr))
        .pinned_jwks(&t, &s)
        .start()
        .await;
    let mut client = vault.client().await;
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.transport_jwks.unwrap().source,
        format!("file:{}", t.display())
    );
    let sealed = client
        .seal_requests(seal_req("shp-file"))
        .await
        .unwrap()
        .into_inner();
    assert!(yubico.open_request(&sealed.pin_request_jwe).is_ok());
    assert!(empty.recorded().is_empty(), "no fetch when pinned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_jwks_start_degraded_and_seal_is_unavailable() {
    let yubico = Yubico::new();
    let jwks = fpr_testkit::http::Server::start().await; // answers 404
    let mail = smtp::Receiver::start().await;
    let vault = VaultFixture::builder(&jwks, Pins::Smtp(mail.addr))
        .start()
        .await;
    let mut client = vault.client().await;
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let t = status.transport_jwks.unwrap();
    assert!(t.kids.is_empty() && t.last_error.contains("404"));
    let err = client.seal_requests(seal_req("shp-x")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(status.key_store.unwrap().sealed_keys, 0);
    drop(yubico);
}
