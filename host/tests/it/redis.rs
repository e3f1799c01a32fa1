//! The Redis store against a real `redis-server`: the same answers as the memory store,
//! `sip.kv` in Redis, two `sipreg` nodes sharing it, and Redis lost during SIPp load.

use crate::process::Process;
use crate::redis_server::RedisServer;
use crate::sippkit::{Background, register_each_call};
use sipreg::config::Transport;
use sipreg::kv::{KvError, KvStore, KvValue};
use sipreg::store::redis::{Redis, RedisKv, RedisLocation};
use sipreg::store::{Change, Event, Location, LocationStore, Update, UpdateError};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// A client of `r` whose timeout leaves room for a loaded machine (these tests compare
/// answers; the timeouts have tests of their own).
fn pool(r: &RedisServer) -> Arc<Redis> {
    Arc::new(Redis::new(&r.url(), Duration::from_secs(2)).unwrap())
}

/// What an update did, in terms both stores must agree on.
fn summary(r: &Result<sipreg::store::Applied, UpdateError>) -> String {
    match r {
        Err(e) => format!("{e:?}"),
        Ok(a) => {
            let mut live: Vec<String> = a
                .bindings
                .iter()
                .map(|b| format!("{} q={:?} exp=+{}", b.key, b.q, b.expires_at_ms - base()))
                .collect();
            live.sort();
            let events: Vec<String> = a
                .events
                .iter()
                .map(|e| match e {
                    Event::Added(b) => format!("added {}", b.key),
                    Event::Refreshed(b) => format!("refreshed {}", b.key),
                    Event::Removed(b, why) => format!("removed {} {why:?}", b.key),
                })
                .collect();
            format!("{live:?} {events:?}")
        }
    }
}

/// A contact of a step: URI, expires, and `+sip.instance` with `reg-id` for an outbound flow.
type Contact = (&'static str, u32, Option<(&'static str, &'static str)>);

struct Step {
    call_id: &'static str,
    cseq: u32,
    now_ms: u64,
    remove_all: bool,
    contacts: Vec<Contact>,
}

fn step(call_id: &'static str, cseq: u32, now_ms: u64, contacts: Vec<(&'static str, u32)>) -> Step {
    Step {
        call_id,
        cseq,
        now_ms,
        remove_all: false,
        contacts: contacts.into_iter().map(|(c, e)| (c, e, None)).collect(),
    }
}

/// The steps' times are offsets from one start in real time: Redis expires keys on its
/// own clock.
fn base() -> u64 {
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BASE.get_or_init(crate::support::now_ms)
}

fn apply(store: &dyn LocationStore, aor: &str, s: &Step) -> String {
    let now_ms = base() + s.now_ms;
    let changes = s
        .contacts
        .iter()
        .map(|(c, expires, flow)| Change {
            contact: c,
            key: c,
            expires: *expires,
            q: Some(500),
            instance: flow.map(|f| f.0),
            reg_id: flow.map(|f| f.1),
            natted: false,
            registration_id: Uuid::new_v4(),
        })
        .collect();
    let u = Update {
        call_id: s.call_id,
        cseq: s.cseq,
        branch: u64::from(s.cseq) << 40 | s.now_ms,
        source: "192.0.2.1:5060".parse().unwrap(),
        transport: Transport::Udp,
        path: None,
        max_contacts: 2,
        evict: sipreg::config::Evict::Oldest,
        now_ms,
        remove_all: s.remove_all,
        changes,
    };
    summary(&store.update(aor, &u))
}

