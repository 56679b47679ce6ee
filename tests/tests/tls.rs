//! The orchestrator's own TLS listener: callers' bearer tokens cross the network encrypted; a
//! renewed certificate is served without a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_proto::v1::shipment_service_client::ShipmentServiceClient;
use fpr_tests::{Bearer, Stack, manual_sandbox};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// A CA and a server certificate for `localhost` it signed: (CA PEM, cert PEM, key PEM).
fn pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

async fn status_over_tls(stack: &Stack, ca_pem: &str, token: &str) -> Result<(), String> {
    let ep = Endpoint::from_shared(format!("https://localhost:{}", stack.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca_pem))
                .domain_name("localhost"),
        )
        .unwrap();
    let ch = ep.connect().await.map_err(|e| format!("{e:?}"))?;
    let header = format!("Bearer {token}").parse().unwrap();
    ShipmentServiceClient::with_interceptor(ch, Bearer(Some(header)))
        .get_status(pb::GetStatusRequest {})
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_speaks_tls_and_reloads_a_renewed_certificate() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = pki();
    let cert_file = dir.path().join("tls.pem");
    let key_file = dir.path().join("tls.key");
    std::fs::write(&cert_file, &cert1).unwrap();
    std::fs::write(&key_file, &key1).unwrap();
    let health_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stack = Stack::start_tweaked(manual_sandbox(), |c| {
        c.tls = Some(fpr_orchestrator::tls::TlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        });
        c.health_listen = Some(format!("127.0.0.1:{health_port}"));
        c.rest = Some(fpr_orchestrator::config::RestConfig::new("127.0.0.1:0"));
    })
    .await;
    let token = stack.caller_token().await;
    status_over_tls(&stack, &ca1, &token).await.unwrap();

    // The REST API speaks TLS with the same certificate; plain HTTP gets no answer.
    let rest = stack.rest.unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca1.as_bytes()).unwrap()])
        .resolve("localhost", rest)
        .build()
        .unwrap();
    let status = https
        .get(format!("https://localhost:{}/v1/status", rest.port()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    assert!(
        reqwest::Client::new()
            .get(format!("http://{rest}/v1/status"))
            .bearer_auth(&token)
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .is_err(),
        "no plaintext REST on a TLS listener"
    );

    // A plaintext client gets nothing: the token never crosses the wire in clear.
    let mut plain = stack.client_with(Some(token.clone())).await;
    assert!(plain.get_status(pb::GetStatusRequest {}).await.is_err());
    // Probes and load balancers check health in plaintext on the health-only port, which
    // serves no API.
    let ch = Endpoint::from_shared(format!("http://127.0.0.1:{health_port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert!(fpr_tests::serving(ch.clone(), "fpr.v1.ShipmentService").await);
    let header = format!("Bearer {token}").parse().unwrap();
    let err = ShipmentServiceClient::with_interceptor(ch, Bearer(Some(header)))
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        tonic::Code::Unimplemented,
        "no API on the health port"
    );

    // Renewal: new files (another CA), picked up at the next handshake.
    let (ca2, cert2, key2) = pki();
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a new mtime on coarse clocks
    std::fs::write(&key_file, &key2).unwrap();
    std::fs::write(&cert_file, &cert2).unwrap();
    status_over_tls(&stack, &ca2, &token).await.unwrap();
    assert!(
        status_over_tls(&stack, &ca1, &token).await.is_err(),
        "the old certificate is gone"
    );

    // A renewal that does not load keeps the certificate in force.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&cert_file, "not a certificate").unwrap();
    status_over_tls(&stack, &ca2, &token).await.unwrap();
}
