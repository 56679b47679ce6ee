//! A [`Store`] on redb: one file, one table per tree, and group commit.
//!
//! Each write ([`Tree::apply`] and the conditional ones) is a redb write transaction committed
//! without a sync: visible at once, durable with the next flush. [`Tree::flush`] commits an
//! empty transaction with [`Durability::Immediate`], which makes every earlier commit durable;
//! concurrent flushes share one ([`GroupFlush`]). A crash loses only writes no flush has
//! answered, and redb's commit protocol never leaves a torn one behind.
//!
//! Durable writes from async code ([`Tree::write_then`]) go to the store's writer thread
//! instead: it takes every write waiting, applies them in order in one transaction, commits it
//! with a sync, and only then answers each. One transaction and one sync for a group, instead
//! of a transaction, a thread hand-off and a share of a sync for each write. A group made only
//! of writes whose callers can wait ([`crate::write_durably_grouped`]: a background job's
//! steps) waits up to [`crate::GROUP_WAIT`] for more, up to [`GROUP_ENOUGH`]; a write that
//! cannot wait (a client's call) ends the wait. Each commit rewrites the tree's upper pages
//! and the file's own, so fewer, larger groups write and sync less for the same records.
//!
//! redb reuses a page once no reader needs its old version, unlike sled's log, which keeps
//! every rewritten version until its segments are cleaned (the orchestrator rewrites a record
//! at each step). Its file still grows in regions that later writes leave partly free (after
//! a burst of large groups, two thirds of it); redb never hands them back by itself. So the
//! writer, once no write has come for [`COMPACT_AFTER_IDLE`], compacts the file when more of
//! it is free than live. Compaction holds the database to itself (reads wait for it): tens of
//! milliseconds for ten thousand shipments.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Durability, ReadableDatabase as _, ReadableTable as _, TableDefinition};

use crate::{Batch, Entry, Error, GroupFlush, Result, Store, Tree, Write};

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
    writer: Arc<Writer>,
}

/// A write queued for the writer thread: the table, the write, and whom to answer.
struct Job {
    table: String,
    write: Write,
    done: Box<dyn FnOnce(Result<()>) + Send>,
    /// Whether its caller can wait up to [`crate::GROUP_WAIT`] for company.
    patient: bool,
}

/// A group of patient writes stops waiting for company once it holds this many.
const GROUP_ENOUGH: usize = 32;

/// Writes at most this many queued writes in one transaction.
const MAX_GROUP: usize = 512;

