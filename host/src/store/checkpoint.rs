//! Checkpoints of the embedded store: the changes its write-ahead log holds go into the redb
//! file, many AORs in one transaction, and the log segments they came from are deleted. They
//! run in a thread of their own (`sipreg-checkpoint`), so that the committer, which answers
//! REGISTERs, never waits for one; on start, `embedded::open` runs one itself before serving.

use super::wal;
use redb::{Database, TableDefinition};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// AOR -> its bindings (postcard).
pub const BINDINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("bindings");
/// What the file knows of the log: [`CHECKPOINTED`].
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The last log segment whose changes are all in the file.
pub const CHECKPOINTED: &str = "checkpointed";

/// Changes in the log that the file does not have yet: the latest value of each AOR they
/// touched (None: the AOR is gone).
pub type Dirty = HashMap<Box<str>, Option<Vec<u8>>>;

/// Writes `dirty`, the changes of the log up to segment `done`, into the file in one
/// transaction, then deletes those segments.
///
/// # Errors
/// The transaction failed (nothing was deleted), or a segment could not be deleted.
pub fn checkpoint(
    db: &Database,
    store: &Path,
    dirty: &Dirty,
    done: u64,
) -> Result<(), redb::Error> {
    if !dirty.is_empty() {
        let txn = db.begin_write()?;
        {
            let mut table = txn.open_table(BINDINGS)?;
            for (aor, value) in dirty {
                match value {
                    Some(v) => table.insert(&**aor, v.as_slice())?,
                    None => table.remove(&**aor)?,
                };
            }
            txn.open_table(META)?.insert(CHECKPOINTED, done)?;
        }
        txn.commit()?;
    }
    let mut removed = false;
    for (n, segment) in wal::segments(store)? {
        if n <= done {
            std::fs::remove_file(&segment)?;
            removed = true;
        }
    }
    if removed {
        wal::sync_folder(store)?;
    }
    Ok(())
}

/// The checkpoint thread, as the committer sees it.
#[derive(Debug)]
pub struct Checkpointer {
    jobs: Option<mpsc::Sender<(u64, Dirty)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    idle: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Starts the thread; it owns the file from now on.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(db: Database, store: PathBuf) -> std::io::Result<Checkpointer> {
        let (jobs, queue) = mpsc::channel();
        let idle = Arc::new(AtomicBool::new(true));
        let flag = idle.clone();
        let thread = std::thread::Builder::new()
            .name("sipreg-checkpoint".into())
            .spawn(move || run(&db, &store, &queue, &flag))?;
        Ok(Checkpointer {
            jobs: Some(jobs),
            thread: Some(thread),
            idle,
        })
    }

    /// Whether the last checkpoint handed over is done.
    pub fn idle(&self) -> bool {
        self.idle.load(Ordering::Acquire)
    }

    /// Hands over the changes of the log up to segment `done`.
    pub fn hand_over(&self, done: u64, dirty: Dirty) {
        self.idle.store(false, Ordering::Release);
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send((done, dirty));
        }
    }
}

impl Drop for Checkpointer {
    /// Lets the thread finish what was handed over.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(db: &Database, store: &Path, jobs: &mpsc::Receiver<(u64, Dirty)>, idle: &AtomicBool) {
    // What a failed checkpoint did not write: its segments are still there, and the next
    // checkpoint, which deletes them, writes it too.
    let mut carried = Dirty::new();
    while let Ok((done, mut dirty)) = jobs.recv() {
        for (aor, value) in carried.drain() {
            dirty.entry(aor).or_insert(value);
        }
        let (started, aors) = (Instant::now(), dirty.len());
        match checkpoint(db, store, &dirty, done) {
            Ok(()) => {
                let ms = started.elapsed().as_millis() as u64;
                tracing::debug!(target: "sipreg::store", file = %store.display(), aors, ms, "checkpoint");
            }
            Err(e) => {
                tracing::error!(target: "sipreg::store", file = %store.display(), error = %e, aors, "checkpoint failed; the changes stay in the log and are tried again");
                carried = dirty;
            }
        }
        idle.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    fn stored(db: &Database, aor: &str) -> Option<Vec<u8>> {
        let read = db.begin_read().unwrap();
        let table = read.open_table(BINDINGS).unwrap();
        table.get(aor).unwrap().map(|v| v.value().to_vec())
    }

    #[test]
    fn a_checkpoint_writes_the_changes_and_deletes_their_segments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc.redb");
        let db = Database::create(&path).unwrap();
        for n in [1, 2, 3] {
            wal::Segment::create(&path, n).unwrap();
        }
        let mut dirty = Dirty::new();
        dirty.insert("a@x".into(), Some(b"one".to_vec()));
        checkpoint(&db, &path, &dirty, 2).unwrap();
        let left: Vec<u64> = wal::segments(&path).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(left, vec![3]);
        assert_eq!(stored(&db, "a@x").as_deref(), Some(&b"one"[..]));
        dirty.insert("a@x".into(), None);
        checkpoint(&db, &path, &dirty, 3).unwrap();
        assert_eq!(stored(&db, "a@x"), None);
        let read = db.begin_read().unwrap();
        let meta = read.open_table(META).unwrap();
        assert_eq!(meta.get(CHECKPOINTED).unwrap().unwrap().value(), 3);
        assert!(wal::segments(&path).unwrap().is_empty());
    }

    #[test]
    fn the_thread_writes_what_it_is_handed_and_finishes_before_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc.redb");
        let db = Database::create(&path).unwrap();
        wal::Segment::create(&path, 1).unwrap();
        let c = Checkpointer::start(db, path.clone()).unwrap();
        assert!(c.idle());
        let mut dirty = Dirty::new();
        dirty.insert("b@x".into(), Some(b"two".to_vec()));
        c.hand_over(1, dirty);
        drop(c); // joins the thread: the checkpoint is done
        assert!(wal::segments(&path).unwrap().is_empty());
        let db = Database::open(&path).unwrap();
        assert_eq!(stored(&db, "b@x").as_deref(), Some(&b"two"[..]));
    }
}
