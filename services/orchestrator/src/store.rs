//! Shipment records (behind `fpr-store`): records under `rec/`, idempotency keys under
//! `idem/`, an index of the ongoing ones under `due/` (id → the unix second before which
//! processing waits) and one of YubiEnterprise shipment ids under `ye/` (→ fpr id), written
//! together in one batch and durable before any call returns success. The processing job
//! reads the index, not every record.
//!
//! A record is its JSON (deflated behind a one-byte tag once it is no longer ongoing: each
//! step rewrites it until then), without its large parts: Entra ID's
//! PIN response (kept for ResendPin) is under `pin/`, and the sealed requests, creation options
//! and credential response, while a step still needs them, under `bulk/`. Small values pack
//! several to a page of the store; records written whole and plain by earlier versions read.

use std::path::Path;
use std::sync::Arc;

use fpr_domain::model::{Record, ShipmentId, State};
use fpr_store::{Batch, RedbOptions, RedbStore, SLED_MOVED, Store as _, TakeOver, Tree};
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

fn ye_key(ye_id: &str) -> Vec<u8> {
    format!("ye/{ye_id}").into_bytes()
}

/// Set once the `due/` and `ye/` indexes hold every record (stores from before an index get
/// it built at open).
const INDEXED: &[u8] = b"meta/due_ye_index";

/// The first byte of a deflated value (a plain JSON record starts with `{`).
const DEFLATED: u8 = 1;

fn pin_key(id: &str) -> Vec<u8> {
    format!("pin/{id}").into_bytes()
}

fn bulk_key(id: &str) -> Vec<u8> {
    format!("bulk/{id}").into_bytes()
}

/// The large parts of a record that only some steps carry, kept under `bulk/<id>` while they
/// exist. Apart, they neither swell the pages of the records (the store never re-packs a page
/// a large value once split) nor are rewritten by the steps that do not change them.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Bulk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    creation_options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential_request_jwe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pin_request_jwe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credential_response_jwe: Option<String>,
}

impl Bulk {
    /// Moves the large parts out of `rec`.
    fn take(rec: &mut Record) -> Self {
        Self {
            creation_options: rec.creation_options.take(),
            credential_request_jwe: rec.credential_request_jwe.take(),
            pin_request_jwe: rec.pin_request_jwe.take(),
            credential_response_jwe: rec.credential_response_jwe.take(),
        }
    }

    fn is_empty(&self) -> bool {
        self.creation_options.is_none()
            && self.credential_request_jwe.is_none()
            && self.pin_request_jwe.is_none()
            && self.credential_response_jwe.is_none()
    }

    /// Puts the parts back into `rec` (whose own, from a store written before the split, win).
    fn restore(self, rec: &mut Record) {
        if !(rec.creation_options.is_some()
            || rec.credential_request_jwe.is_some()
            || rec.pin_request_jwe.is_some()
            || rec.credential_response_jwe.is_some())
        {
            rec.creation_options = self.creation_options;
            rec.credential_request_jwe = self.credential_request_jwe;
            rec.pin_request_jwe = self.pin_request_jwe;
            rec.credential_response_jwe = self.credential_response_jwe;
        }
    }
}

thread_local! {
    // The compressor's tables are large (allocating them afresh each time cost more than the
    // compression itself): one of each per thread, reset between values. (zlib-rs instead of
    // miniz_oxide was tried: at its level 2 it cost the orchestrator more, and its level 1,
    // fixed Huffman codes only, left records larger.)
    static DEFLATER: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::fast(), false));
    static INFLATER: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(false));
}

/// `bytes` deflated behind the tag (a record's JSON to about 60 %); should the compressor
/// fail, `bytes` as they are, which read back the same.
fn deflate(bytes: &[u8]) -> Vec<u8> {
    DEFLATER.with_borrow_mut(|z| {
        z.reset();
        let mut out = Vec::with_capacity(bytes.len() + 64);
        out.push(DEFLATED);
        loop {
            let done = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
            match z.compress_vec(
                bytes.get(done..).unwrap_or_default(),
                &mut out,
                flate2::FlushCompress::Finish,
            ) {
                Ok(flate2::Status::StreamEnd) => return out,
                Ok(_) => out.reserve(out.capacity().max(64)),
                Err(_) => return bytes.to_vec(),
            }
        }
    })
}

