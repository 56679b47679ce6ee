//! The `fpr-vault` binary: help, config errors (exit 64), key generation, check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers"
)]

use std::process::Command;

fn vault_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fpr-vault"));
    c.env_remove("FPR_VAULT_CONFIG").env("FPR_LOG", "warn");
    c
}

#[test]
fn help_lists_the_commands() {
    let out = vault_command().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in [
        "serve",
        "check",
        "generate-master-key",
        "rotate-master-key",
        "dev",
    ] {
        assert!(text.contains(cmd), "{cmd} missing from --help");
    }
}

#[test]
fn bad_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vault.toml");
    std::fs::write(&cfg, "[jose]\nalg = \"RSA1_5\"\n[store]\nmaster_key_file = \"/nonexistent\"\n[delivery.smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\n").unwrap();
    let out = vault_command()
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("jose.alg"));
}

#[test]
fn generate_then_check_then_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("master.key");
    let out = vault_command()
        .arg("generate-master-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // It refuses to overwrite an existing key.
    assert!(
        !vault_command()
            .arg("generate-master-key")
            .arg(&key)
            .output()
            .unwrap()
            .status
            .success()
    );

    let cfg = dir.path().join("vault.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\npath = \"{}\"\nmaster_key_file = \"{}\"\n[delivery]\nallowed_recipient_domains = [\"b.c\"]\n[delivery.smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\n",
            dir.path().join("store").display(),
            key.display()
        ),
    )
    .unwrap();
    let out = vault_command()
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(first.contains("master key check value"));
    assert!(
        !first.contains(std::fs::read_to_string(&key).unwrap().trim()),
        "the key itself is never printed"
    );

    let new_key = dir.path().join("new.key");
    assert!(
        vault_command()
            .arg("generate-master-key")
            .arg(&new_key)
            .output()
            .unwrap()
            .status
            .success()
    );
    let out = vault_command()
        .arg("--config")
        .arg(&cfg)
        .arg("rotate-master-key")
        .arg("--new-key-file")
        .arg(&new_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The old key no longer opens the store.
    let out = vault_command()
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong master key"));
}

#[test]
fn audit_verify_reports_the_first_broken_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = fpr_vault::audit::AuditLog::open(&path).unwrap();
    for op in ["SealRequests", "DeliverPin", "PurgeShipment"] {
        log.record(fpr_vault::audit::Event {
            caller: "uid:0".into(),
            op,
            shipment_ref: "shp-1".into(),
            ..Default::default()
        })
        .unwrap();
    }
    drop(log);
    let out = vault_command()
        .args(["audit", "verify"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact, 3 entries"));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("DeliverPin", "GetStatus", 1)).unwrap();
    let out = vault_command()
        .args(["audit", "verify"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chain broken at line 3"), "{err}");
}
