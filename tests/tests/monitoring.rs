//! The monitoring files of `deploy/monitoring/`: the Prometheus alert rules and the Grafana
//! dashboard parse, and they speak of metrics fpr emits, while every metric fpr emits is on
//! the dashboard. (The metrics' values are checked by `tests/metrics.rs` after a real run.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Words of `text` that start with `fpr_` (a metric name, with any histogram suffix removed).
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("fpr_"))
        .map(|w| {
            ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| w.strip_suffix(s))
                .unwrap_or(w)
                .to_owned()
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "target") {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The metric names the code records (`counter!`, `gauge!`, `histogram!` with a literal name).
fn emitted() -> BTreeSet<String> {
    let mut files = Vec::new();
    for d in ["crates", "services"] {
        sources(&root().join(d), &mut files);
    }
    let mut names = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for macro_ in ["counter!(", "gauge!(", "histogram!("] {
            for (_, rest) in text
                .match_indices(macro_)
                .map(|(i, _)| text.split_at(i + macro_.len()))
            {
                let rest = rest.trim_start();
                if let Some(name) = rest
                    .strip_prefix('"')
                    .and_then(|r| r.split('"').next())
                    .filter(|n| n.starts_with("fpr_") && !n.starts_with("fpr_test"))
                {
                    names.insert(name.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn alert_rules_are_well_formed_and_name_real_metrics() {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/monitoring/alerts.yaml")).unwrap();
    let rules = doc["groups"][0]["rules"].as_sequence().unwrap();
    let emitted = emitted();
    let mut alerts = BTreeSet::new();
    for r in rules {
        let name = r["alert"].as_str().unwrap();
        assert!(alerts.insert(name.to_owned()), "{name} twice");
        let expr = r["expr"].as_str().unwrap();
        assert!(
            matches!(
                r["labels"]["severity"].as_str(),
                Some("warning" | "critical")
            ),
            "{name}"
        );
        assert!(r["annotations"]["summary"].is_string(), "{name}");
        let used = metric_names(expr);
        assert!(!used.is_empty(), "{name} uses no fpr metric");
        for m in used {
            assert!(
                emitted.contains(&m),
                "{name}: {m} is not a metric fpr emits"
            );
        }
    }
    for needed in [
        "FprShipmentStuck",
        "FprShipmentErrors",
        "FprUpstreamErrorRate",
        "FprJwksStale",
        "FprPinDeliveryFailures",
    ] {
        assert!(alerts.contains(needed), "{needed}");
    }
}

#[test]
fn the_dashboard_shows_every_metric_fpr_emits_and_no_other() {
    let text = read("deploy/monitoring/grafana-dashboard.json");
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dash["uid"], "fpr-overview");
    let mut exprs = String::new();
    for p in dash["panels"].as_array().unwrap() {
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", p["title"]);
        for t in targets {
            exprs.push_str(t["expr"].as_str().unwrap());
            exprs.push('\n');
        }
    }
    let shown = metric_names(&exprs);
    let emitted = emitted();
    assert!(emitted.len() >= 10, "{emitted:?}");
    let missing: Vec<_> = emitted.difference(&shown).collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
    let unknown: Vec<_> = shown.difference(&emitted).collect();
    assert!(unknown.is_empty(), "not emitted by fpr: {unknown:?}");
}
