//! The `embedded` store: the in-memory [`Location`] in front of a redb file. Every change of
//! an AOR is written as the AOR's whole binding list: first to the write-ahead log
//! (`wal.rs`), by a committer thread that takes all the writes that queued while it wrote
//! the previous batch, lets more gather for `[store] commit_delay_ms`, and appends them
//! with one fsync (group commit), then keeps their promises; later, many AORs at a time, to
//! the redb file by the checkpoint thread (`checkpoint.rs`). An fsync costs about as much
//! CPU here as ten REGISTERs (bench/README.md), so under load the delay divides the store's
//! CPU per REGISTER; every 200 waits as long.
//! On start the file is read back into memory and the log replayed over it (and written
//! into the file); expired bindings come back with their timers due, so the first timer
//! tick removes them and reports them once.

use super::Binding;
use super::checkpoint::{BINDINGS, CHECKPOINTED, Checkpointer, Dirty, META, checkpoint};
use super::location::{Journal, Location};
use super::{Durable, StoreError, wal};
use redb::{Database, ReadableDatabase, ReadableTable};
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most writes one log append takes.
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

/// The store file: its database, its bindings by AOR, and the last log segment it holds.
type FileRead = (Database, Vec<(Box<str>, Vec<Binding>)>, u64);

/// Opens (or creates) the redb file and reads every binding it holds.
fn read_file(path: &Path) -> Result<FileRead, StoreError> {
    let db = Database::create(path).map_err(|e| failed(path, "cannot open", e))?;
    let mut from_file: Vec<(Box<str>, Vec<Binding>)> = Vec::new();
    let checkpointed;
    {
        let read = db
            .begin_read()
            .map_err(|e| failed(path, "cannot read", e))?;
        match read.open_table(BINDINGS) {
            Ok(table) => {
                for entry in table.iter().map_err(|e| failed(path, "cannot read", e))? {
                    let (aor, value) = entry.map_err(|e| failed(path, "cannot read", e))?;
                    let list = decode(path, aor.value(), value.value())?;
                    from_file.push((aor.value().into(), list));
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(failed(path, "cannot read", e)),
        }
        checkpointed = match read.open_table(META) {
            Ok(table) => table
                .get(CHECKPOINTED)
                .map_err(|e| failed(path, "cannot read", e))?
                .map_or(0, |v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(failed(path, "cannot read", e)),
        };
    }
    Ok((db, from_file, checkpointed))
}

/// What opening the file found.
#[derive(Debug)]
pub struct Opened {
    pub location: Location,
    /// AORs and bindings read back (expired ones included).
    pub aors: usize,
    pub bindings: usize,
}

/// Opens (or creates) the store file, replays its log over it and loads it into memory.
///
/// # Errors
/// The file or a log segment cannot be opened, read or written, or holds what this
/// version did not write.
pub fn open(path: &Path, commit_delay: Duration) -> Result<Opened, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, "cannot create the folder", e))?;
    }
    // An empty file is not an empty store: the bindings it held are lost, and starting
    // over them would say nothing (a new store is a file that does not exist yet).
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(StoreError(format!(
            "{}: the store file is empty (0 bytes), not a store: restore it from a backup, or run `sipreg store recover --config <file>` (it moves the file aside and keeps what the log holds)",
            path.display()
        )));
    }
    // redb panics on some damage: caught, so that the message names the file.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_file(path)));
    let (db, from_file, checkpointed) = match read {
        Ok(r) => r?,
        Err(p) => {
            let why = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            return Err(StoreError(format!(
                "{}: the store file is damaged (redb: {why}): restore it from a backup, or run `sipreg store recover --config <file>` (it keeps what can be read, moves the damaged file aside and says how many bindings it kept)",
                path.display()
            )));
        }
    };
    // The bindings of AORs the log changed (None: gone), kept apart from the file's: the
    // file may hold a million, and a list is cheaper to build than a map.
    let mut from_log: HashMap<Box<str>, Option<Vec<Binding>>> = HashMap::new();
    let mut log = Log::default();
    let mut last = checkpointed;
    // Segments at or below `checkpointed` are in the file already (a checkpoint that
    // stopped before deleting them); the checkpoint below deletes them.
    for (n, segment) in wal::segments(path).map_err(|e| failed(path, "cannot list the log", e))? {
        last = last.max(n);
        if n <= checkpointed {
            continue;
        }
        let mut unreadable = None;
        let replayed = wal::replay(&segment, wal::Mode::Repair, |aor, value| {
            let list = match value.map(|v| decode(&segment, aor, v)) {
                Some(Ok(list)) => Some(list),
                Some(Err(e)) => {
                    unreadable = Some(e);
                    return;
                }
                None => None,
            };
            from_log.insert(aor.into(), list);
            log.dirty.insert(aor.into(), value.map(<[u8]>::to_vec));
        })
        .map_err(|e| failed(&segment, "cannot read", e))?;
        if let Some(e) = unreadable {
            return Err(e);
        }
        if replayed.cut > 0 {
            tracing::warn!(target: "sipreg::store", file = %segment.display(), records = replayed.records, bytes = replayed.cut, "log ends in a write that was cut short (never acknowledged); cut off");
        }
        for d in replayed.damaged.iter().filter(|d| d.bytes == 0) {
            tracing::error!(
                target: "sipreg::store",
                file = %segment.display(),
                offset = d.offset,
                "log segment empty: cut to nothing (acknowledged records lost), or created by a crash just before its first write"
            );
        }
        for d in replayed.damaged.iter().filter(|d| d.bytes > 0) {
            tracing::error!(
                target: "sipreg::store",
                file = %segment.display(),
                offset = d.offset,
                bytes = d.bytes,
                aor = d.aor.as_deref().unwrap_or("(unreadable)"),
                kept_as = %format!("{}.damaged", segment.display()),
                "log damaged: acknowledged records lost; the damaged part is skipped, the records around it are kept; the AOR named may be as an older record left it"
            );
        }
    }
    // What the log held goes into the file now, and the log starts afresh.
    checkpoint(&db, path, &log.dirty, last).map_err(|e| failed(path, "cannot write", e))?;
    let segment = wal::Segment::create(path, last + 1)
        .map_err(|e| failed(&wal::segment_path(path, last + 1), "cannot create", e))?;
    let checkpointer = Checkpointer::start(db, path.to_owned())
        .map_err(|e| failed(path, "cannot start the checkpoint thread", e))?;
    let (queue, writes) = mpsc::channel();
    let file = path.to_owned();
    let thread = std::thread::Builder::new()
        .name("sipreg-store".into())
        .spawn(move || commit_loop(&checkpointer, &file, segment, &writes, commit_delay))
        .map_err(|e| failed(path, "cannot start the committer", e))?;
    let location = Location::with_journal(Box::new(Committer {
        queue: Some(queue),
        thread: Some(thread),
    }));
    let (mut aors, mut bindings) = (0, 0);
    let mut restore = |aor: &str, list: Vec<Binding>| {
        aors += 1;
        bindings += list.len();
        location.restore(aor, list);
    };
    for (aor, list) in from_file {
        if !from_log.contains_key(&aor) {
            restore(&aor, list);
        }
    }
    for (aor, list) in from_log {
        if let Some(list) = list {
            restore(&aor, list);
        }
    }
    Ok(Opened {
        location,
        aors,
        bindings,
    })
}

