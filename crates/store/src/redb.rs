//! A [`Store`] on redb: one file, one table per tree, and group commit.
//!
//! Each write ([`Tree::apply`] and the conditional ones) is a redb write transaction committed
//! without a sync: visible at once, durable with the next flush. [`Tree::flush`] commits an
//! empty transaction with [`Durability::Immediate`], which makes every earlier commit durable;
//! concurrent flushes share one ([`GroupFlush`]). A crash loses only writes no flush has
//! answered, and redb's commit protocol never leaves a torn one behind.
//!
//! redb rewrites pages in place once no reader needs their old version, so the file stays
//! near the size of the live data, unlike sled's log, which keeps every rewritten version
//! until its segments are cleaned (the orchestrator rewrites a record at each step).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Durability, ReadableDatabase as _, ReadableTable as _, TableDefinition};

use crate::{Batch, Entry, Error, GroupFlush, Result, Store, Tree};

/// Options of a [`RedbStore`].
#[derive(Debug, Clone, Copy)]
pub struct RedbOptions {
    /// Memory redb may use to cache pages, in bytes.
    pub cache_bytes: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 16 << 20,
        }
    }
}

/// A [`Store`] in one redb file.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Shared>,
    path: PathBuf,
    group: Arc<GroupFlush<Arc<Shared>>>,
}

/// The database, and the kind of the last I/O error it met: after one, redb refuses every
/// further write until it is reopened, and callers are told the disk's reason, not redb's.
struct Shared {
    db: redb::Database,
    last_io: std::sync::Mutex<Option<std::io::ErrorKind>>,
}

// === impl Shared ===

impl Shared {
    fn err(&self, e: impl Into<redb::Error>) -> Error {
        let mut last = self
            .last_io
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match e.into() {
            redb::Error::Io(io) => {
                *last = Some(io.kind());
                Error::Disk(io)
            }
            redb::Error::PreviousIo => Error::Disk(std::io::Error::new(
                last.unwrap_or(std::io::ErrorKind::Other),
                "an earlier write to the store failed; restart once the disk is fixed",
            )),
            other => Error::Engine(other.to_string()),
        }
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn engine(e: impl Into<redb::Error>) -> Error {
    match e.into() {
        redb::Error::Io(io) => Error::Disk(io),
        other => Error::Engine(other.to_string()),
    }
}

type Table<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;

/// Makes every earlier commit durable: an empty commit with a sync.
fn sync(s: &Arc<Shared>) -> Result<()> {
    let mut tx = s.db.begin_write().map_err(|e| s.err(e))?;
    tx.set_durability(Durability::Immediate)
        .map_err(|e| s.err(e))?;
    tx.commit().map_err(|e| s.err(e))
}

// === impl RedbStore ===

impl RedbStore {
    /// Opens (creating if needed) the store in file `path`.
    pub fn open(path: &Path, opts: RedbOptions) -> Result<Self> {
        let db = redb::Builder::new()
            .set_cache_size(opts.cache_bytes)
            .create(path)
            .map_err(|e| match engine(e) {
                Error::Disk(io) => Error::OpenFile {
                    path: path.to_owned(),
                    reason: io.to_string(),
                },
                Error::Engine(m) => Error::OpenFile {
                    path: path.to_owned(),
                    reason: m,
                },
                other => other,
            })?;
        Ok(Self {
            db: Arc::new(Shared {
                db,
                last_io: std::sync::Mutex::new(None),
            }),
            path: path.to_owned(),
            group: Arc::new(GroupFlush::new(sync)),
        })
    }
}

impl Store for RedbStore {
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        // Create the table, durably, so that reads never find it missing.
        let s = &self.db;
        let tx = s.db.begin_write().map_err(|e| s.err(e))?;
        tx.open_table(Table::new(name)).map_err(|e| s.err(e))?;
        tx.commit().map_err(|e| s.err(e))?;
        Ok(Arc::new(RedbTree {
            db: self.db.clone(),
            name: name.to_owned(),
            group: self.group.clone(),
        }))
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(std::fs::metadata(&self.path).map_err(Error::Disk)?.len())
    }
}

struct RedbTree {
    db: Arc<Shared>,
    name: String,
    group: Arc<GroupFlush<Arc<Shared>>>,
}

// === impl RedbTree ===

impl RedbTree {
    fn def(&self) -> Table<'_> {
        Table::new(&self.name)
    }

    /// Runs `f` in a write transaction committed without a sync (see the module docs); `f`'s
    /// error aborts it.
    fn write<T>(&self, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Result<T>) -> Result<T> {
        let mut tx = self.db.db.begin_write().map_err(|e| self.db.err(e))?;
        tx.set_durability(Durability::None)
            .map_err(|e| self.db.err(e))?;
        let out = {
            let mut t = tx.open_table(self.def()).map_err(|e| self.db.err(e))?;
            f(&mut t)?
        };
        tx.commit().map_err(|e| self.db.err(e))?;
        Ok(out)
    }

    fn scan(&self, from: &[u8], prefix: &[u8], limit: usize) -> Result<Vec<Entry>> {
        let tx = self.db.db.begin_read().map_err(|e| self.db.err(e))?;
        let t = tx.open_table(self.def()).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        for r in t.range(from..).map_err(|e| self.db.err(e))? {
            let (k, v) = r.map_err(|e| self.db.err(e))?;
            if !k.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

fn put_all(s: &Shared, t: &mut redb::Table<&[u8], &[u8]>, batch: Batch) -> Result<()> {
    for (k, v) in batch.ops {
        match v {
            Some(v) => t.insert(k.as_slice(), v.as_slice()).map_err(|e| s.err(e))?,
            None => t.remove(k.as_slice()).map_err(|e| s.err(e))?,
        };
    }
    Ok(())
}

impl Tree for RedbTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tx = self.db.db.begin_read().map_err(|e| self.db.err(e))?;
        let t = tx.open_table(self.def()).map_err(|e| self.db.err(e))?;
        Ok(t.get(key)
            .map_err(|e| self.db.err(e))?
            .map(|v| v.value().to_vec()))
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        self.write(|t| put_all(&self.db, t, batch))
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        self.write(|t| {
            let current = t
                .get(key)
                .map_err(|e| self.db.err(e))?
                .map(|v| v.value().to_vec());
            if current.as_deref() != expected {
                return Err(Error::Conflict);
            }
            match new {
                Some(v) => t.insert(key, v).map_err(|e| self.db.err(e))?,
                None => t.remove(key).map_err(|e| self.db.err(e))?,
            };
            Ok(())
        })
    }

    fn apply_if_absent(&self, guard: &[u8], batch: Batch) -> Result<()> {
        self.write(|t| {
            if t.get(guard).map_err(|e| self.db.err(e))?.is_some() {
                return Err(Error::Conflict);
            }
            put_all(&self.db, t, batch)
        })
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>> {
        self.scan(prefix, prefix, usize::MAX)
    }

    fn scan_page(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>> {
        match after {
            Some(a) => {
                let mut start = a.to_vec();
                start.push(0);
                self.scan(&start, prefix, limit)
            }
            None => self.scan(prefix, prefix, limit),
        }
    }

    fn flush(&self) -> Result<()> {
        self.group.flush(&self.db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_flushed_survive_reopen_and_conditions_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
            crate::tests::exercise(&store);
        }
        let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
        crate::tests::check_reopened(&store);
    }
}
