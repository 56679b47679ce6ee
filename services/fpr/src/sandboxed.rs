//! The vault's and the orchestrator's configurations for a sandbox, as typed values built from
//! the sandbox's settings: a setting renamed in either service breaks the build here, not a
//! run. `fpr up`, the split deployment of `fpr bench` and the chaos tool, and the end-to-end
//! fixtures all start from these.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use fpr_orchestrator::config::{
    AuthConfig, Config as OrchestratorConfig, EntraConfig, OktaConfig, SecretRef,
    YubiEnterpriseConfig,
};
use fpr_vault::config::{ChannelKind, SmtpConfig, SmtpTls};

/// The orchestrator's configuration for the sandbox `sandbox` serving at `base`: its upstreams,
/// its tenant as the token issuer, its test secrets inline, plain http allowed, and its
/// attestation root (PEM) as the only trust anchor, pinned. Listen, store and vault socket are
/// the defaults: the caller sets them.
pub fn orchestrator_config(
    sandbox: &fpr_sandbox::Config,
    base: &str,
    attestation_root_pem: &str,
) -> anyhow::Result<OrchestratorConfig> {
    let url = |path: &str| format!("{base}{path}").parse::<url::Url>();
    let tenant = &sandbox.tenant;
    let mut entra = EntraConfig::new(
        tenant,
        &sandbox.graph_client_id,
        SecretRef::danger_inline(&sandbox.graph_client_secret),
    );
    entra.login_base = url("")?;
    entra.graph_base = url("")?;
    let mut c = OrchestratorConfig::new(
        YubiEnterpriseConfig {
            base_url: url("/v1")?,
            token: SecretRef::danger_inline(&sandbox.ye_token),
        },
        entra,
        AuthConfig::new(
            &format!("{base}/{tenant}/v2.0"),
            url(&format!("/{tenant}/discovery/v2.0/keys"))?,
            vec![sandbox.api_audience.clone()],
            vec![sandbox.caller_client_id.clone()],
        ),
    );
    let mut okta = OktaConfig::with_token(url("")?, SecretRef::danger_inline(&sandbox.okta_token));
    okta.enrollment_rp_ids = vec!["example.okta.com".into()];
    c.okta = Some(okta);
    c.danger_allow_plaintext_http = true;
    c.attestation.builtin_yubico_roots = false;
    c.attestation.trust_anchors_pem = vec![attestation_root_pem.trim_end().to_owned() + "\n"];
    c.attestation.pinned_root_sha256 = vec![root_fingerprint(attestation_root_pem)?];
    Ok(c)
}

/// SHA-256 of a PEM certificate's DER, in hex: how the orchestrator pins a root.
fn root_fingerprint(pem: &str) -> anyhow::Result<String> {
    let ders = fpr_orchestrator::attestation::pem_certificates(pem).map_err(anyhow::Error::msg)?;
    let der = ders
        .first()
        .context("the attestation root is not a PEM certificate")?;
    Ok(fpr_orchestrator::attestation::sha256_hex(der))
}

/// The vault's configuration for the sandbox at `base`: on the Unix socket `socket`, its store
/// in `store` under the master key in `master_key_file`, Yubico's key sets from the sandbox,
/// PINs to the sandbox's mailbox at `smtp` (plaintext, from `from`) for `contoso.test`
/// addresses, and resends without a wait.
pub fn vault_config(
    base: &str,
    socket: &Path,
    store: &Path,
    master_key_file: &Path,
    smtp: SocketAddr,
    from: &str,
) -> anyhow::Result<fpr_vault::Config> {
    let mut v = fpr_vault::Config::default();
    v.server.listen = format!("unix:{}", socket.display());
    v.store.path = store.to_owned();
    v.store.master_key_file = Some(master_key_file.to_owned());
    v.yubico.transport_jwks_url =
        format!("{base}/.well-known/yubico-transport-keys.jwks").parse()?;
    v.yubico.sign_jwks_url = format!("{base}/.well-known/yubico-sign.jwks").parse()?;
    v.delivery.channel = ChannelKind::Smtp;
    v.delivery.allowed_recipient_domains = vec!["contoso.test".into()];
    v.delivery.resend_min_interval = std::time::Duration::ZERO;
    let mut mail = SmtpConfig::new(&smtp.ip().to_string(), smtp.port(), from);
    mail.tls = SmtpTls::None;
    v.delivery.smtp = Some(mail);
    v.danger.allow_plaintext_http = true;
    v.danger.allow_plaintext_smtp = true;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configurations_pass_their_services_checks_and_survive_a_file() {
        let sandbox = fpr_sandbox::Config::default();
        let ca = sample_root_pem();
        let mut o = orchestrator_config(&sandbox, "http://127.0.0.1:9", &ca).unwrap();
        o.listen = "127.0.0.1:0".into();
        o.validate().unwrap();
        let text = toml::to_string(&o).unwrap();
        let back =
            OrchestratorConfig::from_toml(&text, &std::collections::BTreeMap::new()).unwrap();
        assert_eq!(toml::to_string(&back).unwrap(), text);
        assert_eq!(back.attestation.pinned_root_sha256.len(), 1);

        let v = vault_config(
            "http://127.0.0.1:9",
            Path::new("/tmp/v.sock"),
            Path::new("/tmp/store"),
            Path::new("/tmp/master.key"),
            "127.0.0.1:25".parse().unwrap(),
            "keys@fpr.test",
        )
        .unwrap();
        v.validate().unwrap();
        let text = toml::to_string(&v).unwrap();
        let back = fpr_vault::Config::from_toml(&text, &std::collections::BTreeMap::new()).unwrap();
        assert_eq!(toml::to_string(&back).unwrap(), text);
    }

    /// A sandbox Yubico's attestation root, as PEM.
    fn sample_root_pem() -> String {
        use base64::Engine as _;
        let yubico = fpr_sandbox::yubico::Yubico::new().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(yubico.attestation_root());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }
}
