//! `fpr bench` as a user runs it: the binary starts the sandbox, the vault and the
//! orchestrator as three processes, orders a few users through the batch path, waits for
//! processing and prints the figures line. (The figures themselves are not asserted: timing
//! belongs to the bench's output, never to a test.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeMap;
use std::process::Command;

#[test]
fn bench_runs_every_shipment_to_the_end_and_prints_the_figures() {
    let out = Command::new(env!("CARGO_BIN_EXE_fpr"))
        .args(["bench", "--users", "6", "--timeout", "240"])
        .env_remove("FPR_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains("three processes") && stderr.contains("6 of 6 complete"),
        "{stderr}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    let figures: BTreeMap<&str, &str> = last
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let keys: Vec<&str> = figures.keys().copied().collect();
    assert_eq!(
        keys,
        [
            "accept_per_s",
            "create_p50_ms",
            "create_p99_ms",
            "e2e_s",
            "floor_s",
            "orchestrator_rss_mb",
            "store_bytes_per_shipment",
            "users",
            "vault_rss_mb",
        ],
        "{last}"
    );
    assert_eq!(figures["users"], "6");
    for (k, v) in &figures {
        let v: f64 = v
            .parse()
            .unwrap_or_else(|_| panic!("{k}={v} is not a number"));
        assert!(v >= 0.0, "{k}={v}");
    }
    // Each figure was measured, not left at zero.
    for k in [
        "e2e_s",
        "orchestrator_rss_mb",
        "vault_rss_mb",
        "store_bytes_per_shipment",
    ] {
        assert!(figures[k].parse::<f64>().unwrap() > 0.0, "{k} in {last}");
    }
    assert!(stdout.contains("goal met     errors 0 = 0"), "{stdout}");
}