/// A stored value: deflated behind the tag, or else as it is (plain JSON, as versions before
/// the deflate wrote records, and as a taken-over sled store holds them).
fn inflate<'a>(key: &[u8], v: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, Error> {
    /// Far above any record: a value that claims more is corrupt.
    const MAX: usize = 16 << 20;
    let corrupt = || Error::Corrupt(String::from_utf8_lossy(key).into_owned());
    let Some((&DEFLATED, z)) = v.split_first() else {
        return Ok(v.into());
    };
    INFLATER.with_borrow_mut(|d| {
        d.reset(false);
        let mut out = Vec::with_capacity(z.len() * 3);
        loop {
            let done = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
            let before = (d.total_in(), d.total_out());
            match d.decompress_vec(
                z.get(done..).unwrap_or_default(),
                &mut out,
                flate2::FlushDecompress::None,
            ) {
                Ok(flate2::Status::StreamEnd) => return Ok(out.into()),
                Ok(_) if out.len() < out.capacity() && before == (d.total_in(), d.total_out()) => {
                    return Err(corrupt());
                }
                Ok(_) if out.capacity() < MAX => out.reserve(out.capacity()),
                _ => return Err(corrupt()),
            }
        }
    })
}

/// A stored value's JSON; `key` names it in the error.
fn decode<T: serde::de::DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(&inflate(key, v)?)
        .map_err(|_| Error::Corrupt(String::from_utf8_lossy(key).into_owned()))
}

/// The record `core` read from `rec/<id>`, completed from `pin/<id>` and `bulk/<id>`.
fn join(mut core: Record, pin: Option<Vec<u8>>, bulk: Option<Vec<u8>>) -> Result<Record, Error> {
    if core.pin_response_jwe.is_none()
        && let Some(p) = pin
    {
        let key = pin_key(&core.id);
        core.pin_response_jwe = Some(
            String::from_utf8(inflate(&key, &p)?.into_owned())
                .map_err(|_| Error::Corrupt(String::from_utf8_lossy(&key).into_owned()))?,
        );
    }
    if let Some(b) = bulk {
        decode::<Bulk>(&bulk_key(&core.id), &b)?.restore(&mut core);
    }
    Ok(core)
}

