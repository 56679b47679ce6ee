//! Taking over a sled store an earlier fpr kept in a directory that now holds a redb file.

use std::path::Path;
use std::sync::Arc;

use crate::{Batch, Error, Result, SledStore, Store as _, Tree};

/// Where a taken-over sled store's files are moved, under its directory.
pub const SLED_MOVED: &str = "sled-before-redb";

/// The files of a sled store.
const SLED_FILES: &[&str] = &["conf", "db", "blobs", "snap"];

/// What [`take_over_sled`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeOver {
    /// `dir` holds no sled store.
    Nothing,
    /// The sled tree's entries (this many) were copied in and its files moved aside.
    Copied(usize),
    /// An earlier run had copied them; only the files were left to move.
    Moved,
}

/// Copies every entry of tree `name` of the sled store in `dir` (if there is one) into
/// `into`, durably, then moves the sled files into `dir/sled-before-redb` for the operator
/// to delete. A crash at any point resumes: the copy is one atomic batch, marked done (key
/// `meta/migrated_from_sled` of `into`) in the same batch.
pub fn take_over_sled(dir: &Path, name: &str, into: &Arc<dyn Tree>) -> Result<TakeOver> {
    const DONE: &[u8] = b"meta/migrated_from_sled";
    if !(dir.join("conf").is_file() && dir.join("db").is_file()) {
        return Ok(TakeOver::Nothing);
    }
    let mut outcome = TakeOver::Moved;
    if into.get(DONE)?.is_none() {
        let old = SledStore::open(dir)?;
        let entries = old.tree(name)?.scan_prefix(b"")?;
        outcome = TakeOver::Copied(entries.len());
        let mut b = Batch::default();
        for (k, v) in entries {
            b.insert(&k, &v);
        }
        b.insert(DONE, b"1");
        into.apply(b)?;
        into.flush()?;
    }
    let moved = dir.join(SLED_MOVED);
    std::fs::create_dir_all(&moved).map_err(Error::Disk)?;
    for entry in std::fs::read_dir(dir).map_err(Error::Disk)? {
        let entry = entry.map_err(Error::Disk)?;
        let file = entry.file_name().to_string_lossy().into_owned();
        if SLED_FILES
            .iter()
            .any(|f| file == *f || file.starts_with("snap."))
        {
            std::fs::rename(entry.path(), moved.join(&file)).map_err(Error::Disk)?;
        }
    }
    Ok(outcome)
}
