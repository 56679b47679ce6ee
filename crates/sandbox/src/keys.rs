//! The sandbox's keys: Yubico's transport and signing keys (two each, rotatable), the
//! attestation CA and the Entra tenant's token key. Kept in the data dir when there is one.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use fpr_jose::{Curve, Jwks, PrivateKey, SigningKey};
use fpr_softkey::AttestationCa;

/// Yubico's key sets.
pub struct YubicoKeys {
    /// Transport (decryption) keys, newest first.
    pub transport: Vec<PrivateKey>,
    /// Signing keys, newest first; the first signs responses.
    pub signing: Vec<SigningKey>,
    generation: u32,
}

/// All the sandbox's keys.
pub struct Keys {
    yubico: Mutex<YubicoKeys>,
    /// The attestation CA of the software authenticator.
    pub ca: AttestationCa,
    /// The Entra tenant's token signing key.
    pub tenant: crate::tokens::TokenSigner,
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

fn transport_kid(n: u32) -> String {
    format!("APCS-Ttrans-SANDBOX-I{n:03}")
}

fn signing_kid(n: u32) -> String {
    format!("APCS-Tsgnkey-SANDBOX-H{n:010}")
}

fn write_secret(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    Ok(())
}

impl YubicoKeys {
    pub(crate) fn generate(generation: u32) -> anyhow::Result<Self> {
        Ok(Self {
            transport: vec![
                PrivateKey::generate(Curve::P384, &transport_kid(generation + 1))?,
                PrivateKey::generate(Curve::P384, &transport_kid(generation))?,
            ],
            signing: vec![
                SigningKey::generate(Curve::P384, &signing_kid(generation + 1))?,
                SigningKey::generate(Curve::P384, &signing_kid(generation))?,
            ],
            generation: generation + 1,
        })
    }

    /// The public transport JWKS.
    pub fn transport_jwks(&self) -> Jwks {
        Jwks::try_new(self.transport.iter().map(|k| k.public().clone()).collect())
            .unwrap_or_default()
    }

    /// The public signing JWKS.
    pub fn signing_jwks(&self) -> Jwks {
        Jwks::try_new(self.signing.iter().map(|k| k.public().clone()).collect()).unwrap_or_default()
    }
}

impl Keys {
    /// Loads the keys from `dir`, making any that are missing; in memory when `dir` is None.
    pub fn load_or_create(dir: Option<&Path>) -> anyhow::Result<Self> {
        let Some(dir) = dir else {
            return Ok(Self {
                yubico: Mutex::new(YubicoKeys::generate(0)?),
                ca: AttestationCa::generate()?,
                tenant: crate::tokens::TokenSigner::generate("sandbox-tenant-1")?,
                dir: None,
            });
        };
        let ca_path = dir.join("attestation-root-key.pem");
        let ca = if ca_path.exists() {
            AttestationCa::from_key_pem(&std::fs::read_to_string(&ca_path)?)?
        } else {
            let ca = AttestationCa::generate()?;
            write_secret(&ca_path, ca.key_pem().as_bytes())?;
            ca
        };
        std::fs::write(dir.join("attestation-root.pem"), ca.root_pem())?;
        let tenant_path = dir.join("tenant-key.pk8");
        let tenant = if tenant_path.exists() {
            crate::tokens::TokenSigner::from_pkcs8(
                "sandbox-tenant-1",
                &std::fs::read(&tenant_path)?,
            )?
        } else {
            let t = crate::tokens::TokenSigner::generate("sandbox-tenant-1")?;
            write_secret(&tenant_path, &t.to_pkcs8()?)?;
            t
        };
        let yubico_path = dir.join("yubico-keys.json");
        let yubico = if yubico_path.exists() {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&yubico_path)?)?;
            let list = |k: &str| {
                v.get(k)
                    .and_then(|a| a.as_array())
                    .cloned()
                    .unwrap_or_default()
            };
            YubicoKeys {
                transport: list("transport")
                    .iter()
                    .filter_map(|j| j.as_str())
                    .map(PrivateKey::from_private_jwk)
                    .collect::<Result<_, _>>()?,
                signing: list("signing")
                    .iter()
                    .filter_map(|j| j.as_str())
                    .map(SigningKey::from_private_jwk)
                    .collect::<Result<_, _>>()?,
                generation: v.get("generation").and_then(|g| g.as_u64()).unwrap_or(1) as u32,
            }
        } else {
            YubicoKeys::generate(0)?
        };
        let keys = Self {
            yubico: Mutex::new(yubico),
            ca,
            tenant,
            dir: Some(dir.to_owned()),
        };
        keys.save_yubico()?;
        Ok(keys)
    }

    /// The Yubico keys.
    pub fn yubico(&self) -> MutexGuard<'_, YubicoKeys> {
        self.yubico.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rotates one set: a new key goes first, the oldest is dropped (two stay published).
    pub fn rotate(&self, which: &str) -> anyhow::Result<Vec<String>> {
        let kids = {
            let mut y = self.yubico();
            y.generation += 1;
            let g = y.generation;
            match which {
                "transport" => {
                    y.transport
                        .insert(0, PrivateKey::generate(Curve::P384, &transport_kid(g))?);
                    y.transport.truncate(2);
                    y.transport.iter().map(|k| k.kid().to_owned()).collect()
                }
                "signing" => {
                    y.signing
                        .insert(0, SigningKey::generate(Curve::P384, &signing_kid(g))?);
                    y.signing.truncate(2);
                    y.signing.iter().map(|k| k.kid().to_owned()).collect()
                }
                _ => anyhow::bail!("set must be transport or signing"),
            }
        };
        self.save_yubico()?;
        Ok(kids)
    }

    fn save_yubico(&self) -> anyhow::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let y = self.yubico();
        let t: Vec<String> = y
            .transport
            .iter()
            .map(|k| k.to_private_jwk().map(|s| s.to_string()))
            .collect::<Result<_, _>>()?;
        let s: Vec<String> = y
            .signing
            .iter()
            .map(|k| k.to_private_jwk().map(|s| s.to_string()))
            .collect::<Result<_, _>>()?;
        let doc = serde_json::json!({"generation": y.generation, "transport": t, "signing": s});
        write_secret(&dir.join("yubico-keys.json"), doc.to_string().as_bytes())
    }
}
