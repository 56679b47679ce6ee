use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const MINIMAL: &str = r#"
    [store]
    master_key_file = "/k"
    [delivery]
    channel = "smtp"
    allowed_recipient_domains = ["example.com"]
    [delivery.smtp]
    host = "smtp.example.com"
    from = "keys@example.com"
"#;

#[test]
fn minimal_file_loads_with_defaults() {
    let c = Config::from_toml(MINIMAL, &env(&[])).unwrap();
    assert!(matches!(c.listen().unwrap(), Listen::Unix(_)));
    assert_eq!(c.algorithms().unwrap(), Algorithms::default());
    assert_eq!(c.yubico.refresh_interval, Duration::from_secs(6 * 3600));
}

#[test]
fn env_overrides_the_file() {
    let c = Config::from_toml(
        MINIMAL,
        &env(&[("YE_JWKS_SIGN_ENDPOINT", "https://keys.example/sign.jwks")]),
    )
    .unwrap();
    assert_eq!(
        c.yubico.sign_jwks_url.as_str(),
        "https://keys.example/sign.jwks"
    );
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            MINIMAL.replace("master_key_file = \"/k\"", ""),
            "store.master_key_file",
        ),
        (format!("{MINIMAL}\n[jose]\nalg = \"RSA1_5\""), "jose.alg"),
        (
            format!("[server]\nlisten = \"tcp:127.0.0.1:1\"\n{MINIMAL}"),
            "server.tls",
        ),
        (
            MINIMAL.replace(
                "host = \"smtp.example.com\"",
                "host = \"smtp.example.com\"\ntls = \"none\"",
            ),
            "delivery.smtp.tls",
        ),
        (
            format!("{MINIMAL}\n[yubico]\nsign_jwks_url = \"http://x/\""),
            "yubico.sign_jwks_url",
        ),
        (
            MINIMAL.replace("allowed_recipient_domains = [\"example.com\"]", ""),
            "delivery.allowed_recipient_domains",
        ),
        (
            MINIMAL.replace("[\"example.com\"]", "[\"@example.com\"]"),
            "delivery.allowed_recipient_domains",
        ),
        (
            format!(
                "[server]\nlisten = \"tcp:127.0.0.1:1\"\n[server.tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"\n{MINIMAL}"
            ),
            "server.tls.allowed_client_sha256",
        ),
    ];
    for (text, key) in cases {
        match Config::from_toml(&text, &env(&[])) {
            Err(Error::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: {other:?}"),
        }
    }
    assert!(matches!(
        Config::from_toml("[nope]\nx=1", &env(&[])),
        Err(Error::Config { .. })
    ));
}

#[test]
fn recipient_policy_allows_listed_domains_and_addresses_only() {
    let c = Config::from_toml(
        &MINIMAL.replace(
            "allowed_recipient_domains = [\"example.com\"]",
            "allowed_recipient_domains = [\"Example.com\"]\nallowed_recipients = [\"pins@partner.example\"]",
        ),
        &env(&[]),
    )
    .unwrap();
    let p = RecipientPolicy::of(&c);
    assert!(p.check("ada@example.com").is_ok());
    assert!(p.check("ADA@EXAMPLE.COM").is_ok());
    assert!(p.check("pins@partner.example").is_ok());
    for bad in [
        "eve@evil.example",
        "ada@sub.example.com",
        "ada@example.com.evil.example",
        "other@partner.example",
        "Ada <ada@example.com>",
        "ada@example.com\r\nBcc: eve@evil.example",
    ] {
        assert!(p.check(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn settings_redact_secrets() {
    let text = format!(
        "{}\n[delivery.webhook]\nurl = \"https://logic.example/x?sig=SECRETSIG\"\nhmac_secret_env = \"H\"",
        MINIMAL.replace("channel = \"smtp\"", "channel = \"webhook\"")
    );
    let c = Config::from_toml(&text, &env(&[])).unwrap();
    let s = c.settings();
    assert!(!format!("{s:?}").contains("SECRETSIG"));
    assert_eq!(s["FPR_VAULT_MASTER_KEY"], "[redacted]");
}
