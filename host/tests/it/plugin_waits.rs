//! A native plugin whose `authenticate` answers later (`Plugin::WAITS`, the host's
//! `complete` callback): its requests park, not a thread, and whatever the plugin does
//! with the call's `Done` ends the request exactly once. The fixture is
//! `host/tests/plugins/waiting` (its users are named by what they test).

use crate::plugins::library;
use crate::sippkit::register_digest_users;
use crate::support::{Harness, Register, Reply, app, authorization, conf, find, logged, serve};
use sipreg::config::{self, Transport};
use std::sync::atomic::Ordering;

fn config_text(delay_ms: u64, deadline_ms: u64) -> String {
    conf(
        "configs/loopback.toml",
        &format!(
            r#"
[server]
wait_deadline_ms = {deadline_ms}

[auth]
challenge = "www"
realm = "127.0.0.1"
algorithms = ["MD5"]

[[hooks]]
type = "plugin"
path = "{}"
config = {{ delay_ms = {delay_ms} }}
"#,
            library("test-plugin-waiting").display()
        ),
    )
}

fn register(user: &str, cseq: u32) -> Register {
    Register::new(&format!("{user}@127.0.0.1"))
        .contact(&format!("<sip:{user}@192.0.2.40:5060>"))
        .cseq(cseq)
}

/// The challenge, then the REGISTER with `password`'s digest: the second reply.
fn with_password(h: &Harness, user: &str, password: &str, cseq: u32) -> Reply {
    let r = h.send(&register(user, cseq).text());
    assert_eq!(r.code, 401, "{} is challenged first: {r:?}", user);
    let challenge = r.header("WWW-Authenticate").unwrap().to_owned();
    let auth = authorization(&challenge, user, password, "sip:127.0.0.1", 1);
    h.send(
        &register(user, cseq + 1)
            .header(&format!("Authorization: {auth}"))
            .text(),
    )
}

fn parked(h: &Harness) -> u64 {
    h.core.parking().parked.load(Ordering::Relaxed)
}

#[test]
fn a_plugin_that_answers_later_parks_its_request_and_ends_it_once() {
    // Another instance of the same library first: a call completes through the host
    // table of its own instance, not the first one the library was given.
    let _first = Harness::new(&config_text(100, 400));
    let h = Harness::new(&config_text(100, 400));
    // A request without credentials is challenged at once (the plugin answers now).
    let r = h.send(&register("u1", 1).text());
    assert_eq!(r.code, 401, "{r:?}");
    assert_eq!(parked(&h), 0, "an answer given at once parks nothing");

    // The lookup answers later, from the plugin's thread: the digest is checked then.
    let r = with_password(&h, "u1", "pw-u1", 10);
    assert_eq!(r.code, 200, "{r:?}");
    assert_eq!(parked(&h), 1);
    let r = with_password(&h, "u2", "not-it", 20);
    assert_eq!(r.code, 401, "a wrong password answered later: {r:?}");
    let r = with_password(&h, "nobody1", "pw-nobody1", 30);
    assert_eq!(r.code, 401, "an unknown user answered later: {r:?}");
    assert_eq!(parked(&h), 3);

    // A cache hit of a plugin that may wait: answered at once, nothing parked.
    let r = with_password(&h, "now1", "pw-now1", 40);
    assert_eq!(r.code, 200, "{r:?}");
    assert_eq!(parked(&h), 3);

    // The plugin drops the call's Done without answering: 500, and a log line naming it.
    let lines = logged(|| {
        let r = with_password(&h, "drop1", "pw-drop1", 50);
        assert_eq!(r.code, 500, "{r:?}");
    });
    find(&lines, &["waiting", "dropped the call without an answer"]);

    // The plugin never answers: the wait deadline (400 ms) ends the request with 500.
    let lines = logged(|| {
        let r = with_password(&h, "never1", "pw-never1", 60);
        assert_eq!(r.code, 500, "{r:?}");
    });
    find(&lines, &["waiting", "wait deadline of 400 ms"]);
    assert_eq!(parked(&h), 5);

    // The plugin still serves after all that.
    let r = with_password(&h, "u3", "pw-u3", 70);
    assert_eq!(r.code, 200, "{r:?}");
}

/// SIPp registers 400 users at 200 per second through the plugin, each lookup answered
/// after 100 ms: every REGISTER with credentials parks (its reader thread is free at
/// once), and every user is registered.
#[test]
fn sipp_registers_every_user_through_a_plugin_that_answers_later() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(100, 3_000);
    let cfg = config::parse_in(&text, "waits.toml", dir.path().to_path_buf()).unwrap();
    let s = serve(&cfg, app(&cfg, Vec::new()).core);
    let users = 400;
    let (run, _users) = register_digest_users(
        s.running.addr(Transport::Udp).unwrap(),
        users,
        200,
        "127.0.0.1",
    );
    run.finish().unwrap();
    for n in [1, users / 2, users] {
        s.wait_registered(&format!("u{n}@127.0.0.1"));
    }
    let parked = s.running.core.parking().parked.load(Ordering::Relaxed);
    assert!(parked >= users as u64, "every lookup waited: {parked}");
}
