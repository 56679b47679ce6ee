//! Shipment records in sled (behind `fpr-store`): records under `rec/`, idempotency keys under
//! `idem/`, written together and flushed before any call returns success.

use std::sync::Arc;

use fpr_domain::model::{Record, State};
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
    pub fn due(&self, now: i64) -> Result<Vec<String>, Error> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|r| r.state == State::Ongoing && r.not_before <= now)
            .map(|r| r.id)
            .collect())
    }
}
