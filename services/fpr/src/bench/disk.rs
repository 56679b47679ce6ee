//! The disk: how long this filesystem takes to make a small write durable, timed in the same
//! run as the bench. Every CreateShipment waits for the sync of the store's commit that holds
//! its write, and a slow sync holds up every call in flight, so CreateShipment's tail reads
//! against this one as `e2e_s` reads against `floor_s`.

use std::io::Write as _;
use std::os::unix::fs::FileExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// A store commit's size, about: a few records' pages.
const WRITE: usize = 12 << 10;
/// The file the writes go round in.
const SPAN: u64 = 1 << 20;

/// `n` writes of 12 KiB, each made durable (`sync_data`, fdatasync on Linux) before the next,
/// in a scratch file in `dir` (removed after); returns how long each sync took, sorted.
pub fn sync_latency(dir: &Path, n: usize) -> std::io::Result<Vec<Duration>> {
    let scratch = tempfile::NamedTempFile::new_in(dir)?;
    let file = scratch.as_file();
    // Laid out and durable first, so that the timed syncs change data and not the file's size.
    (&*file).write_all(&vec![0u8; SPAN as usize])?;
    file.sync_all()?;
    let block = vec![0x5au8; WRITE];
    let mut took = Vec::with_capacity(n);
    for i in 0..n as u64 {
        file.write_all_at(&block, (i * WRITE as u64) % (SPAN - WRITE as u64))?;
        let start = Instant::now();
        file.sync_data()?;
        took.push(start.elapsed());
    }
    took.sort();
    Ok(took)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_each_sync_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let took = super::sync_latency(dir.path(), 20).unwrap();
        assert_eq!(took.len(), 20);
        assert!(took.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
