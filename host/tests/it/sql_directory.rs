//! The `sql-directory` plugin against a real PostgreSQL server and a real SQLite file, in
//! Kamailio's `subscriber` schema (`data/sql/subscriber.sql`): right and wrong passwords,
//! an HA1-only user challenged with MD5 alone, unknown aliases, SQL injection in the user
//! name, a realm that is not Kamailio's, and the database stopped and started again under
//! SIPp's load (503 while down, 200s again after).

use crate::plugins::library;
use crate::postgres_server::PostgresServer;
use crate::process::Process;
use crate::sippkit::register_digest_users;
use crate::support::{
    Harness, Register, Reply, app, authorization, challenge_param, conf, md5_hex, serve,
};
use sipreg::config::{self, Transport};
use std::net::UdpSocket;
use std::time::Duration;

const REALM: &str = "127.0.0.1";

/// The subscribers: alice with a password (and its HA1), bob with an HA1 alone, erin's
/// HA1 for another realm beside her password only when `bad_realm`, and `u1`..`u<users>`
/// (password `pw-u<n>`) for SIPp.
fn rows(users: usize, bad_realm: bool) -> String {
    let mut sql = crate::support::data("sql/subscriber.sql");
    let alice = md5_hex(&format!("alice:{REALM}:wonderland"));
    let bob = md5_hex(&format!("bob:{REALM}:builder"));
    let bob_b = md5_hex(&format!("bob@{REALM}:{REALM}:builder"));
    sql.push_str(&format!(
        "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES \
         ('alice', '{REALM}', 'wonderland', '{alice}', ''), ('bob', '{REALM}', '', '{bob}', '{bob_b}');\n"
    ));
    if bad_realm {
        let other = md5_hex("erin:kamailio.example.org:secret");
        sql.push_str(&format!(
            "INSERT INTO subscriber (username, domain, password, ha1) VALUES ('erin', '{REALM}', 'secret', '{other}');\n"
        ));
    }
    for n in 1..=users {
        sql.push_str(&format!(
            "INSERT INTO subscriber (username, domain, password) VALUES ('u{n}', '{REALM}', 'pw-u{n}');\n"
        ));
    }
    sql
}

fn config_text(url: &str, more: &str) -> String {
    conf(
        "configs/loopback.toml",
        &format!(
            r#"
[auth]
challenge = "www"
realm = "{REALM}"
algorithms = ["SHA-256", "MD5"]

[[hooks]]
type = "plugin"
path = "{}"
config = {{ url = "{url}", realm = "{REALM}", cache_ttl = 0, negative_ttl = 0 {more} }}
"#,
            library("sql-directory").display()
        ),
    )
}

fn register(user: &str, cseq: u32) -> Register {
    Register::new(&format!("{user}@{REALM}"))
        .contact(&format!("<sip:{user}@192.0.2.60:5060>"))
        .cseq(cseq)
}

/// The algorithms a reply's challenges offer.
fn offered(r: &Reply) -> Vec<String> {
    r.all("WWW-Authenticate")
        .into_iter()
        .filter_map(|c| challenge_param(c, "algorithm").map(str::to_owned))
        .collect()
}

/// Challenged, then answered as `username`/`password` to the first challenge: the reply.
fn answer(h: &Harness, req: Register, username: &str, password: &str) -> Reply {
    let r = h.send(&req.clone().text());
    let Some(challenge) = r.header("WWW-Authenticate").map(str::to_owned) else {
        return r;
    };
    let auth = authorization(&challenge, username, password, &format!("sip:{REALM}"), 1);
    let next = req.cseq + 1;
    h.send(
        &req.cseq(next)
            .header(&format!("Authorization: {auth}"))
            .text(),
    )
}

/// What one directory answers, PostgreSQL or SQLite alike.
fn answers_as_kamailio_would(url: &str) {
    let h = Harness::new(&config_text(url, ""));
    let r = h.send(&register("alice", 1).text());
    assert_eq!(
        (r.code, offered(&r)),
        (401, vec!["SHA-256".into(), "MD5".into()])
    );
    assert_eq!(
        answer(&h, register("alice", 10), "alice", "wonderland").code,
        200
    );
    assert_eq!(answer(&h, register("alice", 20), "alice", "nope").code, 401);
    // bob has an HA1 alone: MD5 is all he can be checked with, so all he is offered.
    let r = h.send(&register("bob", 30).text());
    assert_eq!((r.code, offered(&r)), (401, vec!["MD5".into()]));
    assert_eq!(answer(&h, register("bob", 40), "bob", "builder").code, 200);
    assert_eq!(
        answer(&h, register("bob", 50), &format!("bob@{REALM}"), "builder").code,
        200,
        "the digest user bob@domain is checked against ha1b"
    );
    assert_eq!(
        answer(&h, register("bob", 60), "bob", "wonderland").code,
        401
    );
    // Somebody else's credentials for alice's alias.
    assert_eq!(
        answer(&h, register("alice", 70), "bob", "builder").code,
        403
    );
    let r = h.send(&register("carol", 80).text());
    assert_eq!(r.code, 403, "an alias nobody has: {r:?}");
    // SQL in the user name (escaped in the URI) is a user name nobody has.
    for user in [
        "%27%20OR%20%271%27%3D%271",
        "alice%27--",
        "x%27%3B%20DROP%20TABLE%20subscriber%3B--",
    ] {
        let r = h.send(&register(user, 90).text());
        assert_eq!(r.code, 403, "{user}: {r:?}");
    }
    assert_eq!(
        answer(&h, register("alice", 100), "alice", "wonderland").code,
        200,
        "the table is still there"
    );
}

