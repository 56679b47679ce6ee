//! The vault's audit log: one JSON line per operation, appended and flushed to disk before the
//! operation answers. Each line carries `prev`, the SHA-256 (hex) of the line before it (64
//! zeros for the first), so a line removed, changed or reordered breaks the chain at that
//! point; [`verify`] finds the first break. Lines hold ids, key ids, outcomes and receipt ids,
//! never a PIN, a key or a token.
//!
//! A line: `{"seq":1,"time":"2026-12-02T10:00:00Z","caller":"uid:1000","op":"DeliverPin",
//! "shipment_ref":"…","kids":{"signing":"…"},"outcome":"ok","detail":"…","receipt_id":"…",
//! "prev":"…"}`.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event before it is chained.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// Who called: `uid:<n>` or `cert:<sha256>`.
    pub caller: String,
    /// The RPC or operation, e.g. `DeliverPin`.
    pub op: &'static str,
    /// The shipment, when the operation has one.
    pub shipment_ref: String,
    /// Key ids involved (`request`, `transport`, `signing`).
    pub kids: Vec<(&'static str, String)>,
    /// `ok`, or `refused:<reason>`, or `failed:<reason>`.
    pub outcome: String,
    /// Extra public facts (recipient count, a rebind's reason, a refusal's check).
    pub detail: String,
    /// The delivery's message id, when a PIN was sent.
    pub receipt_id: String,
}

/// A chained line as written.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    seq: u64,
    time: String,
    caller: String,
    op: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    shipment_ref: String,
    #[serde(skip_serializing_if = "Map::is_empty", default)]
    kids: Map<String, Value>,
    outcome: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    detail: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    receipt_id: String,
    prev: String,
}

struct Tail {
    file: std::fs::File,
    seq: u64,
    prev: String,
}

/// The open log.
pub struct AuditLog {
    path: PathBuf,
    tail: Mutex<Tail>,
    /// The same file, for syncing outside the tail's lock.
    sync_file: std::fs::File,
    /// The last line's sequence number written (not yet synced, maybe).
    written: std::sync::atomic::AtomicU64,
    synced: Mutex<Synced>,
    synced_now: std::sync::Condvar,
}

