//! `sipreg store check` and `sipreg store recover`: what the embedded store's files hold
//! when `sipreg run` refuses them, and the way out that keeps what can be read.
//!
//! - [`check`] changes nothing: the redb file (bindings it holds, or why it cannot be
//!   read), and each log segment (whole records, a torn write, damage with its offset and
//!   AOR).
//! - [`recover`] keeps what can be read: a store file that is empty or damaged is moved
//!   aside (`<file>.damaged-<unix time>`), the entries it still yields are read from a copy
//!   of it (redb's panics caught) into a new file, and then the store is opened as `run`
//!   opens it, which replays every log segment over them (damage skipped and kept aside
//!   as `<segment>.damaged`). It says how many bindings it kept.

use super::checkpoint::{BINDINGS, Dirty, checkpoint};
use super::{StoreError, embedded, wal};
use redb::{Database, ReadableDatabase, ReadableTable};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the store file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// No file yet: a new store.
    Missing,
    /// Read whole: this many AORs.
    Whole { aors: usize },
    /// Cannot be read as a store; why.
    Damaged(String),
}

/// What one log segment holds.
#[derive(Debug, Clone)]
pub struct SegmentState {
    pub path: PathBuf,
    pub replayed: wal::Replayed,
}

/// What [`check`] found.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: PathBuf,
    pub state: FileState,
    pub segments: Vec<SegmentState>,
}

impl Report {
    /// Whether nothing is damaged (a torn last write is no damage: it was never
    /// acknowledged).
    pub fn clean(&self) -> bool {
        !matches!(self.state, FileState::Damaged(_))
            && self.segments.iter().all(|s| s.replayed.damaged.is_empty())
    }

    /// The report, one line per file and per damage.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let file = self.file.display();
        let _ = match &self.state {
            FileState::Missing => writeln!(out, "{file}: no store file (a new store)"),
            FileState::Whole { aors } => writeln!(out, "{file}: whole, {aors} AORs"),
            FileState::Damaged(why) => writeln!(out, "{file}: DAMAGED: {why}"),
        };
        for s in &self.segments {
            let r = &s.replayed;
            let _ = write!(out, "{}: {} records", s.path.display(), r.records);
            if r.cut > 0 {
                let _ = write!(
                    out,
                    ", a last write of {} bytes cut short (never acknowledged)",
                    r.cut
                );
            }
            let _ = writeln!(out);
            for d in r.damaged.iter().filter(|d| d.bytes == 0) {
                let _ = writeln!(
                    out,
                    "  DAMAGED: empty (0 bytes): cut to nothing, or created by a crash just before its first write (offset {})",
                    d.offset
                );
            }
            for d in r.damaged.iter().filter(|d| d.bytes > 0) {
                let _ = writeln!(
                    out,
                    "  DAMAGED at offset {}, {} bytes: {}",
                    d.offset,
                    d.bytes,
                    d.aor.as_deref().map_or_else(
                        || "the AOR cannot be read".to_owned(),
                        |a| format!("{a} may be as an older record left it")
                    )
                );
            }
        }
        let _ = writeln!(
            out,
            "{}",
            if self.clean() {
                "clean"
            } else {
                "damaged: `sipreg store recover --config ...` keeps what can be read"
            }
        );
        out
    }
}

/// Walks the bindings table of the file at `copy` forward (or backward), opened
/// read-only (or with redb's repair, for a file not closed cleanly), into `entries`; a
/// panic of redb's is caught and told.
fn walk(copy: &Path, repair: bool, backward: bool, entries: &mut Dirty) -> Result<(), String> {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), String> {
        let txn = if repair {
            Database::open(copy)
                .map_err(|e| e.to_string())?
                .begin_read()
        } else {
            redb::ReadOnlyDatabase::open(copy)
                .map_err(|e| e.to_string())?
                .begin_read()
        }
        .map_err(|e| e.to_string())?;
        let table = match txn.open_table(BINDINGS) {
            Ok(t) => t,
            // A store that never took a checkpoint in.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        let iter = table.iter().map_err(|e| e.to_string())?;
        let mut take = |entry: Result<_, redb::StorageError>| -> Result<(), String> {
            let (aor, value): (redb::AccessGuard<&str>, redb::AccessGuard<&[u8]>) =
                entry.map_err(|e| e.to_string())?;
            entries.insert(aor.value().into(), Some(value.value().to_vec()));
            Ok(())
        };
        if backward {
            iter.rev().try_for_each(&mut take)
        } else {
            iter.into_iter().try_for_each(&mut take)
        }
    }));
    match read {
        Ok(r) => r,
        Err(p) => Err(format!(
            "redb panicked: {}",
            p.downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        )),
    }
}

