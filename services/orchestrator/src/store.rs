//! Shipment records (behind `fpr-store`): records under `rec/`, idempotency keys under
//! `idem/`, and an index of the ongoing ones under `due/` (id → the unix second before which
//! processing waits), written together in one batch and durable before any call returns
//! success. The processing job reads the index, not every record.

use std::path::Path;
use std::sync::Arc;

use fpr_domain::model::{Record, ShipmentId, State};
use fpr_store::{Batch, RedbOptions, RedbStore, SledStore, Store as _, Tree};
use tracing::info;

use crate::Error;

/// The shipment store.
#[derive(Clone)]
pub struct Shipments {
    tree: Arc<dyn Tree>,
}

fn rec_key(id: &str) -> Vec<u8> {
    format!("rec/{id}").into_bytes()
}

fn idem_key(k: &str) -> Vec<u8> {
    format!("idem/{k}").into_bytes()
}

fn due_key(id: &str) -> Vec<u8> {
    format!("due/{id}").into_bytes()
}

/// Set once the `due/` index holds every ongoing record (stores from before the index get it
/// built at open).
const INDEXED: &[u8] = b"meta/due_index";

/// Adds `rec` to `b`: the record, and its entry in the index of ongoing records.
fn write(b: &mut Batch, rec: &Record) -> Result<(), Error> {
    let bytes = serde_json::to_vec(rec).map_err(|_| Error::Corrupt(rec.id.clone()))?;
    b.insert(&rec_key(&rec.id), &bytes);
    if rec.state == State::Ongoing {
        b.insert(&due_key(&rec.id), &rec.not_before.to_be_bytes());
    } else {
        b.remove(&due_key(&rec.id));
    }
    Ok(())
}

/// Where a sled store of an earlier fpr is moved once its records are copied.
const SLED_MOVED: &str = "sled-before-redb";

/// The files of a sled store in `dir`.
const SLED_FILES: &[&str] = &["conf", "db", "blobs", "snap"];

/// Copies the records of the sled store an earlier fpr kept in `dir` into `tree`, durably,
/// then moves its files into `dir/sled-before-redb`. A crash at any point resumes: the copy
/// is one atomic batch, marked done in the same batch.
fn migrate_from_sled(dir: &Path, tree: &Arc<dyn Tree>) -> Result<(), Error> {
    const DONE: &[u8] = b"meta/migrated_from_sled";
    if !(dir.join("conf").is_file() && dir.join("db").is_file()) {
        return Ok(());
    }
    if tree.get(DONE)?.is_none() {
        let old = SledStore::open(dir)?;
        let entries = old.tree("shipments")?.scan_prefix(b"")?;
        let n = entries.len();
        let mut b = Batch::default();
        for (k, v) in entries {
            b.insert(&k, &v);
        }
        b.insert(DONE, b"1");
        tree.apply(b)?;
        tree.flush()?;
        info!(
            entries = n,
            "Copied the shipments of the sled store into shipments.redb"
        );
    }
    let moved = dir.join(SLED_MOVED);
    std::fs::create_dir_all(&moved).map_err(fpr_store::Error::Disk)?;
    for entry in std::fs::read_dir(dir).map_err(fpr_store::Error::Disk)? {
        let entry = entry.map_err(fpr_store::Error::Disk)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if SLED_FILES
            .iter()
            .any(|f| name == *f || name.starts_with("snap."))
        {
            std::fs::rename(entry.path(), moved.join(&name)).map_err(fpr_store::Error::Disk)?;
        }
    }
    info!(
        path = %moved.display(),
        "The old sled store's files were moved aside; delete them once fpr runs as expected"
    );
    Ok(())
}

// === impl Shipments ===

