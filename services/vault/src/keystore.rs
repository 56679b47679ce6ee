//! Sealed per-shipment records: the response private key (sealed under the master key, bound
//! to the shipment and request id), the sealed requests and the delivery receipts.

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fpr_jose::seal::MasterKey;
use fpr_jose::{Curve, PrivateKey};
use fpr_store::{Batch, RedbOptions, RedbStore, SLED_MOVED, Store, TakeOver, Tree, Write};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::Error;

const KCV_KEY: &[u8] = b"meta/kcv";
const RECORD_PREFIX: &[u8] = b"rec/";

/// A PIN delivery, as recorded (no PIN).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Receipt {
    /// `smtp` or `webhook`.
    pub channel: String,
    /// Where it went.
    pub recipients: Vec<String>,
    /// SMTP Message-ID or webhook delivery id.
    pub message_id: String,
    /// Unix seconds.
    pub delivered_at: i64,
    /// How many sends so far.
    pub deliveries: u32,
}

/// One shipment's record. Public fields only; the private scalar is sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Request id, also the response key's kid.
    pub request_id: String,
    /// Base64 of the sealed private scalar (AAD: shipment ref and request id).
    sealed_key: String,
    /// Hex SHA-256 of the inputs, so a repeated SealRequests is recognised.
    pub inputs_digest: String,
    /// The Yubico transport key used.
    pub transport_kid: String,
    /// Credential request JWE (encrypted to Yubico; not secret).
    pub credential_request_jwe: String,
    /// PIN request JWE (encrypted to Yubico; not secret).
    pub pin_request_jwe: String,
    /// Public response JWK.
    pub response_public_jwk: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Serial from the opened credential response, once opened.
    #[serde(default)]
    pub credential_serial: Option<String>,
    /// The last PIN delivery.
    #[serde(default)]
    pub receipt: Option<Receipt>,
    /// Unix seconds at which a delivery started whose outcome is not recorded yet. Written and
    /// flushed before the channel is called, cleared with the receipt: found set, the vault
    /// stopped while sending and the PIN may or may not have gone out.
    #[serde(default)]
    pub delivery_started: Option<i64>,
    /// The addresses bound at SealRequests (or by RebindRecipients): the only ones DeliverPin
    /// sends this shipment's PIN to.
    #[serde(default)]
    pub recipients: Vec<String>,
}

fn aad(shipment_ref: &str, request_id: &str) -> Vec<u8> {
    format!("fpr-vault/v1/response-key/{shipment_ref}/{request_id}").into_bytes()
}

fn record_key(shipment_ref: &str) -> Vec<u8> {
    let mut k = RECORD_PREFIX.to_vec();
    k.extend_from_slice(shipment_ref.as_bytes());
    k
}

/// The sealed key store (file `vault.redb` in its directory).
pub struct KeyStore {
    store: RedbStore,
    tree: Arc<dyn Tree>,
    /// Read-locked by every seal and open of a record; write-locked by rotation, so no record
    /// is sealed under a key that is being replaced.
    master: RwLock<MasterKey>,
    /// Read-held by every write of a record until it is durable (concurrent writes share one
    /// commit); write-held by rotation, whose batch of re-sealed records must not overwrite, or
    /// be overwritten by, a write it did not see.
    writes: tokio::sync::RwLock<()>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("master", &*self.read_master())
            .finish_non_exhaustive()
    }
}

// === impl KeyStore ===

impl KeyStore {
    /// Opens the store and checks the master key against the stored key check value (set on
    /// first open). A different key fails here, with both check values, before anything serves.
    pub fn open(path: &Path, master: MasterKey) -> Result<Self, Error> {
        Self::open_with_previous(path, master, None)
    }