/// The entries a store file yields, read from a copy beside it (the file itself is never
/// written): walked read-only, with redb's repair if it was not closed cleanly (a crash,
/// not damage), and from both ends when a damaged page stops a walk; and why a walk
/// stopped, if one did.
fn salvage(path: &Path) -> (Dirty, Option<String>) {
    let mut entries = Dirty::new();
    let mut copy = path.as_os_str().to_owned();
    copy.push(".salvaging");
    let copy = PathBuf::from(copy);
    if let Err(e) = std::fs::copy(path, &copy) {
        return (entries, Some(format!("cannot copy it: {e}")));
    }
    let mut stopped = walk(&copy, false, false, &mut entries).err();
    let repair = stopped.as_deref() == Some(&redb::DatabaseError::RepairAborted.to_string());
    if repair {
        entries.clear();
        stopped = walk(&copy, true, false, &mut entries).err();
    }
    if stopped.is_some() {
        // From the other end, on a fresh copy: a damaged page stops the walk forward, not
        // the one backward.
        let _ = std::fs::copy(path, &copy);
        let _ = walk(&copy, repair, true, &mut entries);
    }
    let _ = std::fs::remove_file(&copy);
    (entries, stopped)
}

/// What the store file at `path` is (without changing it).
fn file_state(path: &Path) -> FileState {
    match std::fs::metadata(path) {
        Err(_) => FileState::Missing,
        Ok(m) if m.len() == 0 => FileState::Damaged("the file is empty (0 bytes)".into()),
        Ok(_) => match salvage(path) {
            (entries, None) => FileState::Whole {
                aors: entries.len(),
            },
            (entries, Some(why)) => FileState::Damaged(format!(
                "{why} (after {} AORs could be read)",
                entries.len()
            )),
        },
    }
}

/// Looks at the store file and its log, changing nothing.
///
/// # Errors
/// The folder or a segment cannot be read.
pub fn check(path: &Path) -> Result<Report, StoreError> {
    let fail =
        |p: &Path, e: std::io::Error| StoreError(format!("{}: cannot read: {e}", p.display()));
    let mut segments = Vec::new();
    for (_, segment) in wal::segments(path).map_err(|e| fail(path, e))? {
        let replayed =
            wal::replay(&segment, wal::Mode::Look, |_, _| {}).map_err(|e| fail(&segment, e))?;
        segments.push(SegmentState {
            path: segment,
            replayed,
        });
    }
    Ok(Report {
        file: path.to_owned(),
        state: file_state(path),
        segments,
    })
}

/// What [`recover`] did.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// Where the damaged store file went, if it was moved.
    pub moved_to: Option<PathBuf>,
    /// AORs read back from the damaged file.
    pub salvaged: usize,
    /// The store as it now opens.
    pub aors: usize,
    pub bindings: usize,
}

impl Recovered {
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(p) = &self.moved_to {
            let _ = writeln!(
                out,
                "the damaged store file was moved to {}; {} AORs were read back from it",
                p.display(),
                self.salvaged
            );
        }
        let _ = writeln!(
            out,
            "kept {} bindings of {} AORs (the log replayed over them)",
            self.bindings, self.aors
        );
        out
    }
}

/// Keeps what can be read of a damaged store (see the module's documentation).
///
/// # Errors
/// A file cannot be moved or written, or the store cannot be opened even then.
pub fn recover(path: &Path) -> Result<Recovered, StoreError> {
    let mut moved_to = None;
    let mut salvaged = 0;
    if let FileState::Damaged(_) = file_state(path) {
        let (entries, _) = salvage(path);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".damaged-{stamp}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(path, &aside)
            .map_err(|e| StoreError(format!("{}: cannot move aside: {e}", path.display())))?;
        let db = Database::create(path)
            .map_err(|e| StoreError(format!("{}: cannot create: {e}", path.display())))?;
        // Marked as covering no segment: every segment left is replayed over what was
        // read back (those the damaged file had taken in as well), in order, which ends
        // where the log ends.
        checkpoint(&db, path, &entries, 0)
            .map_err(|e| StoreError(format!("{}: cannot write: {e}", path.display())))?;
        salvaged = entries.len();
        moved_to = Some(aside);
    }
    let opened = embedded::open(path, std::time::Duration::ZERO)?;
    let (aors, bindings) = (opened.aors, opened.bindings);
    drop(opened);
    Ok(Recovered {
        moved_to,
        salvaged,
        aors,
        bindings,
    })
}