impl Shipments {
    /// Opens (creating if needed) the store in directory `dir` (file `shipments.redb`, at most
    /// `cache_bytes` of page cache), taking over the records of a sled store an earlier fpr
    /// kept there.
    pub fn open_dir(dir: &Path, cache_bytes: usize) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(fpr_store::Error::Disk)?;
        let store = RedbStore::open(&dir.join("shipments.redb"), RedbOptions { cache_bytes })?;
        let tree = store.tree("shipments")?;
        migrate_from_sled(dir, &tree)?;
        Self::open(tree)
    }

    /// Opens the store in `tree`, building the index of ongoing records if it has none yet.
    pub fn open(tree: Arc<dyn Tree>) -> Result<Self, Error> {
        let store = Self { tree };
        if store.tree.get(INDEXED)?.is_none() {
            let mut b = Batch::default();
            for rec in store.all()? {
                write(&mut b, &rec)?;
            }
            b.insert(INDEXED, b"1");
            store.tree.apply(b)?;
            store.tree.flush()?;
        }
        Ok(store)
    }

    /// A record.
    pub fn get(&self, id: &str) -> Result<Option<Record>, Error> {
        self.tree
            .get(&rec_key(id))?
            .map(|v| serde_json::from_slice(&v).map_err(|_| Error::Corrupt(id.to_owned())))
            .transpose()
    }

    /// The shipment id an idempotency key created.
    pub fn by_idempotency_key(&self, k: &str) -> Result<Option<String>, Error> {
        Ok(self
            .tree
            .get(&idem_key(k))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stores a new record and its idempotency key in one atomic, durable write. Returns the id
    /// that holds the key (another one if a concurrent call won; then nothing was written).
    pub async fn create(&self, rec: &Record) -> Result<String, Error> {
        let idem = idem_key(&rec.idempotency_key);
        let mut b = Batch::default();
        b.insert(&idem, rec.id.as_bytes());
        write(&mut b, rec)?;
        match self.tree.apply_if_absent(&idem, b) {
            Ok(()) => {
                self.flush().await?;
                Ok(rec.id.clone())
            }
            Err(fpr_store::Error::Conflict) => self
                .by_idempotency_key(&rec.idempotency_key)?
                .ok_or_else(|| Error::Corrupt(rec.idempotency_key.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a record, durably.
    pub async fn put(&self, rec: &Record) -> Result<(), Error> {
        let mut b = Batch::default();
        write(&mut b, rec)?;
        self.tree.apply(b)?;
        self.flush().await
    }

    /// Makes every earlier write durable (sharing the flush with concurrent writers).
    pub async fn flush(&self) -> Result<(), Error> {
        fpr_store::durable(self.tree.clone()).await?;
        Ok(())
    }

    /// Deletes a record (its idempotency key stays, so the key is never reused).
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let mut b = Batch::default();
        b.remove(&rec_key(id));
        b.remove(&due_key(id));
        self.tree.apply(b)?;
        self.flush().await
    }

    /// Every record, oldest first.
    pub fn all(&self) -> Result<Vec<Record>, Error> {
        self.tree
            .scan_prefix(b"rec/")?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v)
                    .map_err(|_| Error::Corrupt(String::from_utf8_lossy(&k).into_owned()))
            })
            .collect()
    }

    /// The ongoing records, oldest first (from the index).
    pub fn ongoing(&self) -> Result<Vec<Record>, Error> {
        let mut out = Vec::new();
        for id in self.index(i64::MAX)? {
            if let Some(r) = self.get(id.as_str())? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Ids of ongoing records whose wait is over at `now`, oldest first.
    pub fn due(&self, now: i64) -> Result<Vec<ShipmentId>, Error> {
        self.index(now)
    }

    fn index(&self, until: i64) -> Result<Vec<ShipmentId>, Error> {
        let mut out = Vec::new();
        for (k, v) in self.tree.scan_prefix(b"due/")? {
            let key = String::from_utf8_lossy(&k);
            let id = key.trim_start_matches("due/");
            let not_before = <[u8; 8]>::try_from(v.as_slice())
                .map(i64::from_be_bytes)
                .map_err(|_| Error::Corrupt(id.to_owned()))?;
            if not_before <= until {
                out.push(ShipmentId::try_new(id).map_err(|_| Error::Corrupt(id.to_owned()))?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use fpr_store::{Batch, Entry, Tree};

    use super::*;

    /// An in-memory tree whose writes start failing (as a full disk, or a process that died)
    /// after `ok` of them.
    struct Failing {
        map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
        ok: AtomicUsize,
    }

    impl Failing {
        fn write(&self) -> fpr_store::Result<()> {
            match self
                .ok
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            {
                Ok(_) => Ok(()),
                Err(_) => Err(fpr_store::Error::Io(sled::Error::Io(std::io::Error::from(
                    std::io::ErrorKind::StorageFull,
                )))),
            }
        }
    }

    impl Tree for Failing {
        fn get(&self, key: &[u8]) -> fpr_store::Result<Option<Vec<u8>>> {
            Ok(self.map.lock().unwrap().get(key).cloned())
        }
        fn apply(&self, batch: Batch) -> fpr_store::Result<()> {
            self.write()?;
            let mut m = self.map.lock().unwrap();
            for (k, v) in batch.into_ops() {
                match v {
                    Some(v) => m.insert(k, v),
                    None => m.remove(&k),
                };
            }
            Ok(())
        }
        fn compare_and_swap(
            &self,
            key: &[u8],
            expected: Option<&[u8]>,
            new: Option<&[u8]>,
        ) -> fpr_store::Result<()> {
            self.write()?;
            let mut m = self.map.lock().unwrap();
            if m.get(key).map(Vec::as_slice) != expected {
                return Err(fpr_store::Error::Conflict);
            }
            match new {
                Some(v) => m.insert(key.to_vec(), v.to_vec()),
                None => m.remove(key),
            };
            Ok(())
        }
        fn apply_if_absent(&self, guard: &[u8], batch: Batch) -> fpr_store::Result<()> {
            if self.map.lock().unwrap().contains_key(guard) {
                return Err(fpr_store::Error::Conflict);
            }
            self.apply(batch)
        }
        fn scan_prefix(&self, prefix: &[u8]) -> fpr_store::Result<Vec<Entry>> {
            Ok(self
                .map
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
        fn scan_page(
            &self,
            prefix: &[u8],
            _after: Option<&[u8]>,
            limit: usize,
        ) -> fpr_store::Result<Vec<Entry>> {
            let mut all = self.scan_prefix(prefix)?;
            all.truncate(limit);
            Ok(all)
        }
        fn flush(&self) -> fpr_store::Result<()> {
            Ok(())
        }
    }

    fn record(id: &str, key: &str) -> Record {
        serde_json::from_value(serde_json::json!({
            "id": id, "idempotency_key": key, "idp": "entra", "user_id": "u", "state": "ongoing",
            "step": "accepted", "pin_length": 8, "force_change": false, "shipping": {},
            "created_at": 0, "updated_at": 0
        }))
        .unwrap()
    }

    /// Whatever write fails (the disk fills up, the process dies), a create leaves either its
    /// key and its record or neither: a replay never finds a key whose record is missing.
    #[tokio::test]
    async fn a_create_cut_at_any_write_leaves_all_or_nothing() {
        for ok in 0..3 {
            let tree = Arc::new(Failing {
                map: Mutex::new(BTreeMap::new()),
                ok: AtomicUsize::new(ok),
            });
            let store = Shipments { tree: tree.clone() };
            let first = store.create(&record("shp_1", "k")).await;
            tree.ok.store(usize::MAX, Ordering::SeqCst);
            match store.by_idempotency_key("k").unwrap() {
                Some(id) => {
                    assert!(first.is_ok(), "ok={ok}: acknowledged only once stored");
                    assert!(
                        store.get(&id).unwrap().is_some(),
                        "ok={ok}: key without record"
                    );
                }
                None => {
                    let err = first.unwrap_err();
                    assert!(
                        matches!(&err, Error::Store(s) if s.disk_refused().is_some()),
                        "ok={ok}: {err}"
                    );
                    assert!(
                        store.all().unwrap().is_empty(),
                        "ok={ok}: a record without its key"
                    );
                    // Once there is room again, the same create goes through.
                    assert_eq!(store.create(&record("shp_2", "k")).await.unwrap(), "shp_2");
                }
            }
        }
    }

    /// A store an earlier fpr kept in sled (no index) is taken over at open: every record
    /// and idempotency key, the index built, the old files moved aside; a second open finds
    /// the same.
    #[tokio::test]
    async fn a_sled_store_of_an_earlier_fpr_is_taken_over() {
        use fpr_store::Store as _;
        let dir = tempfile::tempdir().unwrap();
        {
            let old = SledStore::open(dir.path()).unwrap();
            let t = old.tree("shipments").unwrap();
            let mut b = Batch::default();
            for (id, key, state) in [("shp_1", "k1", "ongoing"), ("shp_2", "k2", "complete")] {
                let mut r = record(id, key);
                r.state = serde_json::from_value(serde_json::json!(state)).unwrap();
                b.insert(&rec_key(id), &serde_json::to_vec(&r).unwrap());
                b.insert(&idem_key(key), id.as_bytes());
            }
            t.apply(b).unwrap();
            t.flush().unwrap();
        }
        for _ in 0..2 {
            let s = Shipments::open_dir(dir.path(), 1 << 20).unwrap();
            assert_eq!(s.all().unwrap().len(), 2);
            assert_eq!(
                s.by_idempotency_key("k2").unwrap().as_deref(),
                Some("shp_2")
            );
            let due: Vec<String> = s.due(0).unwrap().iter().map(|i| i.to_string()).collect();
            assert_eq!(due, ["shp_1"]);
            assert!(!dir.path().join("db").exists());
            assert!(dir.path().join(SLED_MOVED).join("db").exists());
        }
    }
}
