//! The write-ahead log in front of the embedded store's redb file. Every change of an AOR
//! is appended here first (one record: the AOR and its whole binding list, or that it is
//! gone), many changes to one `fdatasync`, and is durable when that returns. redb gets the
//! changes later, many AORs in one transaction (a checkpoint, `embedded.rs`), after which
//! the segments it covers are deleted. Appending a few hundred bytes costs far less CPU
//! than redb's copy-on-write of a 4 KiB page for every AOR a commit changes
//! (bench/README.md, "Where the CPU goes").
//!
//! Segments are files beside the store file, `<file>.wal.<n>`, numbered up from 1. A
//! segment starts with [`MAGIC`]; a record is `[SYNC][body length: u32 LE][CRC-32 of the
//! body: u32 LE][CRC-32 of the 12 bytes before: u32 LE][body]`, the body
//! `[AOR length: u32 LE][AOR][0]` (the AOR is gone) or `[AOR length][AOR][1][value]`.
//! (Segments without the magic are the first format, `[length][CRC of the body][body]`,
//! still read.)
//!
//! What is not a whole record is told apart:
//! - at the end, the start of a record whose header is whole and right but whose body is
//!   cut short, or a cut piece of a header: a write a crash interrupted, never
//!   acknowledged; cut off;
//! - anything else (in the middle, or bytes at the end that are no record's start):
//!   damage. Reading resumes at the next [`SYNC`] whose header checksum holds (a damaged
//!   length loses only its record: the header checksum says the length is right), the
//!   damage is reported with its offset, length and the AOR it held where that can still
//!   be read (acknowledged writes lost: that AOR may be as an older record left it), and
//!   the segment as it was is kept beside it as `<segment>.damaged`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The first bytes of a segment of this format.
pub const MAGIC: &[u8; 8] = b"SIPREGW2";
/// The first bytes of a record.
pub const SYNC: &[u8; 4] = b"\xa5WR\x5a";
/// A record's header: sync, length, body checksum, header checksum.
const HEADER: usize = 16;
/// The header of the first format: length, body checksum.
const V1_HEADER: usize = 8;

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
        file.write_all_at(MAGIC, 0)?;
        file.sync_data()?;
        sync_folder(&path)?;
        Ok(Segment {
            file,
            number: n,
            len: MAGIC.len() as u64,
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
    buf[start..start + 4].copy_from_slice(SYNC);
    buf[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    let header_crc = crc32fast::hash(&buf[start..start + 12]);
    buf[start + 12..start + HEADER].copy_from_slice(&header_crc.to_le_bytes());
}

fn word(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The body length a record header at the start of `data` gives, if the header is whole
/// and right.
fn header_len(data: &[u8]) -> Option<usize> {
    if data.get(..4)? != SYNC || word(data, 12)? != crc32fast::hash(data.get(..12)?) {
        return None;
    }
    Some(word(data, 4)? as usize)
}

/// The AOR and value of a body.
fn body_parts(body: &[u8]) -> Option<(&str, Option<&[u8]>)> {
    let aor_len = word(body, 0)? as usize;
    let aor = body.get(4..4usize.checked_add(aor_len)?)?;
    let aor = std::str::from_utf8(aor).ok()?;
    let value = match body.get(4 + aor_len..)? {
        [0] => None,
        [1, v @ ..] => Some(v),
        _ => return None,
    };
    Some((aor, value))
}

/// One whole record at the start of `data` and its length, or None.
fn decode(data: &[u8]) -> Option<(&str, Option<&[u8]>, usize)> {
    let len = header_len(data)?;
    let body = data.get(HEADER..HEADER.checked_add(len)?)?;
    if crc32fast::hash(body) != word(data, 8)? {
        return None;
    }
    let (aor, value) = body_parts(body)?;
    Some((aor, value, HEADER + len))
}

/// [`decode`] for the first format.
fn decode_v1(data: &[u8]) -> Option<(&str, Option<&[u8]>, usize)> {
    let len = word(data, 0)? as usize;
    let body = data.get(V1_HEADER..V1_HEADER.checked_add(len)?)?;
    if crc32fast::hash(body) != word(data, 4)? {
        return None;
    }
    let (aor, value) = body_parts(body)?;
    Some((aor, value, V1_HEADER + len))
}

/// Whether the bytes at the end of a segment are the start of a write cut short: a whole,
/// right header whose body goes past the end, or a piece of a header that starts as one.
fn torn(tail: &[u8]) -> bool {
    if tail.len() < HEADER {
        let n = tail.len().min(SYNC.len());
        return tail[..n] == SYNC[..n];
    }
    header_len(tail).is_some_and(|len| HEADER + len > tail.len())
}

/// What reading a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub records: usize,
    /// Bytes of a write cut short at the end (never acknowledged), cut off.
    pub cut: u64,
    /// What is no whole record and no torn write: acknowledged writes lost.
    pub damaged: Vec<Damage>,
}

/// Bytes of a segment that are no whole record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub bytes: u64,
    /// The AOR of the record that stood there, if that part of it can still be read:
    /// its bindings may now be as an older record left it.
    pub aor: Option<String>,
}

/// The AOR a damaged record names, if its header and AOR can still be read.
fn readable_aor(damaged: &[u8], header: usize) -> Option<String> {
    let len = word(damaged, header)? as usize;
    let aor = damaged.get(header + 4..header + 4 + len.min(1024))?;
    let aor = std::str::from_utf8(aor).ok()?;
    (!aor.is_empty() && aor.len() == len && aor.chars().all(|c| !c.is_control()))
        .then(|| aor.to_owned())
}

/// How a segment is read: what to do with what is not whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Cut off the end that is no whole record, keeping a copy of a damaged segment as
    /// `<segment>.damaged` first (opening the store).
    Repair,
    /// Change nothing (`sipreg store check`).
    Look,
}

