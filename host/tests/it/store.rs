//! The location stores across restarts and crashes: the `sipreg` binary killed with
//! SIGKILL under SIPp load and started again on the same file.

use crate::process::Process;
use crate::sippkit::{Background, register_each_call};
use sipreg::config::Transport;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn write_config(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("sipreg.toml"),
        format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\"]\ndomains = [\"127.0.0.1\"]\n\n[registrar]\nmin_expires = 1\n\n[auth]\nchallenge = \"off\"\n\n[store]\ntype = \"embedded\"\npath = \"data/location.redb\"\n{extra}"
        ),
    )
    .unwrap();
}

/// The contacts a REGISTER without Contact (a query) lists for `user`.
fn query(client: &UdpSocket, server: SocketAddr, user: &str, n: u32) -> Vec<String> {
    let req = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKq{n}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=q\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: query-{n}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
        client.local_addr().unwrap()
    );
    client.send_to(req.as_bytes(), server).unwrap();
    let mut buf = [0u8; 4096];
    let len = client.recv(&mut buf).expect("an answer to the query");
    let text = String::from_utf8_lossy(&buf[..len]).to_string();
    assert!(text.starts_with("SIP/2.0 200 "), "{text}");
    text.lines()
        .filter(|l| l.starts_with("Contact:"))
        .map(str::to_owned)
        .collect()
}

fn client() -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

/// SIGKILL during SIPp load; every binding SIPp saw a 200 for is there after the restart.
#[test]
fn a_binding_answered_200_survives_kill_9() {
    stop_under_load_and_restart(Process::kill);
}

/// SIGTERM during SIPp load: sipreg stops by itself (exit 0) once the store is flushed, and
/// every binding SIPp saw a 200 for is there after the restart.
#[test]
fn sigterm_under_load_stops_gracefully_and_keeps_every_binding() {
    stop_under_load_and_restart(|p| {
        let status = p
            .terminate(Duration::from_secs(10))
            .expect("sipreg stops within 10 s of SIGTERM");
        assert!(status.success(), "{status:?}");
        assert!(
            p.next_with("location store is flushed", Duration::from_secs(2))
                .is_some(),
            "the flush is logged"
        );
    });
}

/// Starts sipreg on an embedded store, stops it with `stop` in the middle of a SIPp load,
/// starts it again on the same file and checks every binding answered 200.
fn stop_under_load_and_restart(stop: impl FnOnce(&mut Process)) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    let (mut server, addr) = Process::run(dir.path());
    let calls = 4000;
    let load = Background::start(
        addr,
        Transport::Udp,
        &register_each_call(3600, false),
        &["-m", &calls.to_string(), "-r", "1000", "-trace_logs"],
    );
    // Kill it once some REGISTERs were answered, in the middle of the load.
    server.wait_for("Registration added");
    std::thread::sleep(Duration::from_millis(1200));
    stop(&mut server);
    let (_, logs) = load.finish_with_logs();
    let stored: Vec<&str> = logs
        .lines()
        .filter_map(|l| l.trim().strip_prefix("stored "))
        .collect();
    assert!(
        stored.len() > 100 && stored.len() < calls,
        "the kill came in the middle of the load: {} of {calls} answered 200",
        stored.len()
    );
    let (again, addr) = Process::run(dir.path());
    let loaded = again
        .earlier("location store loaded")
        .expect("the store is loaded before the server listens");
    let bindings: usize = loaded
        .split("bindings=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{loaded}"));
    assert!(bindings >= stored.len(), "{loaded}");
    let c = client();
    for (n, user) in stored.iter().enumerate() {
        let contacts = query(&c, addr, user, n as u32);
        assert!(
            contacts.len() == 1 && contacts[0].contains(&format!("<sip:{user}@127.0.0.1:")),
            "{user} was answered 200 before the kill and is gone after it: {contacts:?}"
        );
    }
}