/// update.lua runs the rules of store/location.rs: the same sequence of REGISTERs gets the
/// same answers, bindings and events from both.
#[test]
fn redis_answers_as_the_memory_store_does() {
    let server = RedisServer::start();
    let redis = RedisLocation::new(pool(&server), "parity");
    let memory = Location::new();
    let flow = |c, reg_id| (c, 60, Some(("\"<urn:uuid:1>\"", reg_id)));
    let steps = vec![
        step("c1", 1, 1_000, vec![("sip:a@1", 60)]),
        step("c1", 2, 2_000, vec![("sip:a@1", 120)]), // refresh
        step("c1", 2, 2_500, vec![("sip:a@1", 120)]), // replay, another branch: out of order
        step("c1", 2, 2_000, vec![("sip:a@1", 120)]), // retransmission: same branch
        step("c2", 1, 3_000, vec![("sip:a@2", 60)]),
        step("c3", 1, 4_000, vec![("sip:a@3", 60)]), // max_contacts 2: a@2 or a@1 evicted
        step(
            "c4",
            1,
            5_000,
            vec![("sip:a@4", 60), ("sip:a@5", 60), ("sip:a@6", 60)],
        ), // too many
        step("c3", 2, 6_000, vec![("sip:a@3", 0), ("sip:a@7", 60)]), // remove one, add one
        Step {
            contacts: vec![flow("sip:a@10.0.0.1", "1")],
            ..step("c5", 1, 7_000, vec![])
        },
        Step {
            contacts: vec![flow("sip:a@10.0.0.2", "1")],
            ..step("c6", 1, 8_000, vec![])
        }, // the same flow from a new address replaces it
        Step {
            remove_all: true,
            ..step("c3", 2, 9_000, vec![])
        }, // Contact: * with a CSeq not higher than a@7's: refused, nothing removed
        Step {
            remove_all: true,
            ..step("c9", 1, 10_000, vec![])
        },
        step("c1", 9, 200_000, vec![("sip:a@1", 60)]), // the old ones expired meanwhile
    ];
    for (i, s) in steps.iter().enumerate() {
        let m = apply(&memory, "a@x", s);
        let r = apply(&redis, "a@x", s);
        assert_eq!(r, m, "step {i}: redis and memory differ");
        if i == 10 {
            assert_eq!(m, "OutOfOrder");
        }
    }
    assert_eq!(redis.lookup("a@x", base() + 200_000).unwrap().len(), 1);
    // the admin listing walks both alike (a SCAN in Redis), live bindings only
    apply(
        &memory,
        "other@x",
        &step("o1", 1, 199_000, vec![("sip:o@1", 60)]),
    );
    apply(
        &redis,
        "other@x",
        &step("o1", 1, 199_000, vec![("sip:o@1", 60)]),
    );
    let listed = |store: &dyn LocationStore| {
        let mut all = Vec::new();
        store
            .scan(base() + 200_000, &mut |aor, b| {
                all.push((aor.to_owned(), b.key.to_string()))
            })
            .unwrap();
        all.sort();
        all
    };
    assert_eq!(listed(&redis), listed(&memory));
    assert_eq!(
        listed(&redis),
        [
            ("a@x".to_owned(), "sip:a@1".to_owned()),
            ("other@x".to_owned(), "sip:o@1".to_owned())
        ]
    );
    assert!(
        redis
            .remove(
                "other@x",
                &redis.lookup("other@x", base() + 200_000).unwrap()[0].registration_id
            )
            .unwrap()
            .is_some()
    );
    // expiry is claimed once (the others were removed by Contact: *)
    let gone = redis.expire_due(base() + 300_000);
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert!(redis.expire_due(base() + 300_000).is_empty());
    // removal by registration id
    apply(&redis, "b@x", &step("d1", 1, 0, vec![("sip:b@1", 60)]));
    let id = redis.lookup("b@x", base()).unwrap()[0].registration_id;
    assert_eq!(&*redis.remove("b@x", &id).unwrap().unwrap().key, "sip:b@1");
    assert!(redis.remove("b@x", &id).unwrap().is_none());
    assert_eq!(redis.count().unwrap(), 0);
}

#[test]
fn kv_in_redis_keeps_types_windows_and_errors() {
    let server = RedisServer::start();
    let kv = RedisKv::new(pool(&server), "kvtest");
    kv.set("s", KvValue::Str("x y".into()), None, 0).unwrap();
    assert_eq!(kv.get("s", 0).unwrap(), Some(KvValue::Str("x y".into())));
    assert_eq!(
        kv.incr("s", 1, None, 0),
        Err(KvError::NotInteger("s".into()))
    );
    assert_eq!(kv.incr("n", 2, Some(0.3), 0), Ok(2));
    assert_eq!(kv.incr("n", 3, Some(100.0), 0), Ok(5), "the window is kept");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(kv.get("n", 0).unwrap(), None, "expired by Redis");
    assert_eq!(kv.incr("n", 1, None, 0), Ok(1));
    assert!(kv.delete("n", 0).unwrap());
    assert!(!kv.delete("n", 0).unwrap());
    kv.set("b", KvValue::Bool(true), Some(0.0), 0).unwrap();
    assert_eq!(kv.get("b", 0).unwrap(), None, "a ttl of 0 is up already");
    drop(server);
    assert!(matches!(kv.get("s", 0), Err(KvError::Unavailable(_))));
}

/// A node's folder: its configuration (Redis at `url` under `prefix`, a shared nonce
/// secret, the lockout script) and a copy of `scripts/lockout.lua`.
fn node(url: &str, prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/lockout.lua");
    std::fs::copy(script, dir.path().join("lockout.lua")).unwrap();
    write_node_config(dir.path(), url, prefix);
    dir
}