/// Reads the segment at `path`, handing each whole record to `f` in order.
///
/// # Errors
/// The file cannot be read, cut or copied.
pub fn replay(
    path: &Path,
    mode: Mode,
    mut f: impl FnMut(&str, Option<&[u8]>),
) -> io::Result<Replayed> {
    let data = std::fs::read(path)?;
    if data.is_empty() {
        // A segment starts with its magic, written and synced when it is created: an empty
        // one was cut to nothing (its records lost), or a crash came between the two.
        return Ok(Replayed {
            records: 0,
            cut: 0,
            damaged: vec![Damage {
                offset: 0,
                bytes: 0,
                aor: None,
            }],
        });
    }
    // This format by its magic, or by a record of it when the magic itself was damaged.
    let v2 = data.starts_with(MAGIC)
        || memchr::memmem::find_iter(&data, SYNC).any(|i| decode(&data[i..]).is_some());
    type Decoder = for<'a> fn(&'a [u8]) -> Option<(&'a str, Option<&'a [u8]>, usize)>;
    let (decode, header): (Decoder, usize) = if v2 {
        (decode, HEADER)
    } else {
        (decode_v1, V1_HEADER)
    };
    let start = if data.starts_with(MAGIC) {
        MAGIC.len()
    } else {
        0
    };
    let (mut at, mut records, mut damaged) = (start, 0, Vec::new());
    let mut cut = 0;
    while at < data.len() {
        if let Some((aor, value, n)) = decode(&data[at..]) {
            f(aor, value);
            at += n;
            records += 1;
            continue;
        }
        // The next whole record: at a sync mark (this format), at any byte (the first).
        let next = if v2 {
            memchr::memmem::find_iter(&data[at + 1..], SYNC)
                .map(|i| at + 1 + i)
                .find(|&i| decode(&data[i..]).is_some())
        } else {
            (at + 1..data.len()).find(|&i| decode(&data[i..]).is_some())
        };
        let end = next.unwrap_or(data.len());
        if next.is_none() && (!v2 || torn(&data[at..])) {
            cut = (data.len() - at) as u64; // a write cut short
            break;
        }
        damaged.push(Damage {
            offset: at as u64,
            bytes: (end - at) as u64,
            aor: readable_aor(&data[at..end], header),
        });
        at = end;
    }
    let len = data.len() as u64;
    // What stays: everything before a torn write, or before damage at the very end.
    let keep = match damaged.last() {
        Some(d) if d.offset + d.bytes == len => d.offset,
        _ => len - cut,
    };
    if mode == Mode::Repair {
        if !damaged.is_empty() {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".damaged");
            std::fs::write(PathBuf::from(aside), &data)?;
        }
        if keep < len {
            let file = OpenOptions::new().write(true).open(path)?;
            file.set_len(keep)?;
            file.sync_all()?;
        }
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
        let r = replay(path, Mode::Repair, |aor, v| {
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
        // a flipped bit in the second record's body: its header is whole and right, its
        // body complete: damage at the end, not a torn write (acknowledged, now lost)
        let mut bad = data.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        let (seen, r) = read(&path);
        assert_eq!((seen.len(), r.records, r.cut), (1, 1, 0));
        assert_eq!(r.damaged.len(), 1);
        assert_eq!(r.damaged[0].offset, whole);
        assert_eq!(r.damaged[0].aor.as_deref(), Some("b@x"));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        let mut aside = path.as_os_str().to_owned();
        aside.push(".damaged");
        assert_eq!(
            std::fs::read(PathBuf::from(aside)).unwrap(),
            bad,
            "kept aside"
        );
        // a write cut inside its header is torn too
        std::fs::write(&path, &data[..whole as usize + 6]).unwrap();
        let (_, r) = read(&path);
        assert_eq!((r.cut, r.damaged.len()), (6, 0));
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
        let m = MAGIC.len();
        let record = (data.len() - m) / 10;
        // the value of the fifth record damaged (its header and AOR intact), then the
        // length of the seventh (its header checksum fails: the length is not believed)
        data[m + 4 * record + 40] ^= 0xff;
        data[m + 6 * record + 5] ^= 0x55;
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
        assert_eq!(r.damaged[0].offset, (m + 4 * record) as u64);
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

    /// Random bytes over the start of the log (its magic, its first records): the records
    /// after them are found at their sync marks, and the damage is told.
    #[test]
    fn damage_at_the_start_loses_only_what_it_covers() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("loc.redb");
        let mut s = Segment::create(&store, 1).unwrap();
        for i in 0..50 {
            let aor = format!("user{i}@x");
            s.append([(aor.as_str(), Some(&[7u8; 100][..]))]).unwrap();
        }
        let path = segment_path(&store, 1);
        let mut data = std::fs::read(&path).unwrap();
        let record = (data.len() - MAGIC.len()) / 50;
        for (i, b) in data.iter_mut().enumerate().take(MAGIC.len() + 64) {
            *b = (i * 131 % 251) as u8;
        }
        std::fs::write(&path, &data).unwrap();
        let (seen, r) = read(&path);
        // the magic and the first record are lost, no more
        let lost = 64usize.div_ceil(record);
        assert_eq!(seen.len(), 50 - lost, "{r:?}");
        assert_eq!(seen[0].0, format!("user{lost}@x"));
        assert_eq!(r.damaged.len(), 1);
        assert_eq!(r.cut, 0);
    }

    /// Zeros over the middle, and a segment cut to nothing: both told, never silent.
    #[test]
    fn zeros_and_an_empty_segment_are_told() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("loc.redb");
        let mut s = Segment::create(&store, 1).unwrap();
        for i in 0..20 {
            let aor = format!("user{i}@x");
            s.append([(aor.as_str(), Some(&[9u8; 80][..]))]).unwrap();
        }
        let path = segment_path(&store, 1);
        let mut data = std::fs::read(&path).unwrap();
        let mid = data.len() / 2;
        data[mid..mid + 64].fill(0);
        std::fs::write(&path, &data).unwrap();
        let (seen, r) = read(&path);
        assert!(seen.len() >= 18 && seen.len() < 20, "{r:?}");
        assert_eq!(r.damaged.len(), 1);
        std::fs::write(&path, b"").unwrap();
        let (seen, r) = read(&path);
        assert!(seen.is_empty());
        assert_eq!(
            r.damaged,
            vec![Damage {
                offset: 0,
                bytes: 0,
                aor: None
            }]
        );
    }

    /// Segments written before the sync marks still read.
    #[test]
    fn the_first_format_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loc.redb.wal.1");
        let mut data = Vec::new();
        for (aor, value) in [("a@x", Some(&b"one"[..])), ("b@x", None)] {
            let mut body = (aor.len() as u32).to_le_bytes().to_vec();
            body.extend_from_slice(aor.as_bytes());
            match value {
                None => body.push(0),
                Some(v) => {
                    body.push(1);
                    body.extend_from_slice(v);
                }
            }
            data.extend_from_slice(&(body.len() as u32).to_le_bytes());
            data.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            data.extend_from_slice(&body);
        }
        std::fs::write(&path, &data).unwrap();
        let (seen, r) = read(&path);
        assert_eq!(
            seen,
            vec![("a@x".into(), Some(b"one".to_vec())), ("b@x".into(), None)]
        );
        assert_eq!((r.records, r.cut, r.damaged.len()), (2, 0, 0));
    }

    #[test]
    fn looking_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("loc.redb");
        let mut s = Segment::create(&store, 1).unwrap();
        s.append([("a@x", Some(&b"kept"[..]))]).unwrap();
        let path = segment_path(&store, 1);
        let mut data = std::fs::read(&path).unwrap();
        data.extend_from_slice(b"junk that is no record at all");
        std::fs::write(&path, &data).unwrap();
        let r = replay(&path, Mode::Look, |_, _| {}).unwrap();
        assert_eq!((r.records, r.damaged.len()), (1, 1));
        assert_eq!(std::fs::read(&path).unwrap(), data);
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
