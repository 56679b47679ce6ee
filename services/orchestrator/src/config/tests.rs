use std::collections::BTreeMap;

use super::*;

const BASE: &str = r#"
    [yubienterprise]
    base_url = "https://api.console.yubico.com/v1"
    token = { env = "YE_TOKEN" }
    [entra]
    tenant = "t"
    client_id = "c"
    client_secret = { file = "/run/secrets/graph" }
    [auth]
    issuer = "https://login.microsoftonline.com/t/v2.0"
    jwks_url = "https://login.microsoftonline.com/t/discovery/v2.0/keys"
    allowed_audiences = ["api://fido-connector-api"]
    allowed_client_apps = ["app-0"]
"#;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn seed_variables_override_the_file() {
    let c = Config::from_toml(
        BASE,
        &env(&[
            ("CRON_DATA_CLEANUP_COMPLETED_DAYS", "30"),
            ("ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES", "60"),
            ("FIDO_Connector_Allowed_Audiences", "api://a, api://b"),
            ("FIDO_Connector_Allowed_Client_Apps", "app-1"),
        ]),
    )
    .unwrap();
    assert_eq!(
        (
            c.jobs.cleanup_completed_days,
            c.entra.challenge_timeout_minutes
        ),
        (30, 60)
    );
    assert_eq!(c.auth.allowed_audiences, vec!["api://a", "api://b"]);
    assert_eq!(c.jobs.process_schedule, "0 0 * * * *", "the seed's default");
    assert_eq!(c.settings()["ENTRA_FIDO_API_CLIENT_SECRET"], "[redacted]");
}

#[test]
fn errors_name_the_key() {
    for (vars, key) in [
        (
            vec![("CRON_PROCESS_SHIPMENT_SCHEDULE", "every hour")],
            "jobs.process_schedule",
        ),
        (
            vec![("ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES", "4")],
            "entra.challenge_timeout_minutes",
        ),
        (vec![("ENTRA_FIDO_API_VERSION", "v2")], "entra.api_version"),
        (
            vec![("FIDO_Connector_Allowed_Client_Apps", " ")],
            "auth.allowed_client_apps",
        ),
        (
            vec![("YE_API_BASE_URL", "http://plain.example/v1")],
            "yubienterprise.base_url",
        ),
    ] {
        match Config::from_toml(BASE, &env(&vars)) {
            Err(Error::Config { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key}: {other:?}"),
        }
    }
}

#[test]
fn group_orders_are_off_by_default_and_checked_when_given() {
    let c = Config::from_toml(BASE, &env(&[])).unwrap();
    assert!(!c.group_orders.enabled);
    let rule = r#"
    [group_orders]
    enabled = true
    interval = "1h"
    max_orders_per_run = 10
    [[group_orders.rules]]
    idp = "entra"
    group = "Security keys"
    product_id = 29
    inventory_product_id = 106
    customization_id = "RXJN83"
"#;
    let c = Config::from_toml(&format!("{BASE}{rule}"), &env(&[])).unwrap();
    assert_eq!(
        (
            c.group_orders.interval,
            c.group_orders.rules[0].delivery_type
        ),
        (Duration::from_secs(3600), 1)
    );
    let okta = rule.replace("\"entra\"", "\"okta\"");
    let e = Config::from_toml(&format!("{BASE}{okta}"), &env(&[])).unwrap_err();
    assert!(e.to_string().contains("group_orders.rules[0].idp"), "{e}");
    let empty = "[group_orders]\nenabled = true\n";
    let e = Config::from_toml(&format!("{BASE}{empty}"), &env(&[])).unwrap_err();
    assert!(e.to_string().contains("group_orders.rules"), "{e}");
}
