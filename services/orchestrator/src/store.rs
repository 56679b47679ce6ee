//! Shipment records in sled (behind `fpr-store`): records under `rec/`, idempotency keys under
//! `idem/`, written together and flushed before any call returns success.

use std::sync::Arc;

use fpr_domain::model::{Record, ShipmentId, State};
use fpr_store::{Batch, Tree};

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

// === impl Shipments ===

impl Shipments {
    /// Wraps a tree.
    pub fn new(tree: Arc<dyn Tree>) -> Self {
        Self { tree }
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
    pub fn create(&self, rec: &Record) -> Result<String, Error> {
        let bytes = serde_json::to_vec(rec).map_err(|_| Error::Corrupt(rec.id.clone()))?;
        let idem = idem_key(&rec.idempotency_key);
        let mut b = Batch::default();
        b.insert(&idem, rec.id.as_bytes());
        b.insert(&rec_key(&rec.id), &bytes);
        match self.tree.apply_if_absent(&idem, b) {
            Ok(()) => {
                self.tree.flush()?;
                Ok(rec.id.clone())
            }
            Err(fpr_store::Error::Conflict) => self
                .by_idempotency_key(&rec.idempotency_key)?
                .ok_or_else(|| Error::Corrupt(rec.idempotency_key.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a record and flushes.
    pub fn put(&self, rec: &Record) -> Result<(), Error> {
        let bytes = serde_json::to_vec(rec).map_err(|_| Error::Corrupt(rec.id.clone()))?;
        let mut b = Batch::default();
        b.insert(&rec_key(&rec.id), &bytes);
        self.tree.apply(b)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Makes every earlier write durable.
    pub fn flush(&self) -> Result<(), Error> {
        self.tree.flush()?;
        Ok(())
    }

    /// Deletes a record (its idempotency key stays, so the key is never reused).
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        let mut b = Batch::default();
        b.remove(&rec_key(id));
        self.tree.apply(b)?;
        self.tree.flush()?;
        Ok(())
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

    /// Ids of ongoing records whose wait is over at `now`.
    pub fn due(&self, now: i64) -> Result<Vec<ShipmentId>, Error> {
        self.all()?
            .into_iter()
            .filter(|r| r.state == State::Ongoing && r.not_before <= now)
            .map(|r| ShipmentId::try_new(&r.id).map_err(|_| Error::Corrupt(r.id)))
            .collect()
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
    #[test]
    fn a_create_cut_at_any_write_leaves_all_or_nothing() {
        for ok in 0..3 {
            let tree = Arc::new(Failing {
                map: Mutex::new(BTreeMap::new()),
                ok: AtomicUsize::new(ok),
            });
            let store = Shipments::new(tree.clone());
            let first = store.create(&record("shp_1", "k"));
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
                    assert_eq!(store.create(&record("shp_2", "k")).unwrap(), "shp_2");
                }
            }
        }
    }
}