fn write_node_config(dir: &Path, url: &str, prefix: &str) {
    let mut aliases = String::new();
    for (user, password) in [
        ("alice", "wonderland"),
        ("bob", "builder"),
        ("mallory", "right"),
    ] {
        aliases.push_str(&format!(
            "[[aliases]]\nalias = \"{user}@127.0.0.1\"\npassword = \"{password}\"\n\n"
        ));
    }
    std::fs::write(
        dir.join("sipreg.toml"),
        format!(
            r#"[server]
listen = ["udp:127.0.0.1:0"]
domains = ["127.0.0.1"]

[registrar]
min_expires = 1

[auth]
challenge = "www"
realm = "127.0.0.1"
algorithms = ["MD5"]
nonce_secret = "one secret for every node"

[store]
type = "redis"
url = "{url}"
prefix = "{prefix}"
timeout_ms = 300

[admin]
listen = "127.0.0.1:0"

[[hooks]]
type = "lua"
script = "lockout.lua"
config = {{ attempts = 3, window_seconds = 60, lock_seconds = 60 }}

{aliases}"#
        ),
    )
    .unwrap();
}

/// A device: a UDP socket that registers and receives what is routed to it.
struct Device {
    socket: UdpSocket,
    user: &'static str,
    n: u32,
}

impl Device {
    fn new(user: &'static str) -> Device {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Device { socket, user, n: 0 }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        let len = self.socket.recv(&mut buf).expect("a message");
        String::from_utf8_lossy(&buf[..len]).to_string()
    }

    /// A REGISTER to `node` (with `auth`, an Authorization value, if any); the answer.
    fn register(
        &mut self,
        node: SocketAddr,
        contact: bool,
        expires: u32,
        auth: Option<&str>,
    ) -> String {
        self.n += 1;
        let (user, n, me) = (self.user, self.n, self.addr());
        let mut req = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{user}{n}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag={n}\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {user}-{}\r\nCSeq: {n} REGISTER\r\n",
            me.port()
        );
        if contact {
            req.push_str(&format!("Contact: <sip:{user}@{me}>;expires={expires}\r\n"));
        }
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: {a}\r\n"));
        }
        req.push_str("Content-Length: 0\r\n\r\n");
        self.socket.send_to(req.as_bytes(), node).unwrap();
        self.recv()
    }

    /// The WWW-Authenticate value of a 401 from `node`.
    fn challenge(&mut self, node: SocketAddr) -> String {
        let answer = self.register(node, true, 60, None);
        assert!(answer.starts_with("SIP/2.0 401 "), "{answer}");
        header(&answer, "WWW-Authenticate").to_owned()
    }
}

fn header<'a>(msg: &'a str, name: &str) -> &'a str {
    msg.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map_or("", str::trim)
}

fn status(msg: &str) -> &str {
    msg.lines().next().unwrap_or("")
}

