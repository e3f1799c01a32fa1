//! Any bytes as a write-ahead log segment, read as `sipreg store check` reads it, and
//! after its magic (so that records are parsed too).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("loc.redb");
    let mut with_magic = b"SIPREGW2".to_vec();
    with_magic.extend_from_slice(data);
    for (n, bytes) in [(1, data), (2, &with_magic[..])] {
        std::fs::write(dir.path().join(format!("loc.redb.wal.{n}")), bytes).unwrap();
    }
    let report = sipreg::store::repair::check(&store).unwrap();
    let _ = report.text();
});