    /// As [`KeyStore::open`]; when the store is still sealed under `previous` (a rotation was
    /// interrupted, or the key file changed while the vault was down), it is re-sealed under
    /// `master` first.
    pub fn open_with_previous(
        path: &Path,
        master: MasterKey,
        previous: Option<MasterKey>,
    ) -> Result<Self, Error> {
        std::fs::create_dir_all(path).map_err(|source| Error::Io {
            what: format!("create {}", path.display()),
            source,
        })?;
        let store = RedbStore::open(&path.join("vault.redb"), RedbOptions::default())?;
        let tree = store.tree("vault")?;
        match fpr_store::take_over_sled(path, "vault", &tree)? {
            TakeOver::Nothing => {}
            TakeOver::Copied(entries) => tracing::info!(
                entries,
                path = %path.join(SLED_MOVED).display(),
                "Copied the sled key store into vault.redb and moved its files aside; delete them once the vault runs as expected"
            ),
            TakeOver::Moved => tracing::info!(
                path = %path.join(SLED_MOVED).display(),
                "Moved the files of the sled key store already copied aside"
            ),
        }
        let kcv = master.check_value();
        match tree.get(KCV_KEY)? {
            Some(stored) if bool::from(stored.ct_eq(kcv.as_bytes())) => {}
            Some(stored) => {
                let Some(previous) =
                    previous.filter(|p| bool::from(stored.ct_eq(p.check_value().as_bytes())))
                else {
                    return Err(Error::WrongMasterKey {
                        expected: String::from_utf8_lossy(&stored).into_owned(),
                        found: kcv,
                    });
                };
                let ks = Self {
                    store,
                    tree,
                    master: RwLock::new(previous),
                    writes: tokio::sync::RwLock::new(()),
                };
                let n = ks.reseal(master)?;
                tracing::warn!(
                    keys = n,
                    check_value = %ks.check_value(),
                    "The store was sealed under the previous master key: re-sealed under the current one"
                );
                return Ok(ks);
            }
            None => {
                // First open: only an empty store may adopt a key.
                if !tree.scan_prefix(RECORD_PREFIX)?.is_empty() {
                    return Err(Error::WrongMasterKey {
                        expected: "(missing)".into(),
                        found: kcv,
                    });
                }
                let mut b = Batch::default();
                b.insert(KCV_KEY, kcv.as_bytes());
                tree.apply(b)?;
                tree.flush()?;
            }
        }
        Ok(Self {
            store,
            tree,
            master: RwLock::new(master),
            writes: tokio::sync::RwLock::new(()),
        })
    }

    fn read_master(&self) -> RwLockReadGuard<'_, MasterKey> {
        self.master.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The master key's check value.
    pub fn check_value(&self) -> String {
        self.read_master().check_value()
    }

    /// Number of records and the size on disk.
    pub fn stats(&self) -> Result<(u64, u64), Error> {
        let n = self.tree.scan_prefix(RECORD_PREFIX)?.len() as u64;
        Ok((n, self.store.size_on_disk()?))
    }

