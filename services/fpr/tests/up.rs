//! `fpr up` as a newcomer runs it: one process, then a real client with the printed token.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

#[test]
fn up_starts_everything_and_stops_on_sigterm() {
    let up = common::Up::start(&[]);
    let token = up
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("export TOKEN="))
        .unwrap()
        .to_owned();
    assert_eq!(
        std::fs::read_to_string(up.data().join("caller-token")).unwrap(),
        token
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(up.addr.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        let mut client =
            fpr_proto::v1::shipment_service_client::ShipmentServiceClient::with_interceptor(
                channel,
                move |mut r: tonic::Request<()>| {
                    r.metadata_mut().insert("authorization", bearer.clone());
                    Ok(r)
                },
            );
        let status = client
            .get_status(fpr_proto::v1::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        for d in &status.dependencies {
            assert!(d.healthy, "{d:?}");
        }
        // The banner's REST line: the connector's API, with the same token.
        let rest = up
            .banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("rest"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
        let settings: serde_json::Value = reqwest::Client::new()
            .get(format!("{rest}/v1/status"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(settings["CRON_PROCESS_SHIPMENT_SCHEDULE"], "*/10 * * * * *");
        // The banner's metrics line: both services' metrics in one scrape.
        let metrics = up
            .banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("metrics"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        assert!(text.contains("fpr_vault_jwks_age_seconds"), "{text}");
        assert!(
            text.contains("fpr_store_bytes{store=\"orchestrator\"}"),
            "{text}"
        );
    });
    let (rest, dir) = up.stop_keeping_data();
    assert!(rest.contains("fpr stopped"));
    let data = dir.path().join("data");
    assert!(data.join("vault/master.key").exists() && data.join("sandbox/snapshot.json").exists());
}

#[test]
fn up_stops_when_its_terminal_closes() {
    let up = common::Up::start(&[]);
    let (rest, _dir) = up.stop_with("-HUP");
    assert!(rest.contains("fpr stopped"));
}
