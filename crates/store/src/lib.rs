//! fpr's storage trait and its two engines: redb ([`RedbStore`], which both services use) and
//! sled (which earlier versions used; [`take_over_sled`] copies such a store into redb). Services see named trees of ordered byte keys ([`Tree`]); the
//! engines' types never leak past this crate.
//! Durability is explicit: a write is durable when [`Tree::flush`] returns, services flush before
//! they report success, and concurrent flushes share one sync (group commit). A batch is atomic
//! within one tree. Values are opaque bytes: whatever is secret is sealed before it gets here.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod migrate;
mod redb;

pub use self::migrate::{SLED_MOVED, TakeOver, take_over_sled};
pub use self::redb::{RedbOptions, RedbStore};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store at `path` could not be opened (missing permissions, held by another process,
    /// corrupt).
    #[error("cannot open store at {path}: {source}")]
    Open {
        /// The store's directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },
    /// A read, write or flush failed (I/O error, corruption).
    #[error("store I/O failed: {0}")]
    Io(#[source] sled::Error),
    /// The store file at `path` could not be opened (missing permissions, held by another
    /// process, corrupt).
    #[error("cannot open store at {path}: {reason}")]
    OpenFile {
        /// The store's file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The disk failed a read, write or sync.
    #[error("store I/O failed: {0}")]
    Disk(#[source] std::io::Error),
    /// The storage engine failed otherwise (corruption, a bug).
    #[error("store failed: {0}")]
    Engine(String),
    /// A compare-and-swap found another value than expected.
    #[error("concurrent update of the same key")]
    Conflict,
}

// === impl Error ===

impl Error {
    /// When the disk refused a write (full, over quota, read-only): what to tell a caller.
    /// Such a failure is the operator's to fix, and nothing was stored.
    pub fn disk_refused(&self) -> Option<&'static str> {
        let io = match self {
            Error::Io(sled::Error::Io(e))
            | Error::Open {
                source: sled::Error::Io(e),
                ..
            }
            | Error::Disk(e) => e,
            _ => return None,
        };
        match io.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Some("the disk of the store is full")
            }
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                Some("the store's disk is read-only")
            }
            _ => None,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A set of writes applied atomically to one tree.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

// === impl Batch ===

impl Batch {
    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) {
        self.ops.push((key.to_vec(), Some(value.to_vec())));
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &[u8]) {
        self.ops.push((key.to_vec(), None));
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The writes, in order: `(key, Some(value))` sets, `(key, None)` removes. For other
    /// implementations of [`Tree`].
    pub fn into_ops(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.ops
    }
}

/// A key-value pair read from a tree.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered map of byte keys to byte values.
pub trait Tree: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Applies every write of `batch` atomically.
    fn apply(&self, batch: Batch) -> Result<()>;
    /// Sets `key` to `new` only if its current value is `expected`; [`Error::Conflict`] otherwise.
    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()>;
    /// Applies every write of `batch` atomically if `guard` has no value, else writes nothing
    /// and returns [`Error::Conflict`]. The check and the writes are one atomic step: two
    /// concurrent calls with the same guard never both succeed.
    fn apply_if_absent(&self, guard: &[u8], batch: Batch) -> Result<()>;
    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>>;
    /// Entries whose key starts with `prefix` and sorts after `after`, at most `limit`.
    fn scan_page(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>>;
    /// Entries whose key starts with `prefix` and sorts before `before` (every one when None),
    /// the last first, at most `limit`. The default reads the whole prefix; engines that can
    /// walk backwards read only what they return.
    fn scan_page_rev(
        &self,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let mut all = self.scan_prefix(prefix)?;
        all.retain(|(k, _)| before.is_none_or(|b| k.as_slice() < b));
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }
    /// Makes every earlier write durable. Blocks for a disk flush: async code calls
    /// [`durable`]. Concurrent callers may share one flush (group commit).
    fn flush(&self) -> Result<()>;
    /// Applies `write` and makes it durable, then calls `done` with the outcome, maybe on
    /// another thread. The default does both on the caller's thread (it blocks); an engine
    /// that [queues writes](Tree::queues_writes) answers from its writer instead, many writes
    /// to one commit.
    fn write_then(&self, write: Write, done: Box<dyn FnOnce(Result<()>) + Send>) {
        let r = match write {
            Write::Apply(b) => self.apply(b),
            Write::ApplyIfAbsent { guard, batch } => self.apply_if_absent(&guard, batch),
        };
        done(r.and_then(|()| self.flush()));
    }
    /// [`Tree::write_then`] for a write whose caller can wait a little: an engine that queues
    /// writes may hold its commit up to [`GROUP_WAIT`] for other writes to share it (while
    /// every write queued with it can wait too). The default is [`Tree::write_then`].
    fn write_then_grouped(&self, write: Write, done: Box<dyn FnOnce(Result<()>) + Send>) {
        self.write_then(write, done);
    }
    /// True when [`Tree::write_then`] only queues the write (it never blocks the caller).
    fn queues_writes(&self) -> bool {
        false
    }
}

/// A write for [`Tree::write_then`] and [`write_durably`].
#[derive(Debug)]
pub enum Write {
    /// [`Tree::apply`].
    Apply(Batch),
    /// [`Tree::apply_if_absent`].
    ApplyIfAbsent {
        /// The key that must have no value.
        guard: Vec<u8>,
        /// The writes.
        batch: Batch,
    },
}

/// [`Tree::flush`] for async code: every write made so far durable, without blocking the
/// runtime's threads.
pub async fn durable(tree: Arc<dyn Tree>) -> Result<()> {
    write_durably(tree, Write::Apply(Batch::default())).await
}

/// `write` to `tree`, durable when this returns, for async code. An engine that queues writes
/// commits it with the others waiting (one transaction and one sync for all of them, each
/// caller answered once its own write is on disk); otherwise the write and its flush run on a
/// blocking thread, since both may wait for the disk.
pub async fn write_durably(tree: Arc<dyn Tree>, write: Write) -> Result<()> {
    write_durably_as(tree, write, false).await
}

/// At most this long a write made with [`write_durably_grouped`] waits for others to share its
/// commit.
pub const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

/// [`write_durably`] for a caller that can wait a little (a background job's step, not a
/// client's call): an engine that queues writes may hold the commit up to [`GROUP_WAIT`] for
/// other writes to share it, so that a busy job's writes pay for fewer commits (one sync and
/// one rewrite of the tree's upper pages each). Durable when this returns, as ever.
pub async fn write_durably_grouped(tree: Arc<dyn Tree>, write: Write) -> Result<()> {
    write_durably_as(tree, write, true).await
}

async fn write_durably_as(tree: Arc<dyn Tree>, write: Write, grouped: bool) -> Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let done: Box<dyn FnOnce(Result<()>) + Send> = Box::new(move |r| {
        let _ = tx.send(r);
    });
    if tree.queues_writes() {
        if grouped {
            tree.write_then_grouped(write, done);
        } else {
            tree.write_then(write, done);
        }
    } else {
        tokio::task::spawn_blocking(move || tree.write_then(write, done));
    }
    rx.await
        .unwrap_or_else(|_| Err(Error::Engine("the store's writer stopped".into())))
}

/// A store of named trees.
pub trait Store: Send + Sync {
    /// Opens (creating if needed) the tree called `name`.
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>>;
    /// Bytes the store occupies on disk.
    fn size_on_disk(&self) -> Result<u64>;
}

/// Group commit: one flush makes the writes of every caller waiting for it durable.
///
/// A caller waits for the first flush that *starts* after it asked (a flush already running
/// may have begun before its write), so every caller is answered only once its own write is
/// on disk, and however many callers ask at once, at most one flush runs and one more is
/// queued behind it.
struct GroupFlush<D> {
    state: std::sync::Mutex<FlushState>,
    done: std::sync::Condvar,
    sync: fn(&D) -> Result<()>,
}

impl<D> std::fmt::Debug for GroupFlush<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupFlush").finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct FlushState {
    /// Flushes started so far (the running one included).
    started: u64,
    /// Flushes finished so far.
    finished: u64,
    /// Whether a flush is running.
    running: bool,
    /// The last finished flush's failure: the disk's error kind, if it was one, and the
    /// message.
    failed: Option<(Option<std::io::ErrorKind>, String)>,
}

// === impl GroupFlush ===

impl<D> GroupFlush<D> {
    fn new(sync: fn(&D) -> Result<()>) -> Self {
        Self {
            state: std::sync::Mutex::default(),
            done: std::sync::Condvar::new(),
            sync,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FlushState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn flush(&self, db: &D) -> Result<()> {
        let mut st = self.lock();
        let target = st.started + 1;
        loop {
            if st.finished >= target {
                // A later flush than the one asked for also covers the write; its failure is
                // reported (conservatively) even if the one asked for succeeded.
                return match &st.failed {
                    None => Ok(()),
                    Some((Some(kind), m)) => {
                        Err(Error::Disk(std::io::Error::new(*kind, m.clone())))
                    }
                    Some((None, m)) => Err(Error::Engine(m.clone())),
                };
            }
            if st.running {
                st = self
                    .done
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            st.running = true;
            st.started += 1;
            let mine = st.started;
            drop(st);
            let r = (self.sync)(db);
            st = self.lock();
            st.running = false;
            st.finished = mine;
            st.failed = r.err().map(|e| {
                let kind = match &e {
                    Error::Io(sled::Error::Io(io)) | Error::Disk(io) => Some(io.kind()),
                    _ => None,
                };
                (kind, e.to_string())
            });
            self.done.notify_all();
        }
    }
}

/// A [`Store`] on sled.
#[derive(Clone, Debug)]
///
/// # Example
///
/// ```
/// use fpr_store::{Batch, SledStore, Store as _};
/// let dir = tempfile::tempdir()?;
/// let store = SledStore::open(dir.path())?;
/// let tree = store.tree("example")?;
/// let mut batch = Batch::default();
/// batch.insert(b"a", b"1");
/// tree.apply(batch)?;
/// tree.flush()?;
/// assert_eq!(tree.get(b"a")?.as_deref(), Some(&b"1"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SledStore {
    db: sled::Db,
    group: Arc<GroupFlush<sled::Db>>,
}

fn sled_sync(db: &sled::Db) -> Result<()> {
    db.flush().map(|_| ()).map_err(Error::Io)
}

// === impl SledStore ===

impl SledStore {
    /// Opens (creating if needed) a store in directory `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|source| Error::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            db,
            group: Arc::new(GroupFlush::new(sled_sync)),
        })
    }
}