/// Group sync: the lines on disk, and whether a sync is running. One `sync_data` makes every
/// line written before it durable, so callers that wrote while a sync ran share the next one.
#[derive(Debug, Default)]
struct Synced {
    upto: u64,
    running: bool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn hex_sha256(b: &[u8]) -> String {
    fpr_jose::util::sha256(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

// === impl AuditLog ===

impl AuditLog {
    /// Opens (or creates, mode 0600) the log at `path` and continues its chain from the last
    /// line. A last line that is not a chained entry (a torn write) is refused: the operator
    /// runs `fpr vault audit verify` and moves the file aside.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        }
        let mut seq = 0;
        let mut prev = GENESIS.to_owned();
        if path.exists() {
            let f = std::fs::File::open(path).map_err(io(format!("open {}", path.display())))?;
            let mut last: Option<String> = None;
            for line in std::io::BufReader::new(f).lines() {
                let line = line.map_err(io(format!("read {}", path.display())))?;
                if !line.is_empty() {
                    last = Some(line);
                }
            }
            if let Some(last) = last {
                let parsed: Line = serde_json::from_str(&last).map_err(|_| Error::Config {
                    key: "audit.path".into(),
                    reason: format!(
                        "{}: the last line is not an audit entry (run `fpr vault audit verify`)",
                        path.display()
                    ),
                })?;
                seq = parsed.seq;
                prev = hex_sha256(last.as_bytes());
            }
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let file = opts
            .open(path)
            .map_err(io(format!("open {}", path.display())))?;
        let sync_file = file
            .try_clone()
            .map_err(io(format!("open {}", path.display())))?;
        Ok(Self {
            path: path.to_owned(),
            tail: Mutex::new(Tail { file, seq, prev }),
            sync_file,
            written: std::sync::atomic::AtomicU64::new(seq),
            synced: Mutex::new(Synced {
                upto: seq,
                running: false,
            }),
            synced_now: std::sync::Condvar::new(),
        })
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `e`, chained to the line before, and returns once it is on disk. The line is
    /// written under the log's lock (the chain's order), the sync outside it and shared with
    /// the calls that wrote meanwhile (group sync).
    pub fn record(&self, e: Event) -> Result<(), Error> {
        let failed = |e: std::io::Error| Error::Audit(format!("{}: {e}", self.path.display()));
        let seq = {
            let mut tail = self
                .tail
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let time = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let line = Line {
                seq: tail.seq + 1,
                time,
                caller: e.caller,
                op: e.op.to_owned(),
                shipment_ref: e.shipment_ref,
                kids: e
                    .kids
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.to_owned(), Value::String(v)))
                    .collect(),
                outcome: e.outcome,
                detail: e.detail,
                receipt_id: e.receipt_id,
                prev: tail.prev.clone(),
            };
            let text = serde_json::to_string(&line).map_err(|e| Error::Audit(e.to_string()))?;
            tail.file
                .write_all(format!("{text}\n").as_bytes())
                .map_err(failed)?;
            tail.seq = line.seq;
            tail.prev = hex_sha256(text.as_bytes());
            self.written
                .store(line.seq, std::sync::atomic::Ordering::SeqCst);
            line.seq
        };
        self.sync_through(seq).map_err(failed)
    }

    /// Returns once line `seq` is on disk: covered by a sync that started after it was
    /// written, this caller's own or another's.
    fn sync_through(&self, seq: u64) -> std::io::Result<()> {
        let lock = || {
            self.synced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut st = lock();
        loop {
            if st.upto >= seq {
                return Ok(());
            }
            if st.running {
                st = self
                    .synced_now
                    .wait(st)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            st.running = true;
            let through = self.written.load(std::sync::atomic::Ordering::SeqCst);
            drop(st);
            let r = self.sync_file.sync_data();
            st = lock();
            st.running = false;
            if r.is_ok() {
                st.upto = st.upto.max(through);
            }
            self.synced_now.notify_all();
            // A failed sync is this caller's answer; the others waiting try their own.
            r?;
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every line chains to the one before; `lines` lines.
    Intact {
        /// How many lines.
        lines: u64,
    },
    /// The first line (1-based) that does not chain, and why.
    Broken {
        /// Line number in the file.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Checks the chain of the log at `path`.
pub fn verify(path: &Path) -> Result<Verdict, Error> {
    let f = std::fs::File::open(path).map_err(io(format!("open {}", path.display())))?;
    let mut prev = GENESIS.to_owned();
    let mut n = 0u64;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(io(format!("read {}", path.display())))?;
        n += 1;
        let broken = |reason: String| Ok(Verdict::Broken { line: n, reason });
        let Ok(parsed) = serde_json::from_str::<Line>(&line) else {
            return broken("not an audit entry".into());
        };
        if parsed.prev != prev {
            return broken("prev is not the hash of the line before".into());
        }
        if parsed.seq != n {
            return broken(format!("seq {} where {n} was expected", parsed.seq));
        }
        prev = hex_sha256(line.as_bytes());
    }
    Ok(Verdict::Intact { lines: n })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn event(op: &'static str) -> Event {
        Event {
            caller: "uid:1".into(),
            op,
            shipment_ref: "shp-1".into(),
            outcome: "ok".into(),
            ..Default::default()
        }
    }

    #[test]
    fn chain_continues_across_opens_and_breaks_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&p).unwrap();
        log.record(event("SealRequests")).unwrap();
        log.record(event("DeliverPin")).unwrap();
        drop(log);
        let log = AuditLog::open(&p).unwrap();
        log.record(event("PurgeShipment")).unwrap();
        assert_eq!(verify(&p).unwrap(), Verdict::Intact { lines: 3 });

        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // A changed line breaks the chain at the line after it.
        let edited = text.replace("\"DeliverPin\"", "\"GetStatus\"");
        std::fs::write(&p, edited).unwrap();
        assert!(matches!(
            verify(&p).unwrap(),
            Verdict::Broken { line: 3, .. }
        ));
        // A removed line breaks it where the gap is.
        std::fs::write(&p, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        assert!(matches!(
            verify(&p).unwrap(),
            Verdict::Broken { line: 2, .. }
        ));
        // Reordered lines.
        std::fs::write(&p, format!("{}\n{}\n{}\n", lines[1], lines[0], lines[2])).unwrap();
        assert!(matches!(
            verify(&p).unwrap(),
            Verdict::Broken { line: 1, .. }
        ));
    }

    #[test]
    fn concurrent_records_share_syncs_and_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let log = std::sync::Arc::new(AuditLog::open(&p).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        log.record(event("DeliverPin")).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let st = log.synced.lock().unwrap();
        assert_eq!((st.upto, st.running), (400, false));
        drop(st);
        assert_eq!(verify(&p).unwrap(), Verdict::Intact { lines: 400 });
    }
}