/// A binding that expired while the server was down is removed by the first tick after
/// the start, and reported once: not again after the next restart.
#[test]
fn expired_while_down_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    let (mut server, addr) = Process::run(dir.path());
    let c = client();
    let reg = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKshort\r\nMax-Forwards: 70\r\nFrom: <sip:brief@127.0.0.1>;tag=b\r\nTo: <sip:brief@127.0.0.1>\r\nCall-ID: brief-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:brief@127.0.0.1:5999>;expires=2\r\nContent-Length: 0\r\n\r\n";
    c.send_to(reg.as_bytes(), addr).unwrap();
    let mut buf = [0u8; 2048];
    let len = c.recv(&mut buf).unwrap();
    assert!(buf[..len].starts_with(b"SIP/2.0 200 "));
    server.kill();
    std::thread::sleep(Duration::from_millis(2500));
    let (mut again, addr) = Process::run(dir.path());
    let deleted = again.wait_for("Registration deleted");
    assert!(
        deleted.contains("brief@127.0.0.1") && deleted.contains("Registration expired"),
        "{deleted}"
    );
    assert!(query(&c, addr, "brief", 1).is_empty());
    drop(again);
    let (mut third, _) = Process::run(dir.path());
    let loaded = third.earlier("location store loaded").unwrap();
    assert!(loaded.contains("bindings=0"), "{loaded}");
    assert_eq!(
        third.next_with("Registration deleted", Duration::from_millis(2500)),
        None,
        "reported a second time"
    );
}

/// Over UDP and TCP, every REGISTER through the embedded store gets its 200 (sent by the
/// committer once on disk), and the bindings are in the file when it is opened again.
#[test]
fn udp_and_tcp_replies_come_after_the_commit() {
    use sipreg::store::{LocationStore, embedded};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loc.redb");
    let cfg = sipreg::config::parse(
        "[server]\nlisten = [\"udp:127.0.0.1:0\", \"tcp:127.0.0.1:0\"]\ndomains = [\"127.0.0.1\"]\n\n[auth]\nchallenge = \"off\"\n",
        "embedded.toml",
    )
    .unwrap();
    let location: Arc<dyn LocationStore> = Arc::new(
        embedded::open(&path, std::time::Duration::ZERO)
            .unwrap()
            .location,
    );
    let core = crate::support::app_on(&cfg, location.clone()).core;
    let served = crate::support::serve(&cfg, core);
    for t in [Transport::Udp, Transport::Tcp] {
        crate::sippkit::sipp(
            served.running.addr(t).unwrap(),
            t,
            &register_each_call(600, false),
            &["-m", "300", "-r", "300"],
        )
        .unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    // u1..u300 twice, from two SIPp ports: two bindings each
    assert_eq!(location.count().unwrap(), 600);
    drop(served);
    // The readers and tasks let go of the core within moments; the last owner closes the file.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&location) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the server kept the store"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(location);
    let again = embedded::open(&path, std::time::Duration::ZERO).unwrap();
    assert_eq!((again.aors, again.bindings), (300, 600));
}

/// A journal whose every write fails, as a full disk would.
#[derive(Debug)]
struct FullDisk;

impl sipreg::store::location::Journal for FullDisk {
    fn write(&self, _aor: &str, _live: &[sipreg::store::Binding]) -> sipreg::store::Durable {
        let d = sipreg::store::Durable::pending();
        d.settle(false);
        d
    }
}

/// A change that does not reach the disk is answered 500, never 200.
#[test]
fn a_failed_commit_is_answered_500() {
    use crate::support::Register;
    let cfg = sipreg::config::parse(
        "[server]\nlisten = [\"udp:127.0.0.1:0\"]\ndomains = [\"example.com\"]\n\n[auth]\nchallenge = \"off\"\n",
        "full.toml",
    )
    .unwrap();
    let location = Arc::new(sipreg::store::Location::with_journal(Box::new(FullDisk)));
    let core = crate::support::app_on(&cfg, location).core;
    let mut out = sipreg::core::Output::default();
    let req = Register::new("zed@example.com")
        .contact("<sip:zed@192.0.2.10>")
        .text();
    let packet = sipreg::core::Packet {
        bytes: req.as_bytes(),
        source: "192.0.2.10:5060".parse().unwrap(),
        transport: Transport::Udp,
        now_ms: crate::support::now_ms(),
        peer_cert: None,
    };
    core.handle(packet, &mut out);
    assert!(out.durable.is_some(), "the 200 waits for the disk");
    assert!(String::from_utf8_lossy(&out.reply).starts_with("SIP/2.0 200 OK\r\n"));
    out.settle();
    let sent = String::from_utf8_lossy(&out.reply);
    assert!(
        sent.starts_with("SIP/2.0 500 Location store failure\r\n"),
        "{sent}"
    );
}

/// The store file of `n` AORs, each with one binding, cleanly closed; its bytes.
fn store_of(path: &Path, n: usize) -> Vec<u8> {
    let opened = sipreg::store::embedded::open(path, Duration::ZERO).unwrap();
    for i in 0..n {
        let contact = format!("sip:u{i}@192.0.2.1");
        let u = sipreg::store::Update {
            call_id: "damage",
            cseq: 1,
            branch: 1,
            source: "192.0.2.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            path: None,
            max_contacts: 5,
            evict: sipreg::config::Evict::Oldest,
            now_ms: crate::support::now_ms(),
            remove_all: false,
            changes: vec![sipreg::store::Change {
                contact: &contact,
                key: &contact,
                expires: 3600,
                q: None,
                instance: None,
                reg_id: None,
                natted: false,
                registration_id: uuid::Uuid::new_v4(),
            }],
        };
        let applied = opened.location.update(&format!("u{i}@x"), &u).unwrap();
        assert!(applied.durable.unwrap().wait());
    }
    drop(opened); // the log checkpointed into the file
    std::fs::read(path).unwrap()
}

/// `bytes` with `n` pseudo-random bytes written over them from `at` on.
fn scribbled(bytes: &[u8], at: usize, n: usize) -> Vec<u8> {
    let mut damaged = bytes.to_vec();
    let mid = at.min(damaged.len() - n);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in &mut damaged[mid..mid + n] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    damaged
}

/// A damaged store file is never taken for an empty one, and never a panic: opening it
/// fails with a message naming the file and what to do (issue 18, finding 5: on c01b7a9 a
/// file cut to 0 bytes started with no binding and said nothing, and 4,096 random bytes in
/// the middle ended the process with a panic in redb).
#[test]
fn a_damaged_store_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loc.redb");
    let good = store_of(&path, 2_500);
    std::fs::write(&path, b"").unwrap();
    let e = sipreg::store::embedded::open(&path, Duration::ZERO)
        .unwrap_err()
        .0;
    assert!(
        e.contains(&path.display().to_string()) && e.contains("empty (0 bytes)"),
        "{e}"
    );
    // 4,096 random bytes at every 16th page: each open fails naming the file (redb's
    // panics caught among them: "entered unreachable code"), or the damage fell where
    // redb keeps nothing and every binding is there; never a panic, never a loss.
    let mut refused = 0;
    for at in (0..good.len()).step_by(16 * 4096) {
        std::fs::write(&path, scribbled(&good, at, 4096)).unwrap();
        let opened =
            std::panic::catch_unwind(|| sipreg::store::embedded::open(&path, Duration::ZERO));
        match opened {
            Ok(Err(e)) => {
                assert!(e.0.contains(&path.display().to_string()), "{}", e.0);
                refused += 1;
            }
            Ok(Ok(o)) => assert_eq!(o.bindings, 2_500, "at {at}: nothing lost silently"),
            Err(_) => panic!("at {at}: opening a damaged store file panicked"),
        }
    }
    assert!(
        refused > 0,
        "some damage hit the pages that hold the bindings"
    );
}

