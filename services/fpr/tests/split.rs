//! A split deployment: `fpr sandbox serve`, `fpr vault serve` and `fpr orchestrator serve` as
//! three processes with the configs of `deploy/dev/` (ports and paths swapped for temporary
//! ones), the vault's socket shared through a directory, then `fpr demo` against them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn stop(mut self) {
        let pid = self.0.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        assert!(self.0.wait().unwrap().success());
    }
}

fn fpr() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fpr"));
    c.env_remove("FPR_TOKEN")
        .env_remove("TOKEN")
        .env_remove("FPR_TOKEN_FILE")
        .env("FPR_LOG", "warn");
    c
}

/// Spawns `fpr args…` and returns it with the first stdout line containing `marker`.
fn spawn_until(args: &[&str], marker: &str, dir: &Path) -> (Proc, String) {
    let mut child = fpr()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "{args:?} ended before {marker:?}"
        );
        if line.contains(marker) {
            break;
        }
    }
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).unwrap_or(0) > 0 {
            sink.clear();
        }
    });
    (Proc(child), line)
}

#[test]
fn three_processes_with_the_dev_configs_run_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");

    let (sandbox, line) = spawn_until(
        &[
            "sandbox",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--smtp",
            "127.0.0.1:0",
            "--data-dir",
            "sandbox",
        ],
        "listening on",
        d,
    );
    // "fpr-sandbox listening on http://127.0.0.1:P (PIN mailbox smtp://127.0.0.1:Q)"
    let url = line.split_whitespace().nth(3).unwrap().to_owned();
    let smtp_port = line
        .trim_end()
        .trim_end_matches(')')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let host = url.trim_start_matches("http://").to_owned();

    let adapt = |name: &str| {
        let text = std::fs::read_to_string(repo.join("deploy/dev").join(name)).unwrap();
        let text = text
            .replace("./fpr-data/dev-stack", &d.display().to_string())
            .replace("127.0.0.1:8380", &host)
            .replace("port = 2525", &format!("port = {smtp_port}"))
            .replace("listen = \"127.0.0.1:7400\"", "listen = \"127.0.0.1:0\"");
        let path = d.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let vault_toml = adapt("vault.toml");
    let orchestrator_toml = adapt("orchestrator.toml");

    std::fs::create_dir_all(d.join("vault")).unwrap();
    let key = d.join("vault/master.key");
    assert!(
        fpr()
            .args(["vault", "generate-master-key"])
            .arg(&key)
            .status()
            .unwrap()
            .success()
    );
    let (vault, _) = spawn_until(
        &["vault", "serve", "--config", vault_toml.to_str().unwrap()],
        "listening on unix:",
        d,
    );

    let check = fpr()
        .args([
            "orchestrator",
            "check",
            "--config",
            orchestrator_toml.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let broken = d.join("broken.toml");
    std::fs::write(&broken, "listen = 7400\n").unwrap();
    let bad = fpr()
        .args([
            "orchestrator",
            "check",
            "--config",
            broken.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64));

    let (orchestrator, line) = spawn_until(
        &[
            "orchestrator",
            "serve",
            "--config",
            orchestrator_toml.to_str().unwrap(),
        ],
        "listening on",
        d,
    );
    let addr = format!("http://{}", line.split_whitespace().last().unwrap());

    // Health, as container checks and exec probes ask it.
    let sock = d.join("vault/run/vault.sock");
    for args in [
        vec!["health", "--addr", addr.as_str()],
        vec!["health", "--vault-socket", sock.to_str().unwrap()],
    ] {
        let o = fpr().args(&args).output().unwrap();
        assert!(o.status.success(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "SERVING");
    }
    let down = fpr()
        .args([
            "health",
            "--vault-socket",
            d.join("nothing.sock").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));

    let demo = fpr()
        .args([
            "demo",
            "--addr",
            &addr,
            "--sandbox",
            &url,
            "--timeout",
            "90",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(text.contains("5/5 complete"), "{text}");

    // The vault stops (as for an offline master-key rotation): status says so and exits 1, and
    // the orchestrator still accepts an order, which completes once the vault is back.
    vault.stop();
    let admin = |args: &[&str]| {
        fpr()
            .args(["--addr", &addr, "--token-from-sandbox", &url])
            .args(args)
            .current_dir(d)
            .output()
            .unwrap()
    };
    let status = admin(&["status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&status.stdout).contains("FAILING"));
    let mut ship = vec![
        "ship",
        "--json",
        "--idp",
        "okta",
        "--user",
        "ada.lovelace@example.test",
    ];
    ship.extend(common::ITEM);
    let order = admin(&ship);
    assert!(
        order.status.success(),
        "{}",
        String::from_utf8_lossy(&order.stderr)
    );
    let order: serde_json::Value = serde_json::from_slice(&order.stdout).unwrap();
    assert_eq!(order["shipment_state"], "ongoing");
    let id = order["shipment_id"].as_str().unwrap();
    let (vault, _) = spawn_until(
        &["vault", "serve", "--config", vault_toml.to_str().unwrap()],
        "listening on unix:",
        d,
    );
    // It waits out its backoff (retry.base, 2 s in the dev config), then goes through.
    let mut got = serde_json::Value::Null;
    for _ in 0..30 {
        assert!(admin(&["process-now"]).status.success());
        got = serde_json::from_slice(&admin(&["get", id, "--json"]).stdout).unwrap();
        if got["shipment_state"] == "complete" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert_eq!(got["shipment_state"], "complete", "{got}");
    assert_eq!(admin(&["status"]).status.code(), Some(0));

    orchestrator.stop();
    vault.stop();
    sandbox.stop();
}
