//! The write-ahead log in front of the embedded store's redb file. Every change of an AOR
//! is appended here first (one record: the AOR and its whole binding list, or that it is
//! gone), many changes to one `fdatasync`, and is durable when that returns. redb gets the
//! changes later, many AORs in one transaction (a checkpoint, `embedded.rs`), after which
//! the segments it covers are deleted. Appending a few hundred bytes costs far less CPU
//! than redb's copy-on-write of a 4 KiB page for every AOR a commit changes
//! (bench/README.md, "Where the CPU goes").
//!
//! Segments are files beside the store file, `<file>.wal.<n>`, numbered up from 1. A record
//! is `[body length: u32 LE][CRC-32 of the body: u32 LE][body]`; the body is
//! `[AOR length: u32 LE][AOR][0]` (the AOR is gone) or `[AOR length][AOR][1][value]`.
//! A record that is cut short or fails its checksum with no whole record after it is a
//! write a crash interrupted, never acknowledged: the file is cut there. One with whole
//! records after it is damage in the middle: reading resumes at the next whole record (a
//! record's checksum covers its body and its length says where the next one starts, so
//! the next offset where both hold is one), and the damage is reported with its offset,
//! its length and the AOR it held where that part can still be read.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const HEADER: usize = 8;

/// The segment being appended to.
#[derive(Debug)]
pub struct Segment {
    file: File,
    pub number: u64,
    /// Bytes of whole records in the file.
    len: u64,
    buf: Vec<u8>,
}

/// The path of segment `n` of the store file `store`.
pub fn segment_path(store: &Path, n: u64) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(format!(".wal.{n}"));
    PathBuf::from(name)
}

/// The segments beside the store file `store`, oldest first.
///
/// # Errors
/// The folder cannot be read.
pub fn segments(store: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let dir = folder(store);
    let Some(name) = store.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.wal.");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name();
        let Some(n) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((n, entry.path()));
    }
    found.sort_unstable();
    Ok(found)
}

fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Makes the creation or removal of a file in `path`'s folder durable.
///
/// # Errors
/// The folder cannot be opened or synced.
pub fn sync_folder(path: &Path) -> io::Result<()> {
    File::open(folder(path))?.sync_all()
}

