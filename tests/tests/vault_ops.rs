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
use fpr_tests::{Pins, SmtpVault, VaultFixture, jwks_server};
use fpr_tests::{Yubico, smtp};
use fpr_vault::keystore::KeyStore;

fn seal_req(shipment: &str) -> pb::SealRequestsRequest {
    fpr_tests::seal_request(shipment, shipment, 8)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_master_key_fails_at_start_and_rotation_reseals() {
    let SmtpVault {
        yubico: _yubico,
        jwks: _jwks,
        mail: _mail,
        mut vault,
    } = SmtpVault::start().await;
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
    let store = KeyStore::open(&vault.store, old).unwrap();
    assert_eq!(
        store
            .rotate(MasterKey::from_encoded(new_hex.as_bytes()).unwrap())
            .await
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
    // Chains to the same CA but is not pinned.
    let other_key = KeyPair::generate().unwrap();
    let other_cert = CertificateParams::new(vec!["intruder.test".into()])
        .unwrap()
        .signed_by(&other_key, &issuer)
        .unwrap();
    let pin: String = fpr_jose::util::sha256(client_cert.der())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
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
        "\n[server.tls]\ncert_file = \"{0}/server.pem\"\nkey_file = \"{0}/server.key\"\nclient_ca_file = \"{0}/ca.pem\"\nallowed_client_sha256 = [\"{pin}\"]\n",
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
    let ch = endpoint(base.clone().identity(identity))
        .connect()
        .await
        .unwrap();
    let status = VaultServiceClient::new(ch)
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(status.key_store.unwrap().healthy);

    // A certificate of the same CA that is not pinned is refused.
    let intruder =
        tonic::transport::Identity::from_pem(other_cert.pem(), other_key.serialize_pem());
    let ch = endpoint(base.identity(intruder)).connect().await.unwrap();
    let err = VaultServiceClient::new(ch)
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::PermissionDenied,
        "{}",
        err.message()
    );
    assert!(err.message().contains("is not pinned"));
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
    let empty = fpr_tests::http::Server::start().await;
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
    let jwks = fpr_tests::http::Server::start().await; // answers 404
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

/// Rotation while serving: a new key in `master_key_file` is picked up, every stored key is
/// re-sealed under it, and a shipment sealed before opens and delivers after. A store left
/// under the previous key (the file changed while the vault was down) is re-sealed at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_rotates_while_serving() {
    let SmtpVault {
        yubico,
        jwks: _jwks,
        mail,
        mut vault,
    } = SmtpVault::start_with(|b| b.store("master_key_check_interval = \"100ms\"")).await;
    let mut client = vault.client().await;
    let kcv = |s: &pb::GetStatusResponse| s.key_store.clone().unwrap().master_key_check;
    let before = kcv(&client
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner());
    let sealed = client
        .seal_requests(seal_req("shp-live"))
        .await
        .unwrap()
        .into_inner();

    // The operator puts a new key in the file (atomically, as a Secret update or `mv` does).
    let new_hex = MasterKey::generate_hex().unwrap();
    let new_kcv = MasterKey::from_encoded(new_hex.as_bytes())
        .unwrap()
        .check_value();
    let tmp = vault.master_key_file.with_extension("new");
    std::fs::write(&tmp, &new_hex).unwrap();
    std::fs::rename(&tmp, &vault.master_key_file).unwrap();
    let mut now = before.clone();
    for _ in 0..200 {
        now = kcv(&client
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner());
        if now != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(now, new_kcv);

    // The shipment sealed under the old key opens and delivers under the new one.
    let done = yubico.fulfil(
        &sealed.credential_request_jwe,
        &sealed.pin_request_jwe,
        "4242",
    );
    let opened = client
        .open_credential_response(pb::OpenCredentialResponseRequest {
            shipment_ref: "shp-live".into(),
            credential_response_jwe: done.credential_response_jwe.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opened.serial_number, "4242");
    client
        .deliver_pin(pb::DeliverPinRequest {
            shipment_ref: "shp-live".into(),
            pin_response_jwe: done.pin_response_jwe.clone(),
            expected_serial: "4242".into(),
            recipients: vec!["manager@contoso.test".into()],
            context: None,
            resend: false,
            validate_only: false,
        })
        .await
        .unwrap();
    assert_eq!(mail.mails().len(), 1);
    // A new shipment is sealed under the new key too.
    client.seal_requests(seal_req("shp-after")).await.unwrap();
    vault.stop().await;

    // Only the new key opens the store now; a third key with the second as previous re-seals
    // at start.
    let second = MasterKey::from_encoded(new_hex.as_bytes()).unwrap();
    let third_hex = MasterKey::generate_hex().unwrap();
    let third = || MasterKey::from_encoded(third_hex.as_bytes()).unwrap();
    // (The vault's key watch may hold the store for a moment after the server stops.)
    let mut second = Some(second);
    let store = loop {
        match KeyStore::open_with_previous(&vault.store, third(), second.take()) {
            Ok(s) => break s,
            Err(fpr_vault::Error::Store(e)) => {
                second = Some(MasterKey::from_encoded(new_hex.as_bytes()).unwrap());
                eprintln!("store busy: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(store.check_value(), third().check_value());
    for shipment in ["shp-live", "shp-after"] {
        let rec = store.get(shipment).unwrap().unwrap();
        store.response_key(shipment, &rec).unwrap();
    }
    drop(store);
    drop(KeyStore::open(&vault.store, third()).unwrap());
    assert!(matches!(
        KeyStore::open(&vault.store, MasterKey::from_bytes(&[7u8; 32]).unwrap()),
        Err(fpr_vault::Error::WrongMasterKey { .. })
    ));
}