impl Store for SledStore {
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        let t = self.db.open_tree(name).map_err(Error::Io)?;
        Ok(Arc::new(SledTree {
            tree: t,
            db: self.db.clone(),
            group: self.group.clone(),
        }))
    }

    fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(Error::Io)
    }
}

struct SledTree {
    tree: sled::Tree,
    db: sled::Db,
    group: Arc<GroupFlush<sled::Db>>,
}

impl Tree for SledTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree.get(key).map_err(Error::Io)?.map(|v| v.to_vec()))
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.tree.apply_batch(b).map_err(Error::Io)
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        match self
            .tree
            .compare_and_swap(key, expected, new)
            .map_err(Error::Io)?
        {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::Conflict),
        }
    }

    fn apply_if_absent(&self, guard: &[u8], batch: Batch) -> Result<()> {
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        let r = self.tree.transaction(|tx| {
            if tx.get(guard)?.is_some() {
                return Err(ConflictableTransactionError::Abort(()));
            }
            for (k, v) in &batch.ops {
                match v {
                    Some(v) => tx.insert(k.as_slice(), v.as_slice())?,
                    None => tx.remove(k.as_slice())?,
                };
            }
            Ok(())
        });
        match r {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(())) => Err(Error::Conflict),
            Err(TransactionError::Storage(e)) => Err(Error::Io(e)),
        }
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>> {
        self.tree
            .scan_prefix(prefix)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Error::Io))
            .collect()
    }

    fn scan_page(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Result<Vec<Entry>> {
        let iter = match after {
            Some(a) => {
                let mut start = a.to_vec();
                start.push(0);
                self.tree.range(start..)
            }
            None => self.tree.range(prefix.to_vec()..),
        };
        let mut out = Vec::new();
        for r in iter {
            let (k, v) = r.map_err(Error::Io)?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn flush(&self) -> Result<()> {
        self.group.flush(&self.db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes, conditional writes and scans on `store`, flushed at the end.
    pub(crate) fn exercise(store: &dyn Store) {
        let t = store.tree("t").unwrap();
        let mut b = Batch::default();
        for i in 0..10u8 {
            b.insert(&[b'k', i], &[i]);
        }
        b.insert(b"other", b"x");
        t.apply(b).unwrap();
        t.compare_and_swap(&[b'k', 0], Some(&[0]), Some(&[9]))
            .unwrap();
        assert!(matches!(
            t.compare_and_swap(&[b'k', 0], Some(&[0]), None),
            Err(Error::Conflict)
        ));
        assert_eq!(t.scan_prefix(b"k").unwrap().len(), 10);
        let mut b = Batch::default();
        b.insert(b"g", b"1");
        b.insert(b"h", b"1");
        t.apply_if_absent(b"g", b).unwrap();
        let mut b = Batch::default();
        b.insert(b"g", b"2");
        b.insert(b"i", b"2");
        assert!(matches!(t.apply_if_absent(b"g", b), Err(Error::Conflict)));
        assert_eq!(t.get(b"g").unwrap(), Some(b"1".to_vec()));
        assert_eq!(t.get(b"i").unwrap(), None);
        let page = t.scan_page(b"k", None, 4).unwrap();
        assert_eq!(page.len(), 4);
        let next = t.scan_page(b"k", Some(&page[3].0), 100).unwrap();
        assert_eq!(next.len(), 6);
        assert_eq!(next[0].0, vec![b'k', 4]);
        // Many threads flushing at once are each answered (group commit).
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let t = t.clone();
                s.spawn(move || {
                    let mut b = Batch::default();
                    b.insert(&[b'z', i], &[i]);
                    t.apply(b).unwrap();
                    t.flush().unwrap();
                });
            }
        });
        t.flush().unwrap();
    }

    /// What [`exercise`] left, after a reopen.
    pub(crate) fn check_reopened(store: &dyn Store) {
        let t = store.tree("t").unwrap();
        assert_eq!(t.get(&[b'k', 0]).unwrap(), Some(vec![9]));
        assert_eq!(t.scan_prefix(b"z").unwrap().len(), 8);
        assert!(store.size_on_disk().unwrap() > 0);
    }

    #[test]
    fn batch_cas_scan_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            exercise(&store);
        }
        // sled's background threads let go of the file lock shortly after the last handle is
        // dropped, later on a loaded machine: give the reopen a few seconds.
        let mut tries = 0;
        let store = loop {
            match SledStore::open(dir.path()) {
                Ok(s) => break s,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("reopen: {e}; trying again");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => panic!("{e}"),
            }
        };
        check_reopened(&store);
    }
}