/// Two nodes on two ports sharing one Redis: registered through A, found and routed to
/// through B with A's nonce; a lockout counted on A holds on B; an expiry reported once.
#[test]
fn two_nodes_share_bindings_nonces_lockouts_and_expiry() {
    use crate::support::authorization;
    let redis = RedisServer::start();
    let (dir_a, dir_b) = (node(&redis.url(), "two"), node(&redis.url(), "two"));
    let (mut a, addr_a) = Process::run(dir_a.path());
    let (mut b, addr_b) = Process::run(dir_b.path());

    // alice registers through A, answering A's challenge
    let mut alice = Device::new("alice");
    let challenge = alice.challenge(addr_a);
    let auth = |nc| authorization(&challenge, "alice", "wonderland", "sip:127.0.0.1", nc);
    let ok = alice.register(addr_a, true, 300, Some(&auth(1)));
    assert_eq!(status(&ok), "SIP/2.0 200 OK", "{ok}");
    // B verifies A's nonce and lists the binding A stored
    let listed = alice.register(addr_b, false, 0, Some(&auth(2)));
    assert_eq!(status(&listed), "SIP/2.0 200 OK", "{listed}");
    assert!(
        header(&listed, "Contact").contains(&format!("<sip:alice@{}>", alice.addr())),
        "{listed}"
    );

    // B's admin API lists what A stored
    let api = crate::admin::base(b.admin());
    let (code, listed) = crate::admin::http("GET", &format!("{api}/api/registrations"), None, None);
    assert_eq!(code, 200, "{listed}");
    assert_eq!(
        listed["registrations"][0]["alias"], "alice@127.0.0.1",
        "{listed}"
    );
    assert_eq!(listed["total"], 1, "{listed}");

    // a call for alice sent to B reaches her
    let caller = Device::new("carol");
    let invite = format!(
        "INVITE sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKcall1\r\nMax-Forwards: 70\r\nFrom: <sip:carol@example.org>;tag=c1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@{}>\r\nContent-Length: 0\r\n\r\n",
        caller.addr(),
        caller.addr()
    );
    caller.socket.send_to(invite.as_bytes(), addr_b).unwrap();
    let routed = alice.recv();
    assert!(
        routed.starts_with(&format!("INVITE sip:alice@{} SIP/2.0", alice.addr())),
        "{routed}"
    );
    assert!(
        header(&routed, "Via").contains(&addr_b.to_string()),
        "through B: {routed}"
    );

    // bob registers for 2 s through B; both nodes run expiry; one reports it
    let mut bob = Device::new("bob");
    let ch = bob.challenge(addr_b);
    let ok = bob.register(
        addr_b,
        true,
        2,
        Some(&authorization(&ch, "bob", "builder", "sip:127.0.0.1", 1)),
    );
    assert_eq!(status(&ok), "SIP/2.0 200 OK", "{ok}");
    let on_a = a.next_with("Registration deleted", Duration::from_secs(5));
    let on_b = b.next_with("Registration deleted", Duration::from_millis(1500));
    let reports: Vec<&String> = on_a.iter().chain(on_b.iter()).collect();
    assert_eq!(reports.len(), 1, "reported once: {reports:?}");
    assert!(reports[0].contains("bob@127.0.0.1"), "{reports:?}");

    // mallory guesses wrong three times on A; the right password is refused on B too
    let mut mallory = Device::new("mallory");
    let before = mallory.challenge(addr_b); // B challenges: nobody is locked out yet
    for _ in 0..3 {
        let ch = mallory.challenge(addr_a);
        let wrong = authorization(&ch, "mallory", "guess", "sip:127.0.0.1", 1);
        let answer = mallory.register(addr_a, true, 60, Some(&wrong));
        assert!(answer.starts_with("SIP/2.0 401 "), "{answer}");
    }
    let right = authorization(&before, "mallory", "right", "sip:127.0.0.1", 1);
    let answer = mallory.register(addr_b, true, 60, Some(&right));
    assert_eq!(status(&answer), "SIP/2.0 403 Locked out", "{answer}");
}

/// Redis killed during SIPp load: REGISTERs get 503 (never a 200 for what was not
/// stored); Redis back on the same data: 200 again, without restarting sipreg.
#[test]
fn redis_lost_under_load_gives_503_and_service_resumes() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sipreg.toml"),
        format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\"]\ndomains = [\"127.0.0.1\"]\n\n[auth]\nchallenge = \"off\"\n\n[store]\ntype = \"redis\"\nurl = \"{}\"\ntimeout_ms = 300\n",
            redis.url()
        ),
    )
    .unwrap();
    let (mut server, addr) = Process::run(dir.path());
    let load = Background::start(
        addr,
        Transport::Udp,
        &register_each_call(3600, true),
        &["-m", "3000", "-r", "500", "-trace_logs"],
    );
    server.wait_for("Registration added");
    std::thread::sleep(Duration::from_millis(1000));
    redis.kill();
    server.wait_for("Redis unavailable");
    std::thread::sleep(Duration::from_millis(1500));
    redis.restart();
    server.wait_for("Redis reachable again");
    let (_, logs) = load.finish_with_logs();
    let lines: Vec<&str> = logs.lines().collect();
    let stored: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("stored "))
        .collect();
    let refused = lines.iter().filter(|l| l.contains("refused ")).count();
    assert!(refused > 100, "503s while Redis was down: {refused}");
    let last_refused = lines.iter().rposition(|l| l.contains("refused ")).unwrap();
    let stored_after = lines[last_refused..]
        .iter()
        .filter(|l| l.contains("stored "))
        .count();
    assert!(
        stored_after > 100,
        "200s after Redis came back: {stored_after}"
    );
    // Every 200 is in Redis (kept over its crash by its append-only file).
    let location = RedisLocation::new(pool(&redis), "sipreg");
    let now = crate::support::now_ms();
    for user in &stored {
        let found = location.lookup(&format!("{user}@127.0.0.1"), now).unwrap();
        assert_eq!(found.len(), 1, "{user} was answered 200 and is not stored");
    }
    assert!(stored.len() + refused <= 3000);
}