/// Adds `rec` to `b`: the record without its large parts under `rec/`, Entra ID's PIN
/// response under `pin/` and the other large parts under `bulk/` (each written only when it
/// changed: `tree` holds the current ones; None for a new record, of which nothing is stored),
/// and its entry in the index of ongoing records. The record's own part is written plain while
/// it is ongoing and deflated once it leaves that state: each step rewrites it, and deflating
/// it at every step was a twelfth of CreateShipment's cost and an eighth of the orchestrator's
/// while processing; a record spends most of its life, and all of it after the cleanup's
/// retention begins, in the state it ends in.
fn write(tree: Option<&dyn Tree>, b: &mut Batch, rec: &Record) -> Result<(), Error> {
    let stored = |key: &[u8]| tree.map_or(Ok(None), |t| t.get(key));
    let mut core = rec.clone();
    let pin = core.pin_response_jwe.take().map(String::into_bytes);
    let bulk = Bulk::take(&mut core);
    let bulk = (!bulk.is_empty())
        .then(|| serde_json::to_vec(&bulk))
        .transpose()
        .map_err(|_| Error::Corrupt(rec.id.clone()))?;
    let core = serde_json::to_vec(&core).map_err(|_| Error::Corrupt(rec.id.clone()))?;
    if rec.state == State::Ongoing {
        b.insert(&rec_key(&rec.id), &core);
    } else {
        b.insert(&rec_key(&rec.id), &deflate(&core));
    }
    // The large parts change at few steps: compared with the stored ones (inflating is a
    // fraction of deflating), they are compressed and written only when they changed.
    for (key, plain) in [(pin_key(&rec.id), pin), (bulk_key(&rec.id), bulk)] {
        let stored = stored(&key)?;
        let same = match (&stored, &plain) {
            (None, None) => true,
            (Some(s), Some(p)) => inflate(&key, s).is_ok_and(|s| *s == **p),
            _ => false,
        };
        if !same {
            match plain {
                Some(p) => b.insert(&key, &deflate(&p)),
                None => b.remove(&key),
            }
        }
    }
    if let Some(ye) = rec.ye_shipment_id.as_deref()
        && stored(&ye_key(ye))?.as_deref() != Some(rec.id.as_bytes())
    {
        b.insert(&ye_key(ye), rec.id.as_bytes());
    }
    if rec.state == State::Ongoing {
        b.insert(&due_key(&rec.id), &rec.not_before.to_be_bytes());
    } else {
        b.remove(&due_key(&rec.id));
    }
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
        match fpr_store::take_over_sled(dir, "shipments", &tree)? {
            TakeOver::Nothing => {}
            TakeOver::Copied(entries) => info!(
                entries,
                path = %dir.join(SLED_MOVED).display(),
                "Copied the shipments of the sled store into shipments.redb and moved its files aside; delete them once fpr runs as expected"
            ),
            TakeOver::Moved => info!(
                path = %dir.join(SLED_MOVED).display(),
                "Moved the files of the sled store already copied aside"
            ),
        }
        Self::open(tree)
    }

    /// Opens the store in `tree`, building the index of ongoing records if it has none yet.
    pub fn open(tree: Arc<dyn Tree>) -> Result<Self, Error> {
        let store = Self { tree };
        if store.tree.get(INDEXED)?.is_none() {
            let mut b = Batch::default();
            for rec in store.all()? {
                write(Some(&*store.tree), &mut b, &rec)?;
            }
            b.insert(INDEXED, b"1");
            store.tree.apply(b)?;
            store.tree.flush()?;
        }
        Ok(store)
    }

    /// A record.
    pub fn get(&self, id: &str) -> Result<Option<Record>, Error> {
        let Some(v) = self.tree.get(&rec_key(id))? else {
            return Ok(None);
        };
        let core = decode(&rec_key(id), &v)?;
        join(
            core,
            self.tree.get(&pin_key(id))?,
            self.tree.get(&bulk_key(id))?,
        )
        .map(Some)
    }

    /// The shipment id an idempotency key created.
    pub fn by_idempotency_key(&self, k: &str) -> Result<Option<String>, Error> {
        Ok(self
            .tree
            .get(&idem_key(k))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The fpr id of the shipment YubiEnterprise knows as `ye_id`.
    pub fn by_ye_id(&self, ye_id: &str) -> Result<Option<String>, Error> {
        Ok(self
            .tree
            .get(&ye_key(ye_id))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stores a new record (`rec.id` never used before) and its idempotency key in one atomic,
    /// durable write. Returns the id that holds the key (another one if a concurrent call won;
    /// then nothing was written).
    pub async fn create(&self, rec: &Record) -> Result<String, Error> {
        let idem = idem_key(&rec.idempotency_key);
        let mut b = Batch::default();
        b.insert(&idem, rec.id.as_bytes());
        // A new id: nothing of it is stored yet.
        write(None, &mut b, rec)?;
        match fpr_store::write_durably(
            self.tree.clone(),
            fpr_store::Write::ApplyIfAbsent {
                guard: idem,
                batch: b,
            },
        )
        .await
        {
            Ok(()) => Ok(rec.id.clone()),
            Err(fpr_store::Error::Conflict) => self
                .by_idempotency_key(&rec.idempotency_key)?
                .ok_or_else(|| Error::Corrupt(rec.idempotency_key.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a record, durably.
    pub async fn put(&self, rec: &Record) -> Result<(), Error> {
        self.put_as(rec, false).await
    }

    /// [`Shipments::put`] for processing's steps: the commit may wait a moment for other
    /// steps' writes to share it ([`fpr_store::write_durably_grouped`]); durable on return.
    pub async fn put_grouped(&self, rec: &Record) -> Result<(), Error> {
        self.put_as(rec, true).await
    }

    async fn put_as(&self, rec: &Record, grouped: bool) -> Result<(), Error> {
        let mut b = Batch::default();
        write(Some(&*self.tree), &mut b, rec)?;
        let w = fpr_store::Write::Apply(b);
        if grouped {
            fpr_store::write_durably_grouped(self.tree.clone(), w).await?;
        } else {
            fpr_store::write_durably(self.tree.clone(), w).await?;
        }
        Ok(())
    }

    /// Makes every earlier write durable (sharing the flush with concurrent writers).
    pub async fn flush(&self) -> Result<(), Error> {
        fpr_store::durable(self.tree.clone()).await?;
        Ok(())
    }

    /// Deletes a record and its YubiEnterprise id (its idempotency key stays, so the key is never
    /// reused).
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let mut b = Batch::default();
        if let Some(ye) = self.get(id)?.and_then(|r| r.ye_shipment_id) {
            b.remove(&ye_key(&ye));
        }
        b.remove(&rec_key(id));
        b.remove(&pin_key(id));
        b.remove(&bulk_key(id));
        b.remove(&due_key(id));
        fpr_store::write_durably(self.tree.clone(), fpr_store::Write::Apply(b)).await?;
        Ok(())
    }

    /// How many shipments the store holds (no record is decoded).
    pub fn count(&self) -> Result<usize, Error> {
        Ok(self.tree.scan_prefix(b"rec/")?.len())
    }

    /// Every record, oldest first.
    pub fn all(&self) -> Result<Vec<Record>, Error> {
        let parts = |prefix: &[u8]| -> Result<std::collections::HashMap<Vec<u8>, Vec<u8>>, Error> {
            Ok(self
                .tree
                .scan_prefix(prefix)?
                .into_iter()
                .map(|(k, v)| (k[prefix.len()..].to_vec(), v))
                .collect())
        };
        let (mut pins, mut bulks) = (parts(b"pin/")?, parts(b"bulk/")?);
        self.tree
            .scan_prefix(b"rec/")?
            .into_iter()
            .map(|(k, v)| {
                let id = &k[b"rec/".len()..];
                join(decode(&k, &v)?, pins.remove(id), bulks.remove(id))
            })
            .collect()
    }

    /// One page of a listing, newest first: up to `size` records that `keep` takes, among the
    /// ongoing ones only (from the index) or all, with ids below `below` (the last id of the
    /// previous page); and whether more follow. Records are read one by one, only as far as the
    /// page needs, and without their large parts (a listing shows none of them).
    pub fn page(
        &self,
        ongoing_only: bool,
        below: Option<&str>,
        size: usize,
        keep: impl Fn(&Record) -> bool,
    ) -> Result<(Vec<Record>, bool), Error> {
        let below_id = below;
        let below = |id: &[u8]| below.is_none_or(|b| id < b.as_bytes());
        let mut out = Vec::new();
        let mut take = |k: &[u8], v: &[u8]| -> Result<bool, Error> {
            let r: Record = decode(k, v)?;
            if keep(&r) {
                out.push(r);
            }
            Ok(out.len() > size)
        };
        if ongoing_only {
            // The index backwards from `below`, a slice at a time: a page reads the index
            // only as far as it needs, not every ongoing shipment's entry.
            let mut before = below_id.map(due_key);
            'index: loop {
                let slice = self.tree.scan_page_rev(b"due/", before.as_deref(), 64)?;
                let Some((last, _)) = slice.last() else {
                    break;
                };
                before = Some(last.clone());
                for (k, _) in &slice {
                    let key = rec_key(&String::from_utf8_lossy(&k[b"due/".len()..]));
                    if let Some(v) = self.tree.get(&key)?
                        && take(&key, &v)?
                    {
                        break 'index;
                    }
                }
            }
        } else {
            for (k, v) in self.tree.scan_prefix(b"rec/")?.iter().rev() {
                if below(&k[b"rec/".len()..]) && take(k, v)? {
                    break;
                }
            }
        }
        let more = out.len() > size;
        out.truncate(size);
        Ok((out, more))
    }

    /// When the oldest ongoing shipment was created (unix seconds); None when none is ongoing.
    /// Reads one index entry and one record (ids sort by creation).
    pub fn oldest_ongoing_created_at(&self) -> Result<Option<i64>, Error> {
        let Some((k, _)) = self.tree.scan_page(b"due/", None, 1)?.into_iter().next() else {
            return Ok(None);
        };
        let key = String::from_utf8_lossy(&k);
        Ok(self
            .get(key.trim_start_matches("due/"))?
            .map(|r| r.created_at))
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
mod tests;