fn decode(file: &Path, aor: &str, value: &[u8]) -> Result<Vec<Binding>, StoreError> {
    postcard::from_bytes(value).map_err(|e| failed(file, &format!("bindings of {aor}"), e))
}

/// What the committer keeps of the log.
#[derive(Debug)]
struct Log {
    dirty: Dirty,
    /// Since the last checkpoint.
    since: Instant,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            dirty: Dirty::new(),
            since: Instant::now(),
        }
    }
}

/// A checkpoint is due after this long with changes waiting,
const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);
/// or with this many AORs changed,
const CHECKPOINT_AORS: usize = 65_536;
/// or with a log segment this large.
const CHECKPOINT_BYTES: u64 = 64 << 20;

/// Appends what queued to the log, batch after batch, until every sender is gone, and
/// hands the changes to the checkpoint thread from time to time.
fn commit_loop(
    checkpointer: &Checkpointer,
    path: &Path,
    mut segment: wal::Segment,
    writes: &mpsc::Receiver<Write>,
    delay: Duration,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut log = Log::default();
    loop {
        let first = match writes.recv_timeout(CHECKPOINT_EVERY) {
            Ok(w) => w,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if checkpointer.idle() {
                    next_checkpoint(checkpointer, path, &mut segment, &mut log);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
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
        let stored = segment.append(
            batch
                .iter()
                .filter_map(|w| Some((&**w.aor.as_ref()?, w.value.as_deref()))),
        );
        if let Err(e) = &stored {
            let file = wal::segment_path(path, segment.number);
            tracing::error!(target: "sipreg::store", file = %file.display(), error = %e, writes = batch.len(), "log write failed; the REGISTERs get 500");
        }
        for w in &batch {
            w.done.settle(stored.is_ok());
        }
        for w in batch.drain(..) {
            if stored.is_ok()
                && let Some(aor) = w.aor
            {
                log.dirty.insert(aor, w.value);
            }
        }
        let due = log.dirty.len() >= CHECKPOINT_AORS
            || segment.len() >= CHECKPOINT_BYTES
            || log.since.elapsed() >= CHECKPOINT_EVERY;
        // A checkpoint still running: the changes gather until it is done.
        if due && checkpointer.idle() {
            next_checkpoint(checkpointer, path, &mut segment, &mut log);
        }
    }
    next_checkpoint(checkpointer, path, &mut segment, &mut log);
}

/// Starts the next log segment and hands everything before it to the checkpoint thread.
fn next_checkpoint(
    checkpointer: &Checkpointer,
    path: &Path,
    segment: &mut wal::Segment,
    log: &mut Log,
) {
    log.since = Instant::now();
    if log.dirty.is_empty() {
        return;
    }
    let done = segment.number;
    match wal::Segment::create(path, done + 1) {
        Ok(next) => *segment = next,
        Err(e) => {
            let file = wal::segment_path(path, done + 1);
            tracing::error!(target: "sipreg::store", file = %file.display(), error = %e, "cannot start a log segment; the log grows until one can be");
            return;
        }
    }
    checkpointer.hand_over(done, std::mem::take(&mut log.dirty));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;
    use crate::store::{Change, Update};
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
            evict: crate::config::Evict::Oldest,
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

    /// The state a crash leaves: the file holds what the last checkpoint wrote (segment 1),
    /// segment 2 changes that came after it, and segment 1 was not deleted yet.
    #[test]
    fn the_log_is_replayed_over_the_file_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc.redb");
        let first = open(&path, Duration::ZERO).unwrap();
        register(&first.location, "a@x", "sip:a@192.0.2.1", 1, 60, 0);
        register(&first.location, "gone@x", "sip:g@192.0.2.9", 1, 60, 0);
        drop(first); // checkpoint: both in the file, as of segment 1
        let two = wal::segment_path(&path, 2);
        let left: Vec<u64> = wal::segments(&path).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(left, vec![2], "segment 1 deleted, the next one empty");
        std::fs::remove_file(&two).unwrap();
        let encoded = |contact: &str| {
            let l = Location::new();
            let list = l
                .update("b@x", &update(contact, 1, 60, 0))
                .unwrap()
                .bindings;
            postcard::to_stdvec(&list).unwrap()
        };
        // a stale segment: its changes are already in the file and must not come back
        let stale = encoded("sip:stale@192.0.2.3");
        wal::Segment::create(&path, 1)
            .unwrap()
            .append([("b@x", Some(stale.as_slice()))])
            .unwrap();
        let fresh = encoded("sip:b@192.0.2.2");
        let mut s2 = wal::Segment::create(&path, 2).unwrap();
        s2.append([("b@x", Some(fresh.as_slice())), ("gone@x", None)])
            .unwrap();
        drop(s2);
        let mut torn = std::fs::read(&two).unwrap();
        torn.extend_from_slice(&[9, 0, 0]); // a write cut short by the crash
        std::fs::write(&two, torn).unwrap();

        let again = open(&path, Duration::ZERO).unwrap();
        assert_eq!((again.aors, again.bindings), (2, 2));
        let b = again.location.lookup("b@x", 0);
        assert_eq!(b.len(), 1);
        assert_eq!(&*b[0].contact, "sip:b@192.0.2.2");
        assert!(again.location.lookup("gone@x", 0).is_empty());
        assert_eq!(again.location.lookup("a@x", 0).len(), 1);
        // replayed into the file at once: the old segments are gone, a new one is open
        let left: Vec<u64> = wal::segments(&path).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(left, vec![3]);
        drop(again);
        let third = open(&path, Duration::ZERO).unwrap();
        assert_eq!((third.aors, third.bindings), (2, 2));
    }

    /// The committer hands a checkpoint over once enough AORs changed, without a restart:
    /// the first segment is deleted while the store runs, and everything is in the file.
    #[test]
    fn a_running_store_checkpoints_when_enough_aors_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc.redb");
        let opened = open(&path, Duration::ZERO).unwrap();
        let mut last = None;
        for i in 0..CHECKPOINT_AORS {
            let aor = format!("u{i}@x");
            let applied = opened
                .location
                .update(&aor, &update("sip:u@192.0.2.1", 1, 60, 0))
                .unwrap();
            last = applied.durable;
        }
        assert!(last.unwrap().wait());
        let deadline = Instant::now() + Duration::from_secs(30);
        while wal::segments(&path)
            .unwrap()
            .first()
            .is_some_and(|s| s.0 == 1)
        {
            assert!(Instant::now() < deadline, "segment 1 still there");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(opened);
        let again = open(&path, Duration::ZERO).unwrap();
        assert_eq!(again.aors, CHECKPOINT_AORS);
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
