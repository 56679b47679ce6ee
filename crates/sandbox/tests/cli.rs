//! The `fpr-sandbox` binary as an operator runs it: start, answer, stop on SIGTERM with the
//! state saved.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_and_saves_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fpr-sandbox"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--smtp",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("FPR_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let cfg: serde_json::Value = reqwest::get(format!("{url}/_sandbox/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["base_url"], url.as_str());
    assert!(
        cfg["attestation_root_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    while out.read_line(&mut rest).unwrap() > 0 {}
    assert!(child.wait().unwrap().success());
    assert!(rest.contains("state saved"));
    assert!(dir.path().join("snapshot.json").exists());
    assert!(dir.path().join("attestation-root.pem").exists());
}
