//! `fpr-vault dev`: a self-contained local setup for a first run. NO SECURITY for production:
//! it makes its own "Yubico" keys (so no network is needed), keeps everything under one
//! directory and sends PINs over plaintext SMTP to a local port.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use fpr_jose::{Curve, Jwks, PrivateKey, SigningKey};

use crate::{Config, Error};

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn write_private(path: &Path, text: &[u8]) -> Result<(), Error> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(format!("write {}", path.display())))?;
    f.write_all(text)
        .map_err(io(format!("write {}", path.display())))
}

/// Creates (once) a master key and dev Yubico key sets under `dir`, and returns a config that
/// serves on `dir/run/vault.sock` with those sets pinned and PINs going to `smtp_port` on
/// 127.0.0.1.
pub fn prepare(dir: &Path, smtp_port: u16) -> Result<Config, Error> {
    let yubico = dir.join("yubico");
    std::fs::create_dir_all(&yubico).map_err(io(format!("create {}", yubico.display())))?;
    let master = dir.join("master.key");
    if !master.exists() {
        write_private(
            &master,
            fpr_jose::seal::MasterKey::generate_hex()
                .map_err(Error::Crypto)?
                .as_bytes(),
        )?;
    }
    let transport = yubico.join("transport.jwks");
    let signing = yubico.join("sign.jwks");
    if !transport.exists() || !signing.exists() {
        let t = PrivateKey::generate(Curve::P384, "DEV-Ttrans-1").map_err(Error::Crypto)?;
        let s = SigningKey::generate(Curve::P384, "DEV-Tsgnkey-1").map_err(Error::Crypto)?;
        write_private(
            &yubico.join("transport-private.jwk"),
            t.to_private_jwk().map_err(Error::Crypto)?.as_bytes(),
        )?;
        write_private(
            &yubico.join("sign-private.jwk"),
            s.to_private_jwk().map_err(Error::Crypto)?.as_bytes(),
        )?;
        let t_set = Jwks::try_new(vec![t.public().clone()]).map_err(Error::Crypto)?;
        let s_set = Jwks::try_new(vec![s.public().clone()]).map_err(Error::Crypto)?;
        std::fs::write(&transport, t_set.to_json().to_string())
            .map_err(io(format!("write {}", transport.display())))?;
        std::fs::write(&signing, s_set.to_json().to_string())
            .map_err(io(format!("write {}", signing.display())))?;
    }
    let text = format!(
        "[server]\nlisten = \"unix:{run}\"\n\
         [store]\npath = \"{store}\"\nmaster_key_file = \"{master}\"\n\
         [yubico]\ntransport_jwks_file = \"{transport}\"\nsign_jwks_file = \"{signing}\"\n\
         [delivery]\nchannel = \"smtp\"\nallowed_recipient_domains = [\"contoso.test\"]\n[delivery.smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\nfrom = \"fpr-dev@localhost\"\n\
         [danger]\nallow_plaintext_smtp = true\n",
        run = dir.join("run/vault.sock").display(),
        store = dir.join("store").display(),
        master = master.display(),
        transport = transport.display(),
        signing = signing.display(),
    );
    Config::from_toml(&text, &std::collections::BTreeMap::<String, String>::new())
}