    /// The record of a shipment.
    pub fn get(&self, shipment_ref: &str) -> Result<Option<KeyRecord>, Error> {
        match self.tree.get(&record_key(shipment_ref))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|_| Error::CorruptRecord(shipment_ref.to_owned())),
        }
    }

    /// Seals `key` into a new record and stores it durably. Returns the record now stored
    /// (someone else's, if a concurrent call won the race).
    #[expect(clippy::too_many_arguments, reason = "one record's fields")]
    pub async fn insert_new(
        &self,
        shipment_ref: &str,
        key: &PrivateKey,
        inputs_digest: String,
        transport_kid: String,
        credential_request_jwe: String,
        pin_request_jwe: String,
        recipients: Vec<String>,
        created_at: i64,
    ) -> Result<KeyRecord, Error> {
        let scalar = key.scalar().map_err(Error::Crypto)?;
        // Held until the record is durable: a rotation waits for it, and sees it.
        let _writing = self.writes.read().await;
        let sealed = self
            .read_master()
            .seal(&aad(shipment_ref, key.kid()), &scalar)
            .map_err(Error::Crypto)?;
        let rec = KeyRecord {
            request_id: key.kid().to_owned(),
            sealed_key: STANDARD.encode(sealed),
            inputs_digest,
            transport_kid,
            credential_request_jwe,
            pin_request_jwe,
            response_public_jwk: key.public().to_json(),
            created_at,
            credential_serial: None,
            receipt: None,
            delivery_started: None,
            recipients,
        };
        let bytes =
            serde_json::to_vec(&rec).map_err(|_| Error::CorruptRecord(shipment_ref.to_owned()))?;
        let k = record_key(shipment_ref);
        let mut batch = Batch::default();
        batch.insert(&k, &bytes);
        let write = Write::ApplyIfAbsent { guard: k, batch };
        // The orchestrator's processing is the only caller: its commit may wait a moment for
        // other shipments' writes to share it.
        match fpr_store::write_durably_grouped(self.tree.clone(), write).await {
            Ok(()) => Ok(rec),
            Err(fpr_store::Error::Conflict) => self
                .get(shipment_ref)?
                .ok_or_else(|| Error::ShipmentNotFound(shipment_ref.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a record (after an open or a delivery), durably. The sealed key is kept as
    /// stored: a rotation may have re-sealed it since `rec` was read.
    pub async fn update(&self, shipment_ref: &str, rec: &KeyRecord) -> Result<(), Error> {
        // Held until the write is durable, so no rotation re-seals in between.
        let _writing = self.writes.read().await;
        let mut rec = rec.clone();
        if let Some(stored) = self.get(shipment_ref)? {
            rec.sealed_key = stored.sealed_key;
        }
        let bytes =
            serde_json::to_vec(&rec).map_err(|_| Error::CorruptRecord(shipment_ref.to_owned()))?;
        let mut b = Batch::default();
        b.insert(&record_key(shipment_ref), &bytes);
        fpr_store::write_durably_grouped(self.tree.clone(), Write::Apply(b)).await?;
        Ok(())
    }

    /// Unseals a record's response key (as stored now: a rotation may have re-sealed it since
    /// `rec` was read).
    pub fn response_key(&self, shipment_ref: &str, rec: &KeyRecord) -> Result<PrivateKey, Error> {
        let master = self.read_master();
        let stored = self.get(shipment_ref)?;
        let rec = stored.as_ref().unwrap_or(rec);
        let sealed = STANDARD
            .decode(&rec.sealed_key)
            .map_err(|_| Error::CorruptRecord(shipment_ref.to_owned()))?;
        let scalar = master
            .open(&aad(shipment_ref, &rec.request_id), &sealed)
            .map_err(Error::Crypto)?;
        PrivateKey::from_scalar(Curve::P384, &rec.request_id, &scalar).map_err(Error::Crypto)
    }

    /// Deletes a record, durably. Returns whether it existed.
    pub async fn purge(&self, shipment_ref: &str) -> Result<bool, Error> {
        let k = record_key(shipment_ref);
        let existed = self.tree.get(&k)?.is_some();
        let mut b = Batch::default();
        b.remove(&k);
        let _writing = self.writes.read().await;
        fpr_store::write_durably(self.tree.clone(), Write::Apply(b)).await?;
        Ok(existed)
    }

    /// Re-seals every record under `new` and records its check value, in one atomic batch,
    /// once the writes under way are durable (later ones wait for it). Returns the number of
    /// keys re-sealed.
    pub async fn rotate(&self, new: MasterKey) -> Result<usize, Error> {
        let _rotating = self.writes.write().await;
        self.reseal(new)
    }

    /// [`KeyStore::rotate`]'s work, with no write under way.
    fn reseal(&self, new: MasterKey) -> Result<usize, Error> {
        let mut master = self.master.write().unwrap_or_else(PoisonError::into_inner);
        let mut batch = Batch::default();
        let mut n = 0;
        for (k, v) in self.tree.scan_prefix(RECORD_PREFIX)? {
            let shipment_ref = String::from_utf8_lossy(&k[RECORD_PREFIX.len()..]).into_owned();
            let mut rec: KeyRecord = serde_json::from_slice(&v)
                .map_err(|_| Error::CorruptRecord(shipment_ref.clone()))?;
            let a = aad(&shipment_ref, &rec.request_id);
            let sealed = STANDARD
                .decode(&rec.sealed_key)
                .map_err(|_| Error::CorruptRecord(shipment_ref.clone()))?;
            let scalar = master.open(&a, &sealed).map_err(Error::Crypto)?;
            rec.sealed_key = STANDARD.encode(new.seal(&a, &scalar).map_err(Error::Crypto)?);
            batch.insert(
                &k,
                &serde_json::to_vec(&rec).map_err(|_| Error::CorruptRecord(shipment_ref))?,
            );
            n += 1;
        }
        batch.insert(KCV_KEY, new.check_value().as_bytes());
        self.tree.apply(batch)?;
        self.tree.flush()?;
        *master = new;
        Ok(n)
    }
}

/// A new random master key, as the hex line a key file holds. Secret.
pub fn new_master_key_hex() -> Result<zeroize::Zeroizing<String>, Error> {
    MasterKey::generate_hex().map_err(Error::Crypto)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::sync::Arc;

    use fpr_jose::seal::MasterKey;
    use fpr_jose::{Curve, PrivateKey};
    use fpr_store::{Batch, SledStore, Store as _};

    use super::KeyStore;

    fn master() -> MasterKey {
        MasterKey::from_bytes(&[9u8; 32]).unwrap()
    }

    async fn insert(ks: &KeyStore, shipment: &str) -> PrivateKey {
        let key = PrivateKey::generate(Curve::P384, &format!("req-{shipment}")).unwrap();
        ks.insert_new(
            shipment,
            &key,
            "digest".into(),
            "kid".into(),
            "cred".into(),
            "pin".into(),
            vec!["a@example.com".into()],
            1,
        )
        .await
        .unwrap();
        key
    }

    /// A key store an earlier vault kept in sled is copied into `vault.redb` at the first
    /// open, under the same master key, and its files are moved aside; later opens find it
    /// there.
    #[tokio::test]
    async fn a_sled_key_store_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let key = {
            let ks = KeyStore::open(&dir.path().join("staging"), master()).unwrap();
            let key = insert(&ks, "shp-1").await;
            // The same entries, as sled held them.
            let sled = SledStore::open(dir.path()).unwrap();
            let tree = sled.tree("vault").unwrap();
            let mut b = Batch::default();
            for (k, v) in ks.tree.scan_prefix(b"").unwrap() {
                b.insert(&k, &v);
            }
            tree.apply(b).unwrap();
            tree.flush().unwrap();
            key
        };
        for _ in 0..2 {
            let ks = KeyStore::open(dir.path(), master()).unwrap();
            let rec = ks.get("shp-1").unwrap().unwrap();
            let back = ks.response_key("shp-1", &rec).unwrap();
            assert_eq!(back.scalar().unwrap(), key.scalar().unwrap());
            assert!(!dir.path().join("db").exists());
            assert!(dir.path().join(fpr_store::SLED_MOVED).join("db").exists());
        }
        assert!(KeyStore::open(dir.path(), MasterKey::from_bytes(&[1u8; 32]).unwrap()).is_err());
    }

    /// Writes racing a rotation are neither lost nor left sealed under the old key: every
    /// record inserted or updated while the key rotates opens under the new key after a
    /// reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_racing_a_rotation_survive_under_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Arc::new(KeyStore::open(dir.path(), master()).unwrap());
        for i in 0..20 {
            insert(&ks, &format!("old-{i}")).await;
        }
        let mut tasks = Vec::new();
        for i in 0..40 {
            let ks = ks.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    insert(&ks, &format!("new-{i}")).await;
                } else {
                    let id = format!("old-{}", i / 2);
                    let mut rec = ks.get(&id).unwrap().unwrap();
                    rec.credential_serial = Some(format!("serial-{i}"));
                    ks.update(&id, &rec).await.unwrap();
                }
            }));
        }
        let next = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        ks.rotate(next).await.unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        drop(ks);
        let ks = KeyStore::open(dir.path(), MasterKey::from_bytes(&[8u8; 32]).unwrap()).unwrap();
        let (n, _) = ks.stats().unwrap();
        assert_eq!(n, 40);
        for i in 0..40 {
            let id = if i % 2 == 0 {
                format!("new-{i}")
            } else {
                format!("old-{}", i / 2)
            };
            let rec = ks.get(&id).unwrap().unwrap();
            ks.response_key(&id, &rec).unwrap();
            if i % 2 == 1 {
                assert_eq!(rec.credential_serial, Some(format!("serial-{i}")));
            }
        }
    }
}