/// After this long without a queued write, the writer compacts the file if it is mostly free
/// pages (see [`Shared::compact_if_fragmented`]).
pub const COMPACT_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// The writer thread and its queue. Dropping the last handle closes the queue and waits for
/// the thread, so that the database is closed when the store is.
struct Writer {
    queue: Option<std::sync::mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(db: Arc<Shared>) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("fpr-store-writer".into())
            .spawn(move || {
                // Whether anything was written since the file was last found compact.
                let mut written = false;
                loop {
                    let first = match rx.recv_timeout(COMPACT_AFTER_IDLE) {
                        Ok(j) => j,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            if written {
                                written = !db.compact_if_fragmented();
                            }
                            continue;
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    // A group of patient writes only waits a little for more; a write that
                    // cannot wait ends the wait.
                    let until = std::time::Instant::now() + crate::GROUP_WAIT;
                    while jobs.len() < GROUP_ENOUGH && jobs.iter().all(|j| j.patient) {
                        let left = until.saturating_duration_since(std::time::Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(j) if !left.is_zero() => jobs.push(j),
                            Ok(j) => {
                                jobs.push(j);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    commit_group(&db, jobs);
                    written = true;
                }
            })
            .map_err(Error::Disk)?;
        Ok(Self {
            queue: Some(tx),
            thread: Some(thread),
        })
    }

    fn send(&self, job: Job) {
        let refused = match &self.queue {
            Some(q) => q.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = refused {
            (job.done)(Err(Error::Engine("the store's writer stopped".into())));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Applies `jobs` in order in one transaction and commits it with a sync; then answers each:
/// its own outcome ([`Error::Conflict`] for a guard found set, which writes nothing of that
/// job) once the commit is durable, or the commit's failure.
fn commit_group(s: &Shared, jobs: Vec<Job>) {
    let mut outcomes: Vec<Result<()>> = Vec::with_capacity(jobs.len());
    let committed = (|| {
        let mut tx = s.db().begin_write().map_err(|e| s.err(e))?;
        tx.set_durability(Durability::Immediate)
            .map_err(|e| s.err(e))?;
        for job in &jobs {
            let mut t = tx
                .open_table(Table::new(&job.table))
                .map_err(|e| s.err(e))?;
            let outcome = match &job.write {
                Write::Apply(b) => put_ops(s, &mut t, b),
                Write::ApplyIfAbsent { guard, batch } => {
                    if t.get(guard.as_slice()).map_err(|e| s.err(e))?.is_some() {
                        Err(Error::Conflict)
                    } else {
                        put_ops(s, &mut t, batch)
                    }
                }
            };
            match outcome {
                Err(Error::Conflict) => outcomes.push(Err(Error::Conflict)),
                // A failed insert leaves the transaction unusable: the whole group fails.
                Err(e) => return Err(e),
                Ok(()) => outcomes.push(Ok(())),
            }
        }
        s.groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tx.commit().map_err(|e| s.err(e))
    })();
    match committed {
        Ok(()) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                (job.done)(outcome);
            }
        }
        Err(e) => {
            let message = e.to_string();
            let kind = match &e {
                Error::Disk(io) => Some(io.kind()),
                _ => None,
            };
            for job in jobs {
                let e = match kind {
                    Some(k) => Error::Disk(std::io::Error::new(k, message.clone())),
                    None => Error::Engine(message.clone()),
                };
                (job.done)(Err(e));
            }
        }
    }
}

/// The database, and the kind of the last I/O error it met: after one, redb refuses every
/// further write until it is reopened, and callers are told the disk's reason, not redb's.
struct Shared {
    /// Read-locked to begin any transaction (the guard goes at once; the transaction lives
    /// on), write-locked by compaction, which needs the database to itself.
    db: std::sync::RwLock<redb::Database>,
    last_io: std::sync::Mutex<Option<std::io::ErrorKind>>,
    /// Groups the writer has committed.
    groups: std::sync::atomic::AtomicU64,
}

// === impl Shared ===

impl Shared {
    fn db(&self) -> std::sync::RwLockReadGuard<'_, redb::Database> {
        self.db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Compacts the file when more of it is free pages than live data (and at least 1 MiB is
    /// free), so that the file shrinks back towards its live data. False when it could not
    /// now (a read transaction was open): the writer tries again at its next idle moment.
    fn compact_if_fragmented(&self) -> bool {
        let fragmented = {
            let Ok(tx) = self.db().begin_write() else {
                return false;
            };
            let stats = tx.stats();
            let _ = tx.abort();
            match stats {
                Ok(st) => {
                    let live = st.stored_bytes() + st.metadata_bytes();
                    st.fragmented_bytes() >= (1 << 20) && st.fragmented_bytes() > live
                }
                Err(_) => false,
            }
        };
        if !fragmented {
            return true;
        }
        let mut db = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        db.compact().is_ok()
    }

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
    let mut tx = s.db().begin_write().map_err(|e| s.err(e))?;
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
        let db = Arc::new(Shared {
            db: std::sync::RwLock::new(db),
            last_io: std::sync::Mutex::new(None),
            groups: std::sync::atomic::AtomicU64::new(0),
        });
        Ok(Self {
            writer: Arc::new(Writer::start(db.clone())?),
            db,
            path: path.to_owned(),
            group: Arc::new(GroupFlush::new(sync)),
        })
    }
}

impl Store for RedbStore {
    fn tree(&self, name: &str) -> Result<Arc<dyn Tree>> {
        // Create the table, durably, so that reads never find it missing.
        let s = &self.db;
        let tx = s.db().begin_write().map_err(|e| s.err(e))?;
        tx.open_table(Table::new(name)).map_err(|e| s.err(e))?;
        tx.commit().map_err(|e| s.err(e))?;
        Ok(Arc::new(RedbTree {
            db: self.db.clone(),
            name: name.to_owned(),
            group: self.group.clone(),
            writer: self.writer.clone(),
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
    writer: Arc<Writer>,
}

// === impl RedbTree ===

impl RedbTree {
    fn def(&self) -> Table<'_> {
        Table::new(&self.name)
    }

    /// Runs `f` in a write transaction committed without a sync (see the module docs); `f`'s
    /// error aborts it.
    fn write<T>(&self, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Result<T>) -> Result<T> {
        let mut tx = self.db.db().begin_write().map_err(|e| self.db.err(e))?;
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
        let tx = self.db.db().begin_read().map_err(|e| self.db.err(e))?;
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

/// The smallest key greater than every key that starts with `prefix`; None when there is
/// none (the prefix is empty or all 0xFF).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn put_ops(s: &Shared, t: &mut redb::Table<&[u8], &[u8]>, batch: &Batch) -> Result<()> {
    for (k, v) in &batch.ops {
        match v {
            Some(v) => t.insert(k.as_slice(), v.as_slice()).map_err(|e| s.err(e))?,
            None => t.remove(k.as_slice()).map_err(|e| s.err(e))?,
        };
    }
    Ok(())
}

impl Tree for RedbTree {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let tx = self.db.db().begin_read().map_err(|e| self.db.err(e))?;
        let t = tx.open_table(self.def()).map_err(|e| self.db.err(e))?;
        Ok(t.get(key)
            .map_err(|e| self.db.err(e))?
            .map(|v| v.value().to_vec()))
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        self.write(|t| put_ops(&self.db, t, &batch))
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
            put_ops(&self.db, t, &batch)
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

    fn scan_page_rev(
        &self,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let tx = self.db.db().begin_read().map_err(|e| self.db.err(e))?;
        let t = tx.open_table(self.def()).map_err(|e| self.db.err(e))?;
        let mut out = Vec::new();
        // The first key after every key with the prefix, if there is one (else: to the end).
        let past = prefix_end(prefix);
        let end = match (before, past.as_deref()) {
            (Some(b), Some(p)) => Some(b.min(p)),
            (Some(b), None) => Some(b),
            (None, p) => p,
        };
        if end.is_some_and(|e| e <= prefix) {
            return Ok(out);
        }
        let range = match end {
            Some(e) => t.range(prefix..e),
            None => t.range(prefix..),
        }
        .map_err(|e| self.db.err(e))?;
        for r in range.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = r.map_err(|e| self.db.err(e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn flush(&self) -> Result<()> {
        self.group.flush(&self.db)
    }

    fn write_then(&self, write: Write, done: Box<dyn FnOnce(Result<()>) + Send>) {
        self.writer.send(Job {
            table: self.name.clone(),
            write,
            done,
            patient: false,
        });
    }

    fn write_then_grouped(&self, write: Write, done: Box<dyn FnOnce(Result<()>) + Send>) {
        self.writer.send(Job {
            table: self.name.clone(),
            write,
            done,
            patient: true,
        });
    }

    fn queues_writes(&self) -> bool {
        true
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

    #[test]
    fn reverse_pages_read_only_their_prefix_last_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb"), RedbOptions::default()).unwrap();
        let t = store.tree("t").unwrap();
        let mut b = Batch::default();
        for k in ["a/9", "due/1", "due/2", "due/3", "due0", "e/1"] {
            b.insert(k.as_bytes(), k.as_bytes());
        }
        t.apply(b).unwrap();
        let keys = |v: Vec<Entry>| -> Vec<String> {
            v.into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect()
        };
        assert_eq!(
            keys(t.scan_page_rev(b"due/", None, 10).unwrap()),
            ["due/3", "due/2", "due/1"]
        );
        assert_eq!(
            keys(t.scan_page_rev(b"due/", Some(b"due/3"), 1).unwrap()),
            ["due/2"]
        );
        assert!(t.scan_page_rev(b"due/", Some(b"a"), 5).unwrap().is_empty());
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        // The trait's default (engines without a backward walk) agrees.
        let sled = crate::SledStore::open(&dir.path().join("sled")).unwrap();
        let s = sled.tree("t").unwrap();
        let mut b = Batch::default();
        for k in ["a/9", "due/1", "due/2", "due/3", "due0"] {
            b.insert(k.as_bytes(), k.as_bytes());
        }
        s.apply(b).unwrap();
        assert_eq!(
            keys(s.scan_page_rev(b"due/", Some(b"due/3"), 5).unwrap()),
            ["due/2", "due/1"]
        );
    }

    /// A file left mostly free by rewrites is compacted once the writer has been idle: it
    /// shrinks, and every entry reads back, then and after a reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_writer_compacts_a_fragmented_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let value = |i: usize, round: usize| format!("{round}:{i}:{}", "x".repeat(700));
        let peak;
        {
            let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
            let tree = store.tree("t").unwrap();
            // Big groups of rewrites, as a burst of processing makes them.
            for round in 0..6 {
                let writes: Vec<_> = (0..3000)
                    .map(|i| {
                        let mut b = Batch::default();
                        b.insert(format!("k/{i:05}").as_bytes(), value(i, round).as_bytes());
                        tokio::spawn(crate::write_durably(tree.clone(), Write::Apply(b)))
                    })
                    .collect();
                for w in writes {
                    w.await.unwrap().unwrap();
                }
            }
            peak = store.size_on_disk().unwrap();
            tokio::time::sleep(COMPACT_AFTER_IDLE * 2 + std::time::Duration::from_millis(500))
                .await;
            let after = store.size_on_disk().unwrap();
            assert!(after < peak, "{after} bytes after, {peak} before");
            let all = tree.scan_prefix(b"k/").unwrap();
            assert_eq!(all.len(), 3000);
            assert!(
                all.iter()
                    .enumerate()
                    .all(|(i, (_, v))| *v == value(i, 5).into_bytes())
            );
        }
        let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
        let tree = store.tree("t").unwrap();
        assert_eq!(tree.scan_prefix(b"k/").unwrap().len(), 3000);
        assert!(store.size_on_disk().unwrap() < peak);
    }

    /// `n` durable writes made at once, each from its own task: write `i` sets `k<i>`, and
    /// `shape` makes it the write to send and whether it may wait for company.
    fn spawn_writes(
        t: &Arc<dyn Tree>,
        n: u32,
        shape: fn(u32, Batch) -> (Write, bool),
    ) -> Vec<tokio::task::JoinHandle<Result<()>>> {
        (0..n)
            .map(|i| {
                let t = t.clone();
                tokio::spawn(async move {
                    let mut b = Batch::default();
                    b.insert(format!("k{i:03}").as_bytes(), &i.to_be_bytes());
                    match shape(i, b) {
                        (w, true) => crate::write_durably_grouped(t, w).await,
                        (w, false) => crate::write_durably(t, w).await,
                    }
                })
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writes_commit_together_keep_their_guards_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
            let t = store.tree("t").unwrap();
            assert!(t.queues_writes());
            let calls = spawn_writes(&t, 200, |i, mut b| {
                // Every other call races for one guard: exactly one of them wins.
                let w = if i % 2 == 0 {
                    b.insert(b"guard", &i.to_be_bytes());
                    Write::ApplyIfAbsent {
                        guard: b"guard".to_vec(),
                        batch: b,
                    }
                } else {
                    Write::Apply(b)
                };
                (w, false)
            });
            let mut conflicts = 0;
            for c in calls {
                match c.await.unwrap() {
                    Ok(()) => {}
                    Err(Error::Conflict) => conflicts += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(conflicts, 99);
            crate::durable(t).await.unwrap();
        }
        // The writer thread is gone with the store: the file opens again at once.
        let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
        let t = store.tree("t").unwrap();
        let keys = t.scan_prefix(b"k").unwrap();
        // The odd calls and the one even call that won.
        assert_eq!(keys.len(), 101);
        let winner = u32::from_be_bytes(t.get(b"guard").unwrap().unwrap().try_into().unwrap());
        assert!(t.get(format!("k{winner:03}").as_bytes()).unwrap().is_some());
    }

    /// Writes that can wait share commits: 64 made at once take a few groups, not one each,
    /// and every one is durable when answered; one that cannot wait, made among them, is
    /// answered with them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn patient_writes_wait_for_company_and_are_durable_when_answered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
            let t = store.tree("t").unwrap();
            let before = store.db.groups.load(std::sync::atomic::Ordering::Relaxed);
            let calls = spawn_writes(&t, 64, |i, b| (Write::Apply(b), i != 40));
            for c in calls {
                c.await.unwrap().unwrap();
            }
            let groups = store.db.groups.load(std::sync::atomic::Ordering::Relaxed) - before;
            assert!(groups <= 16, "{groups} commits for 64 patient writes");
        }
        let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
        assert_eq!(
            store.tree("t").unwrap().scan_prefix(b"k").unwrap().len(),
            64
        );
    }
}