/// `sipreg store check|recover` with the binary, on a store with `n` registered users
/// (each with one binding) left by a SIGKILL, so that the log still holds them.
fn killed_with_a_log(dir: &Path, n: u32) -> (SocketAddr, std::path::PathBuf) {
    write_config(dir, "commit_delay_ms = 0\n");
    let (mut server, addr) = Process::run(dir);
    let c = client();
    for i in 0..n {
        let req = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKk{i}\r\nMax-Forwards: 70\r\nFrom: <sip:user{i}@127.0.0.1>;tag=k\r\nTo: <sip:user{i}@127.0.0.1>\r\nCall-ID: kill-{i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:user{i}@{me}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
            me = c.local_addr().unwrap()
        );
        c.send_to(req.as_bytes(), addr).unwrap();
        let mut buf = [0u8; 2048];
        let len = c.recv(&mut buf).unwrap();
        assert!(buf[..len].starts_with(b"SIP/2.0 200 "));
    }
    server.kill();
    (addr, dir.join("data/location.redb"))
}

fn sipreg(args: &[&str], dir: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Damage in the middle of the log: `store check` names the segment, the offset and the
/// AOR, and exits 1; `run` starts, keeps every other binding, says so in an error line and
/// keeps the damaged segment aside (issue 18, finding 5: on c01b7a9, 64 random bytes in
/// the middle of the log dropped half of the bindings, called "cut short").
#[test]
fn damage_in_the_log_is_checked_told_and_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = killed_with_a_log(dir.path(), 60);
    let segments: Vec<std::path::PathBuf> = std::fs::read_dir(store.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".wal."))
        .collect();
    let segment = segments
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    let good = std::fs::read(&segment).unwrap();
    assert!(
        good.len() > 60 * 100,
        "the log holds the 60 registrations: {}",
        good.len()
    );
    let cfg = dir.path().join("sipreg.toml");
    let cfg = cfg.to_str().unwrap();
    let (code, report) = sipreg(&["store", "check", "--config", cfg], dir.path());
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("clean"), "{report}");
    std::fs::write(&segment, scribbled(&good, good.len() / 2, 64)).unwrap();
    let (code, report) = sipreg(&["store", "check", "--config", cfg], dir.path());
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains(&segment.display().to_string()) && report.contains("DAMAGED at offset"),
        "{report}"
    );
    // one record lost; its AOR is named where its header survived
    assert!(report.contains(": 59 records"), "{report}");
    assert!(
        report.contains("may be as an older record left it")
            || report.contains("the AOR cannot be read"),
        "{report}"
    );
    assert_eq!(
        std::fs::read(&segment).unwrap().len(),
        good.len(),
        "check changed nothing"
    );
    let (mut again, addr) = Process::run(dir.path());
    let damage = again.earlier("log damaged").map(str::to_owned);
    let damage = damage.unwrap_or_else(|| again.wait_for("log damaged"));
    assert!(
        damage.contains("ERROR") && damage.contains("offset="),
        "{damage}"
    );
    let loaded = again.earlier("location store loaded").unwrap().to_owned();
    let bindings: usize = loaded
        .split("bindings=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        (58..=60).contains(&bindings),
        "64 bytes cost one or two records: {loaded}"
    );
    let mut aside = segment.as_os_str().to_owned();
    aside.push(".damaged");
    assert!(
        std::path::PathBuf::from(aside).exists(),
        "the damaged segment is kept aside"
    );
    let c = client();
    assert_eq!(query(&c, addr, "user0", 1).len(), 1);
    assert_eq!(query(&c, addr, "user59", 2).len(), 1);
}

