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
    let up = common::UpProcess::start(&[]);
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
        let rest = up.banner_url("rest");
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
        // The banner's Okta event hook: registered with the sandbox's Okta, which verified it
        // with the secret kept (0600) beside the data.
        let hook = up.banner_url("okta event hook");
        assert!(hook.starts_with("http://127.0.0.1:") && hook.ends_with("/v1/okta/event-hooks"));
        let secret_file = up.data().join("okta-event-hook-secret");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let hooks: serde_json::Value =
            reqwest::get(format!("{}/_sandbox/okta/event-hooks", up.sandbox))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(hooks["hooks"][0], hook.as_str(), "{hooks}");
        let secret = std::fs::read_to_string(&secret_file).unwrap();
        let verified: serde_json::Value = reqwest::Client::new()
            .get(&hook)
            .header("authorization", secret.trim())
            .header("x-okta-verification-challenge", "c-1")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(verified["verification"], "c-1");
        // The banner's metrics line: both services' metrics in one scrape.
        let metrics = up.banner_url("metrics");
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
    let up = common::UpProcess::start(&[]);
    let (rest, _dir) = up.stop_with("-HUP");
    assert!(rest.contains("fpr stopped"));
}

/// `FPR_LOG_FORMAT=json`: every log line is a JSON object, and the lines a shipment's steps
/// write carry its id and, with traces on, the step's trace id.
#[test]
fn json_logs_carry_the_shipment_and_the_trace() {
    // Traces on (the collector is not there: the export fails quietly, the ids exist).
    let up = common::UpProcess::start_env(
        tempfile::tempdir().unwrap(),
        &[],
        &[
            ("FPR_LOG_FORMAT", "json"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ],
    );
    let out = up
        .command(&[
            "demo",
            "--sandbox",
            &up.sandbox,
            "--entra",
            "1",
            "--okta",
            "0",
            "--timeout",
            "90",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = up.log();
    let mut stepped = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        if v["span"]["name"] == "shipment.step" {
            let id = v["span"]["shipment.id"].as_str().unwrap_or_default();
            assert!(id.starts_with("shp_"), "{line}");
            let trace = v["span"]["trace_id"].as_str().unwrap_or_default();
            assert_eq!(trace.len(), 32, "{line}");
            stepped += 1;
        }
    }
    assert!(stepped > 0, "no line from a shipment's step: {log}");
    up.stop();
}
