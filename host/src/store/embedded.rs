//! The `embedded` store: the in-memory [`Location`] in front of a redb file. Every change of
//! an AOR is written to the file as the AOR's whole binding list; a committer thread takes
//! all the writes that queued while it committed the previous batch, lets more gather for
//! `[store] commit_delay_ms`, and commits them in one transaction (group commit: one fsync
//! for many REGISTERs), then keeps their promises. An fsync costs about as much CPU here as
//! ten REGISTERs (bench/README.md), so under load the delay divides the store's CPU per
//! REGISTER; every 200 waits as long.
//! On start the file is read back into memory; expired bindings come back with their
//! timers due, so the first timer tick removes them and reports them once.

use super::location::{Binding, Journal, Location};
use super::{Durable, StoreError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// AOR -> its bindings (postcard).
const BINDINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("bindings");

/// The most writes one transaction takes.
const BATCH: usize = 8192;

struct Write {
    /// None: a barrier, kept when everything queued before it is stored.
    aor: Option<Box<str>>,
    /// None: the AOR has no binding left.
    value: Option<Vec<u8>>,
    done: Durable,
}

/// The journal of an embedded store: hands writes to the committer thread.
#[derive(Debug)]
struct Committer {
    queue: Option<mpsc::Sender<Write>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Committer {
    /// Lets the committer finish what queued and close the file, so it can be opened again.
    fn drop(&mut self) {
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write").field("aor", &self.aor).finish()
    }
}

impl Committer {
    /// Queues a write for the committer; its promise fails at once when the committer is
    /// gone.
    fn queue(&self, aor: Option<Box<str>>, value: Option<Vec<u8>>) -> Durable {
        let done = Durable::pending();
        let w = Write {
            aor,
            value,
            done: done.clone(),
        };
        if self.queue.as_ref().is_none_or(|q| q.send(w).is_err()) {
            done.settle(false);
        }
        done
    }
}

impl Journal for Committer {
    fn flush(&self) -> bool {
        self.queue(None, None).wait()
    }

    fn write(&self, aor: &str, live: &[Binding]) -> Durable {
        let value = if live.is_empty() {
            None
        } else {
            // Sized for a typical binding up front: growing it was most of the encoding.
            match postcard::to_extend(live, Vec::with_capacity(384 * live.len())) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::error!(target: "sipreg::store", aor, error = %e, "bindings could not be encoded");
                    let failed = Durable::pending();
                    failed.settle(false);
                    return failed;
                }
            }
        };
        self.queue(Some(aor.into()), value)
    }
}

fn failed(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("{}: {what}: {e}", path.display()))
}

/// What opening the file found.
#[derive(Debug)]
pub struct Opened {
    pub location: Location,
    /// AORs and bindings read back (expired ones included).
    pub aors: usize,
    pub bindings: usize,
}