/// A store file cut to 0 bytes or damaged: `run` refuses it and says what to do;
/// `store recover` moves it aside, keeps what it and the log still hold, and says how
/// many bindings; `run` then starts with them.
#[test]
fn a_damaged_store_file_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (_, store) = killed_with_a_log(dir.path(), 40);
    let cfg = dir.path().join("sipreg.toml");
    let cfg = cfg.to_str().unwrap();
    std::fs::write(&store, b"").unwrap();
    let (code, refused) = sipreg(&["run", "--config", cfg], dir.path());
    assert_ne!(code, 0);
    assert!(
        refused.contains("empty (0 bytes)") && refused.contains("sipreg store recover"),
        "{refused}"
    );
    let (code, report) = sipreg(&["store", "check", "--config", cfg], dir.path());
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("DAMAGED: the file is empty"), "{report}");
    let (code, done) = sipreg(&["store", "recover", "--config", cfg], dir.path());
    assert_eq!(code, 0, "{done}");
    // The killed server's log still held the 40 (its file had taken none of them in).
    assert!(done.contains("kept 40 bindings of 40 AORs"), "{done}");
    assert!(done.contains("moved to"), "{done}");
    let (code, report) = sipreg(&["store", "check", "--config", cfg], dir.path());
    assert_eq!(code, 0, "{report}");

    // A file that took everything in (a clean stop), then damaged where redb reads: what
    // it still yields is kept.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    write_config(dir.path(), "");
    let path = dir.path().join("data/location.redb");
    let good = store_of(&path, 2_500);
    let cfg = dir.path().join("sipreg.toml");
    let cfg = cfg.to_str().unwrap();
    let mut recovered_some = false;
    for at in (0..good.len()).step_by(16 * 4096) {
        std::fs::write(&path, scribbled(&good, at, 4096)).unwrap();
        let (code, _) = sipreg(&["store", "check", "--config", cfg], dir.path());
        if code == 0 {
            continue; // the damage fell where redb keeps nothing it reads
        }
        let (code, done) = sipreg(&["store", "recover", "--config", cfg], dir.path());
        assert_eq!(code, 0, "at {at}: {done}");
        let kept: usize = done
            .split("kept ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{done}"));
        assert!(kept <= 2_500, "{done}");
        eprintln!("damage at {at}: {}", done.trim());
        recovered_some |= kept > 0;
        let (code, report) = sipreg(&["store", "check", "--config", cfg], dir.path());
        assert_eq!(code, 0, "after recover at {at}: {report}");
        for e in std::fs::read_dir(dir.path().join("data")).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().contains(".damaged-") {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    assert!(recovered_some, "some damage left bindings to read back");
}