#[test]
fn postgres_directory_answers_as_kamailio_would() {
    let pg = PostgresServer::start();
    pg.psql(&rows(0, false));
    answers_as_kamailio_would(&pg.url());
}

#[test]
fn sqlite_directory_answers_as_kamailio_would() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kamailio.sqlite");
    let sql = rows(0, false).replace(
        "id SERIAL PRIMARY KEY NOT NULL",
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
    );
    let out = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.stdin.read()); c.commit()"])
        .arg(&file)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(sql.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    answers_as_kamailio_would(&format!("sqlite:{}", file.display()));
}

/// An HA1 computed for another realm than `realm` refuses the load, naming the user.
#[test]
fn a_realm_that_is_not_kamailios_refuses_the_load() {
    let pg = PostgresServer::start();
    pg.psql(&rows(0, true));
    let e = Harness::try_with_files(&config_text(&pg.url(), ""), &[])
        .err()
        .expect("refused");
    assert!(
        e.contains(
            "the ha1 of erin@127.0.0.1 is not MD5(username:realm:password) for realm \"127.0.0.1\""
        ),
        "{e}"
    );
}

/// `req` over UDP from `sock`, challenged, then answered as `user`/`password`: the reply.
fn udp_answer(sock: &UdpSocket, req: Register, user: &str, password: &str) -> Reply {
    let exchange = |text: String| {
        sock.send(text.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a reply within 5 s");
        Reply::parse(&buf[..n])
    };
    let r = exchange(req.clone().text());
    let Some(challenge) = r.header("WWW-Authenticate").map(str::to_owned) else {
        return r;
    };
    let auth = authorization(&challenge, user, password, &format!("sip:{REALM}"), 1);
    let next = req.cseq + 1;
    exchange(
        req.cseq(next)
            .header(&format!("Authorization: {auth}"))
            .text(),
    )
}

/// The directory stopped: every REGISTER that needs it gets 503 with Retry-After (never a
/// 200), the outage is logged once with the database's address, and once it is started
/// again the next REGISTER registers (logged "answers again"). Run as the `sipreg` binary,
/// whose log is the plugin's too (its threads log there).
#[test]
fn a_stopped_database_gives_503_never_200_and_a_restarted_one_serves_again() {
    let pg = PostgresServer::start();
    pg.psql(&rows(0, false));
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&pg.url(), "");
    std::fs::write(dir.path().join("sipreg.toml"), text).unwrap();
    let (mut p, addr) = Process::run(dir.path());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        udp_answer(&sock, register("alice", 1), "alice", "wonderland").code,
        200
    );
    assert_eq!(
        udp_answer(&sock, register("carol", 5), "carol", "x").code,
        403
    );
    p.wait_for("Alias not found");
    pg.stop();
    for cseq in [10, 20] {
        let r = udp_answer(&sock, register("alice", cseq), "alice", "wonderland");
        assert_eq!(
            (r.code, r.reason.as_str()),
            (503, "Directory unavailable"),
            "{r:?}"
        );
        assert_eq!(r.header("Retry-After"), Some("30"));
    }
    let down = p.wait_for("Directory database not answering");
    assert!(
        down.contains(&format!("postgresql://127.0.0.1:{}", pg.port)),
        "{down}"
    );
    pg.restart();
    assert_eq!(
        udp_answer(&sock, register("alice", 30), "alice", "wonderland").code,
        200
    );
    p.wait_for("Directory database answers again");
    assert_eq!(
        p.seen_with("Directory database not answering"),
        1,
        "one line for the outage"
    );
}

/// SIPp registers 600 users at 100 per second with digest auth while the database is
/// stopped for two seconds in the middle: the first and last users register, those that
/// came while it was down got 503 (no 200 without the directory), and none is lost after.
#[test]
fn sipp_load_through_a_database_restarted_midway() {
    let pg = PostgresServer::start();
    let users = 600;
    pg.psql(&rows(users, false));
    let dir = tempfile::tempdir().unwrap();
    // SIPp answers the first challenge, and speaks MD5 alone.
    let text = config_text(&pg.url(), "").replace(
        "algorithms = [\"SHA-256\", \"MD5\"]",
        "algorithms = [\"MD5\"]",
    );
    let cfg = config::parse_in(&text, "sql.toml", dir.path().to_path_buf()).unwrap();
    let s = serve(&cfg, app(&cfg, Vec::new()).core);
    let (run, _users) =
        register_digest_users(s.running.addr(Transport::Udp).unwrap(), users, 100, REALM);
    std::thread::sleep(Duration::from_millis(2000));
    pg.stop();
    std::thread::sleep(Duration::from_millis(2000));
    pg.restart();
    let _ = run.finish();
    let registered = |n: usize| {
        !s.running
            .core
            .registrar()
            .location()
            .lookup(&format!("u{n}@{REALM}"), crate::support::now_ms())
            .unwrap()
            .is_empty()
    };
    let missing: Vec<usize> = (1..=users).filter(|n| !registered(*n)).collect();
    assert!(
        (1..=50).all(registered),
        "the first users, before the stop: {missing:?}"
    );
    assert!(
        (users - 50..=users).all(registered),
        "the last users, after the restart"
    );
    let missing = missing.len();
    assert!(missing > 0, "some came while the database was down");
    let metrics = sipreg::admin::render_metrics(&s.running.core);
    let refused = crate::admin::sample(
        &metrics,
        "sipreg_register_responses_total{code=\"503\",outcome=\"unavailable\"}",
    );
    assert!(
        refused >= missing as f64,
        "{missing} missing, {refused} answered 503:\n{metrics}"
    );
}
