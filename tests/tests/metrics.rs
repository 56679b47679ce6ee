//! Prometheus metrics after a sandbox run (Entra ID and Okta through to complete): scraped
//! from the orchestrator's admin listener, the counters add up to what the run did, every
//! upstream shows calls, and no label carries a user or a shipment. Its own test binary, so
//! the process's recorder holds this run only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use fpr_proto::v1 as pb;
use fpr_tests::{Stack, create_request, manual_sandbox, okta_request, okta_users, ship_at_yubico};

/// The sum of `name`'s samples whose labels include every one of `labels`.
fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_add_up_to_the_run() {
    // Installed before the vault is built, as `fpr up` does, so its gauges register too.
    fpr_telemetry::install();
    let stack = Stack::start_tweaked(manual_sandbox(), |c| {
        c.metrics_listen = Some("127.0.0.1:0".into());
    })
    .await;
    let mut client = stack.client().await;
    let okta = okta_users(&stack, 1).await;
    let okta_login = okta[0]["login"].as_str().unwrap().to_owned();
    let entra = ["adele.vance@contoso.test", "alex.wilber@contoso.test"];
    let mut requests: Vec<_> = entra
        .iter()
        .enumerate()
        .map(|(i, u)| create_request(&format!("m-{i}"), u))
        .collect();
    requests.push(okta_request("m-okta", &okta_login));
    let mut ids = Vec::new();
    for r in requests {
        let c = client.create_shipment(r).await.unwrap().into_inner();
        ship_at_yubico(&stack, &c.yubienterprise_shipment_id).await;
        ids.push(c);
    }
    let run = client
        .process_shipments(pb::ProcessShipmentsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((run.completed, run.errored), (3, 0), "{run:?}");

    let url = format!("http://{}/metrics", stack.metrics.unwrap());
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let steps = "fpr_shipment_steps_total";
    assert_eq!(sum(&text, steps, &[("step", "accepted")]), 3.0, "{text}");
    assert_eq!(
        sum(&text, steps, &[("idp", "entra"), ("step", "complete")]),
        2.0
    );
    assert_eq!(
        sum(&text, steps, &[("idp", "okta"), ("step", "complete")]),
        1.0
    );
    assert_eq!(sum(&text, "fpr_shipment_errors_total", &[]), 0.0);
    for upstream in ["yubienterprise", "graph", "entra-login", "okta"] {
        let calls = sum(
            &text,
            "fpr_upstream_requests_total",
            &[("upstream", upstream)],
        );
        assert!(calls > 0.0, "no calls to {upstream}: {text}");
        let timed = sum(
            &text,
            "fpr_upstream_request_duration_seconds_count",
            &[("upstream", upstream)],
        );
        assert_eq!(calls, timed, "{upstream}: each call is timed");
    }
    assert_eq!(
        sum(
            &text,
            "fpr_upstream_requests_total",
            &[("route", "POST /fpr/shipments"), ("status", "200")]
        ) + sum(
            &text,
            "fpr_upstream_requests_total",
            &[("route", "POST /fpr/shipments"), ("status", "201")]
        ),
        3.0,
        "one order each"
    );
    // The vault: two PINs mailed (Okta mails its own), every operation counted.
    assert_eq!(
        sum(
            &text,
            "fpr_pin_deliveries_total",
            &[("channel", "smtp"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        sum(
            &text,
            "fpr_vault_operations_total",
            &[("op", "DeliverPin"), ("outcome", "ok")]
        ),
        2.0
    );
    assert!(sum(&text, "fpr_vault_operations_total", &[("outcome", "ok")]) >= 8.0);
    assert!(sum(&text, "fpr_process_runs_total", &[("outcome", "ok")]) >= 1.0);
    assert!(sum(&text, "fpr_process_run_duration_seconds_count", &[]) >= 1.0);
    assert!(sum(&text, "fpr_store_bytes", &[("store", "orchestrator")]) > 0.0);
    assert!(sum(&text, "fpr_store_bytes", &[("store", "vault")]) > 0.0);
    assert!(text.contains("fpr_vault_jwks_age_seconds{set=\"transport\"}"));
    // No user, shipment or address in a label.
    for secretish in entra
        .iter()
        .map(|s| s.to_string())
        .chain([okta_login, "megan.bowen".into(), "@".into()])
        .chain(ids.iter().map(|c| c.shipment_id.clone()))
        .chain(ids.iter().map(|c| c.yubienterprise_shipment_id.clone()))
    {
        assert!(!text.contains(&secretish), "{secretish} in the metrics");
    }
}
