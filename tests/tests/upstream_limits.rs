//! A hostile or broken upstream cannot exhaust memory or rewrite a path: answers are capped,
//! and ids placed in URL paths are percent-encoded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::time::Duration;

use fpr_upstream::{Error, SecretSource};

fn client(server: &fpr_tests::http::Server) -> fpr_yubienterprise::Client {
    fpr_yubienterprise::Client::new(
        url::Url::parse(&server.url("/v1")).unwrap(),
        SecretSource::Inline(std::sync::Arc::new("t".to_owned().into())),
        Duration::from_secs(5),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_refused_and_ids_stay_one_path_segment() {
    let server = fpr_tests::http::Server::start().await;
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    server.route("/v1/fpr/shipments/big", 200, huge);
    let ye = client(&server);
    match ye.get_fpr_shipment("big").await {
        Err(Error::Malformed { reason, .. }) => {
            assert!(reason.contains("over 1048576 bytes"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // An id that would climb out of its segment, add a query or a fragment.
    let _ = ye.get_fpr_shipment("a/../../admin?x=1#y").await;
    let paths: Vec<String> = server.recorded().into_iter().map(|r| r.path).collect();
    assert!(
        paths.contains(&"/v1/fpr/shipments/a%2F..%2F..%2Fadmin%3Fx%3D1%23y".to_owned()),
        "{paths:?}"
    );
}