/// Opens (or creates) the store file and loads it into memory.
///
/// # Errors
/// The file cannot be opened or read, or holds what this version did not write.
pub fn open(path: &Path, commit_delay: Duration) -> Result<Opened, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, "cannot create the folder", e))?;
    }
    let db = Database::create(path).map_err(|e| failed(path, "cannot open", e))?;
    let (mut aors, mut bindings) = (0, 0);
    let mut restored = Vec::new();
    {
        let read = db
            .begin_read()
            .map_err(|e| failed(path, "cannot read", e))?;
        match read.open_table(BINDINGS) {
            Ok(table) => {
                for entry in table.iter().map_err(|e| failed(path, "cannot read", e))? {
                    let (aor, value) = entry.map_err(|e| failed(path, "cannot read", e))?;
                    let list: Vec<Binding> = postcard::from_bytes(value.value())
                        .map_err(|e| failed(path, &format!("bindings of {}", aor.value()), e))?;
                    aors += 1;
                    bindings += list.len();
                    restored.push((Box::<str>::from(aor.value()), list));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(failed(path, "cannot read", e)),
        }
    }
    let (queue, writes) = mpsc::channel();
    let file = path.to_owned();
    let thread = std::thread::Builder::new()
        .name("sipreg-store".into())
        .spawn(move || commit_loop(&db, &file, &writes, commit_delay))
        .map_err(|e| failed(path, "cannot start the committer", e))?;
    let location = Location::with_journal(Box::new(Committer {
        queue: Some(queue),
        thread: Some(thread),
    }));
    for (aor, list) in restored {
        location.restore(&aor, list);
    }
    Ok(Opened {
        location,
        aors,
        bindings,
    })
}

/// Commits what queued, batch after batch, until every sender is gone.
fn commit_loop(db: &Database, path: &Path, writes: &mpsc::Receiver<Write>, delay: Duration) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = writes.recv() {
        batch.push(first);
        if !delay.is_zero() {
            // Sleeping, not waiting on the queue: the writers' sends wake nobody meanwhile.
            std::thread::sleep(delay);
        }
        while batch.len() < BATCH {
            match writes.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let stored = commit(db, &batch);
        if let Err(e) = &stored {
            tracing::error!(target: "sipreg::store", file = %path.display(), error = %e, writes = batch.len(), "commit failed; the REGISTERs get 500");
        }
        for w in batch.drain(..) {
            w.done.settle(stored.is_ok());
        }
    }
}

fn commit(db: &Database, batch: &[Write]) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(BINDINGS)?;
        for w in batch {
            match (&w.aor, &w.value) {
                (None, _) => {}
                (Some(aor), Some(v)) => {
                    table.insert(&**aor, v.as_slice())?;
                }
                (Some(aor), None) => {
                    table.remove(&**aor)?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;
    use crate::store::location::{Change, Update};
    use uuid::Uuid;

    fn update(contact: &str, cseq: u32, expires: u32, now_ms: u64) -> Update<'_> {
        Update {
            call_id: "c1",
            cseq,
            branch: u64::from(cseq),
            source: "192.0.2.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            path: Some("<sip:edge.example.com;lr>"),
            max_contacts: 5,
            now_ms,
            remove_all: false,
            changes: vec![Change {
                contact,
                key: contact,
                expires,
                q: Some(500),
                instance: None,
                reg_id: None,
                natted: true,
                registration_id: Uuid::new_v4(),
            }],
        }
    }

    fn register(l: &Location, aor: &str, contact: &str, cseq: u32, expires: u32, now_ms: u64) {
        let applied = l
            .update(aor, &update(contact, cseq, expires, now_ms))
            .unwrap();
        assert!(applied.durable.expect("a journaled store promises").wait());
    }

    #[test]
    fn bindings_come_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/loc.redb");
        let first = open(&path, Duration::ZERO).unwrap();
        assert_eq!(first.bindings, 0);
        register(&first.location, "a@x", "sip:a@192.0.2.1", 1, 60, 0);
        register(&first.location, "b@x", "sip:b@192.0.2.2", 1, 60, 0);
        register(&first.location, "b@x", "sip:b@192.0.2.2", 2, 0, 10); // removed
        let before = first.location.lookup("a@x", 0);
        drop(first);
        let again = open(&path, Duration::ZERO).unwrap();
        assert_eq!((again.aors, again.bindings), (1, 1));
        assert_eq!(again.location.lookup("a@x", 0), before);
        assert!(again.location.lookup("b@x", 0).is_empty());
        // expired while down: removed (and on disk) by the first expiry run
        let gone = again.location.expire_due(120_000);
        assert_eq!(gone.len(), 1);
        drop(again);
        assert_eq!(open(&path, Duration::ZERO).unwrap().bindings, 0);
    }

    #[test]
    fn writes_gather_for_the_commit_delay_and_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc.redb");
        let delay = Duration::from_millis(50);
        let opened = open(&path, delay).unwrap();
        let started = std::time::Instant::now();
        let first = opened
            .location
            .update("a@x", &update("sip:a@192.0.2.1", 1, 60, 0))
            .unwrap();
        let second = opened
            .location
            .update("b@x", &update("sip:b@192.0.2.2", 1, 60, 0))
            .unwrap();
        assert!(first.durable.unwrap().wait() && second.durable.unwrap().wait());
        // a sleep never ends early: the first write waited at least the delay
        assert!(started.elapsed() >= delay);
        drop(opened);
        assert_eq!(open(&path, Duration::ZERO).unwrap().bindings, 2);
    }

    #[test]
    fn a_file_that_is_not_a_store_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.redb");
        std::fs::write(&path, b"not a database at all, just text").unwrap();
        let e = open(&path, Duration::ZERO).unwrap_err().to_string();
        assert!(e.contains("junk.redb"), "{e}");
    }
}