impl Segment {
    /// Creates segment `n` of the store file `store` (it must not exist).
    ///
    /// # Errors
    /// The file cannot be created, or its name made durable.
    pub fn create(store: &Path, n: u64) -> io::Result<Segment> {
        let path = segment_path(store, n);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        sync_folder(&path)?;
        Ok(Segment {
            file,
            number: n,
            len: 0,
            buf: Vec::new(),
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends the records and returns once they are on disk. On failure none of them
    /// counts: the file is cut back to the records before them.
    ///
    /// # Errors
    /// The write or the sync failed.
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> io::Result<()> {
        self.buf.clear();
        for (aor, value) in records {
            encode(&mut self.buf, aor, value);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = self
            .file
            .write_all_at(&self.buf, self.len)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Whatever part reached the file must not sit between whole records.
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }
}

fn encode(buf: &mut Vec<u8>, aor: &str, value: Option<&[u8]>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    buf.extend_from_slice(&(aor.len() as u32).to_le_bytes());
    buf.extend_from_slice(aor.as_bytes());
    match value {
        None => buf.push(0),
        Some(v) => {
            buf.push(1);
            buf.extend_from_slice(v);
        }
    }
    let body = &buf[start + HEADER..];
    let (len, crc) = (body.len() as u32, crc32fast::hash(body));
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// One whole record at the start of `data` and its length, or None.
fn decode(data: &[u8]) -> Option<(&str, Option<&[u8]>, usize)> {
    let word = |at: usize| -> Option<usize> {
        let b = data.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let len = word(0)?;
    let crc = word(4)?;
    let body = data.get(HEADER..HEADER.checked_add(len)?)?;
    if crc32fast::hash(body) as usize != crc {
        return None;
    }
    let aor_len = word(HEADER)?;
    let aor = body.get(4..4usize.checked_add(aor_len)?)?;
    let aor = std::str::from_utf8(aor).ok()?;
    let value = match body.get(4 + aor_len..)? {
        [0] => None,
        [1, v @ ..] => Some(v),
        _ => return None,
    };
    Some((aor, value, HEADER + len))
}

/// What reading a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub records: usize,
    /// Bytes after the last whole record, cut off.
    pub cut: u64,
    /// Damage before whole records: acknowledged writes lost.
    pub damaged: Vec<Damage>,
}

/// Bytes in the middle of a segment that are no whole record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub bytes: u64,
    /// The AOR of the record that stood there, if that part of it can still be read:
    /// its bindings may now be as an older record left them.
    pub aor: Option<String>,
}

/// The AOR a damaged record names, if its header and AOR can still be read.
fn readable_aor(damaged: &[u8]) -> Option<String> {
    let b = damaged.get(HEADER..HEADER + 4)?;
    let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let aor = damaged.get(HEADER + 4..HEADER + 4 + len.min(1024))?;
    let aor = std::str::from_utf8(aor).ok()?;
    (!aor.is_empty() && aor.len() == len && aor.chars().all(|c| !c.is_control()))
        .then(|| aor.to_owned())
}

/// Reads the segment at `path`, handing each whole record to `f` in order, and cuts off
/// what follows the last one.
///
/// # Errors
/// The file cannot be read or cut.
pub fn replay(path: &Path, mut f: impl FnMut(&str, Option<&[u8]>)) -> io::Result<Replayed> {
    let data = std::fs::read(path)?;
    let (mut at, mut records, mut damaged) = (0, 0, Vec::new());
    while at < data.len() {
        if let Some((aor, value, n)) = decode(&data[at..]) {
            f(aor, value);
            at += n;
            records += 1;
            continue;
        }
        let Some(next) = (at + 1..data.len()).find(|&i| decode(&data[i..]).is_some()) else {
            break; // nothing whole after it: a torn tail
        };
        damaged.push(Damage {
            offset: at as u64,
            bytes: (next - at) as u64,
            aor: readable_aor(&data[at..next]),
        });
        at = next;
    }
    let cut = (data.len() - at) as u64;
    if cut > 0 {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(at as u64)?;
        file.sync_all()?;
    }
    Ok(Replayed {
        records,
        cut,
        damaged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = Vec<(String, Option<Vec<u8>>)>;

    fn read(path: &Path) -> (Seen, Replayed) {
        let mut seen = Vec::new();
        let r = replay(path, |aor, v| {
            seen.push((aor.to_owned(), v.map(<[u8]>::to_vec)))
        })
        .unwrap();
        (seen, r)
    }

    #[test]
    fn records_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("loc.redb");
        let mut s = Segment::create(&store, 1).unwrap();
        s.append([("a@x", Some(&b"one"[..])), ("b@x", Some(&b""[..]))])
            .unwrap();
        s.append([("a@x", None)]).unwrap();
        s.append([]).unwrap();
        let (seen, r) = read(&segment_path(&store, 1));
        assert_eq!(
            seen,
            vec![
                ("a@x".into(), Some(b"one".to_vec())),
                ("b@x".into(), Some(Vec::new())),
                ("a@x".into(), None),
            ]
        );
        assert_eq!(
            r,
            Replayed {
                records: 3,
                cut: 0,
                damaged: Vec::new()
            }
        );
        assert!(
            Segment::create(&store, 1).is_err(),
            "a segment is never reused"
        );
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("loc.redb");
        let mut s = Segment::create(&store, 7).unwrap();
        s.append([("a@x", Some(&b"kept"[..]))]).unwrap();
        let whole = s.len();
        s.append([("b@x", Some(&b"torn"[..]))]).unwrap();
        let path = segment_path(&store, 7);
        // a crash in the middle of the second write
        let data = std::fs::read(&path).unwrap();
        std::fs::write(&path, &data[..data.len() - 3]).unwrap();
        let (seen, r) = read(&path);
        assert_eq!(seen, vec![("a@x".into(), Some(b"kept".to_vec()))]);
        assert_eq!(r.cut, data.len() as u64 - 3 - whole);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        // a flipped bit in the second record: its checksum fails
        let mut bad = data.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let (seen, r) = read(&path);
        assert_eq!((seen.len(), r.records), (1, 1));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
    }

    /// Damage in the middle loses only the records it hit: reading resumes at the next
    /// whole record, and the damage is told with its offset and AOR (issue 18, finding 5:
    /// 64 random bytes in the middle dropped every record after them, called "cut short").
    #[test]
    fn damage_in_the_middle_is_skipped_and_told() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("loc.redb");
        let mut s = Segment::create(&store, 3).unwrap();
        for i in 0..10 {
            let aor = format!("user{i}@x");
            s.append([(aor.as_str(), Some(&b"a binding list of some length"[..]))])
                .unwrap();
        }
        let path = segment_path(&store, 3);
        let mut data = std::fs::read(&path).unwrap();
        let record = data.len() / 10;
        // the value of the fifth record damaged (its header and AOR intact), then the
        // length of the seventh
        data[4 * record + 30] ^= 0xff;
        data[6 * record] ^= 0x55;
        std::fs::write(&path, &data).unwrap();
        let (seen, r) = read(&path);
        let aors: Vec<&str> = seen.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            aors,
            [
                "user0@x", "user1@x", "user2@x", "user3@x", "user5@x", "user7@x", "user8@x",
                "user9@x"
            ]
        );
        assert_eq!(r.records, 8);
        assert_eq!(r.cut, 0, "the file keeps its whole records");
        assert_eq!(r.damaged.len(), 2, "{:?}", r.damaged);
        assert_eq!(r.damaged[0].offset, 4 * record as u64);
        assert_eq!(r.damaged[0].bytes, record as u64);
        assert_eq!(r.damaged[0].aor.as_deref(), Some("user4@x"));
        // a torn tail after damage is still cut off
        let mut torn = data.clone();
        torn.truncate(data.len() - 3);
        std::fs::write(&path, &torn).unwrap();
        let (seen, r) = read(&path);
        assert_eq!((seen.len(), r.damaged.len()), (7, 2));
        assert_eq!(r.cut, record as u64 - 3);
    }

    #[test]
    fn segments_are_listed_oldest_first_and_only_the_stores_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("loc.redb");
        for n in [10, 2, 1] {
            Segment::create(&store, n).unwrap();
        }
        std::fs::write(dir.path().join("loc.redb.wal.x"), b"").unwrap();
        std::fs::write(dir.path().join("other.redb.wal.3"), b"").unwrap();
        let found: Vec<u64> = segments(&store).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(found, vec![1, 2, 10]);
    }
}
