//! End to end with SIPp, a SIP client we did not write, over UDP and TCP on loopback.
//!
//! SIPp 3.6 digests MD5 only and answers only the first challenge, so these servers offer
//! MD5 first; SHA-256 is covered by our own client in `digest`.

use crate::sippkit::{check, expect, register_message as register, scenario, sipp};
use crate::support::{Served, app, conf, now_ms, serve};
use sipreg::config::{self, Transport};
use std::sync::Arc;

/// A server on loopback ports; with authentication off it has no alias list (open
/// registration), with it on only alice/wonderland exists.
fn server(challenge: &str) -> Served {
    let aliases = if challenge == "off" {
        ""
    } else {
        "[[aliases]]\nalias = \"alice@127.0.0.1\"\nusername = \"alice\"\npassword = \"wonderland\"\n"
    };
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            r#"
[registrar]
min_expires = 60
max_contacts = 5

[auth]
challenge = "{challenge}"
realm = "127.0.0.1"
algorithms = ["MD5", "SHA-256"]

{aliases}"#
        ),
    );
    let cfg = config::parse(&toml, "sipp.toml").unwrap();
    serve(&cfg, app(&cfg, Vec::new()).core)
}

const CONTACT: &str = "      Contact: <sip:alice@[local_ip]:[local_port];transport=[transport]>\n";

fn both(f: impl Fn(Transport)) {
    f(Transport::Udp);
    f(Transport::Tcp);
}

#[test]
fn open_registration_and_query() {
    let s = server("off");
    both(|t| {
        let body = register(1, "bob", &format!("{CONTACT}      Expires: 300\n"))
            + &expect(200, &check("Contact", "expires=300", false))
            + &register(2, "bob", "")
            + &expect(200, &check("Contact", "expires=(300|299)", false));
        sipp(s.running.addr(t).unwrap(), t, &scenario(&body), &[])
            .unwrap_or_else(|e| panic!("{t}: {e}"));
    });
    let bindings = s
        .running
        .core
        .registrar()
        .location()
        .lookup("bob@127.0.0.1", now_ms())
        .unwrap();
    assert_eq!(bindings.len(), 2, "one binding per transport");
}

fn auth_flow(challenge: &str, code: u16, password: &str, final_code: u16) {
    let s = server(challenge);
    both(|t| {
        let body = register(1, "alice", CONTACT)
            + &format!("  <recv response=\"{code}\" auth=\"true\" timeout=\"5000\"/>\n")
            + &register(2, "alice", &format!("{CONTACT}      [authentication]\n"))
            + &expect(final_code, "");
        sipp(
            s.running.addr(t).unwrap(),
            t,
            &scenario(&body),
            &["-au", "alice", "-ap", password],
        )
        .unwrap_or_else(|e| panic!("{challenge} {t}: {e}"));
    });
    let registered = !s
        .running
        .core
        .registrar()
        .location()
        .lookup("alice@127.0.0.1", now_ms())
        .unwrap()
        .is_empty();
    assert_eq!(registered, final_code == 200);
}

#[test]
fn digest_401_then_200() {
    auth_flow("www", 401, "wonderland", 200);
}

#[test]
fn digest_407_then_200() {
    auth_flow("proxy", 407, "wonderland", 200);
}

#[test]
fn wrong_password_is_challenged_again() {
    auth_flow("www", 401, "looking-glass", 401);
}

#[test]
fn unknown_alias_is_403() {
    let s = server("www");
    both(|t| {
        let body = register(1, "mallory", CONTACT) + &expect(403, "");
        sipp(s.running.addr(t).unwrap(), t, &scenario(&body), &[])
            .unwrap_or_else(|e| panic!("{t}: {e}"));
    });
}

#[test]
fn too_brief_is_423_with_min_expires() {
    let s = server("off");
    both(|t| {
        let body = register(1, "bob", &format!("{CONTACT}      Expires: 10\n"))
            + &expect(423, &check("Min-Expires", "^ *60$", false));
        sipp(s.running.addr(t).unwrap(), t, &scenario(&body), &[])
            .unwrap_or_else(|e| panic!("{t}: {e}"));
    });
}

#[test]
fn wildcard_removes_everything() {
    let s = server("off");
    both(|t| {
        let body = register(1, "bob", CONTACT)
            + &expect(200, &check("Contact", "expires=", false))
            + &register(2, "bob", "      Contact: *\n      Expires: 0\n")
            + &expect(200, &check("Contact", "sip:", true))
            + &register(3, "bob", "")
            + &expect(200, &check("Contact", "sip:", true));
        sipp(s.running.addr(t).unwrap(), t, &scenario(&body), &[])
            .unwrap_or_else(|e| panic!("{t}: {e}"));
    });
    assert!(s.running.core.registrar().location().count().unwrap() == 0);
}

#[test]
fn cseq_not_higher_fails() {
    // SIPp will not take a final response for a CSeq it has seen answered within one call,
    // so each step is a SIPp run of its own with the same Call-ID and Contact.
    let s = server("off");
    both(|t| {
        let cid = format!("cseq-{t}-%u");
        let fixed = "      Contact: <sip:bob@127.0.0.1:5999>\n";
        let steps = [
            register(5, "bob", fixed) + &expect(200, ""),
            register(5, "bob", &format!("{fixed}      Expires: 0\n")) + &expect(400, ""),
            register(4, "bob", &format!("{fixed}      Expires: 0\n")) + &expect(400, ""),
            register(6, "bob", "") + &expect(200, &check("Contact", "5999>;expires=", false)),
        ];
        for body in steps {
            sipp(
                s.running.addr(t).unwrap(),
                t,
                &scenario(&body),
                &["-cid_str", &cid],
            )
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        }
    });
}

/// A Lua policy reloaded again and again (and once in a while broken) while SIPp
/// registers at a steady rate: no call may fail.
#[test]
fn reload_under_load_fails_no_call() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let script = |version: u32| {
        format!(
            "-- version {version}\nlocal M = {{}}\nfunction M.authenticate(ctx)\n  if ctx.username == \"alice\" then\n    return sip.credentials{{username = \"alice\", password = \"wonderland\"}}\n  end\n  return sip.challenge()\nend\nfunction M.bind(ctx) return sip.accept() end\nreturn M\n"
        )
    };
    let path = dir.path().join("policy.lua");
    std::fs::write(&path, script(0)).unwrap();
    let toml = r#"
[server]
listen = ["udp:127.0.0.1:0"]
domains = ["127.0.0.1"]

[auth]
challenge = "www"
realm = "127.0.0.1"
algorithms = ["MD5"]

[[hooks]]
type = "lua"
script = "policy.lua"
"#;
    let cfg = config::parse_in(toml, "reload.toml", dir.path().to_path_buf()).unwrap();
    let loaded = app(&cfg, Vec::new());
    let served = serve(&cfg, loaded.core.clone());
    let running = &served.running;
    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let stop = stop.clone();
        let hooks = loaded.scripts[0].clone();
        std::thread::spawn(move || {
            let (mut swapped, mut refused) = (0, 0);
            let mut version = 1;
            while !stop.load(Ordering::Relaxed) {
                let text = if version % 5 == 0 {
                    "return { authenticate = function( end }".to_owned()
                } else {
                    script(version)
                };
                std::fs::write(&path, text).unwrap();
                match hooks.reload() {
                    Ok(()) => swapped += 1,
                    Err(_) => refused += 1,
                }
                version += 1;
                std::thread::sleep(std::time::Duration::from_millis(40));
            }
            (swapped, refused)
        })
    };
    let body = register(1, "alice", CONTACT)
        + "  <recv response=\"401\" auth=\"true\" timeout=\"5000\"/>\n"
        + &register(2, "alice", &format!("{CONTACT}      [authentication]\n"))
        + &expect(200, "");
    let result = sipp(
        running.addr(Transport::Udp).unwrap(),
        Transport::Udp,
        &scenario(&body),
        &[
            "-au",
            "alice",
            "-ap",
            "wonderland",
            "-m",
            "600",
            "-r",
            "150",
        ],
    );
    stop.store(true, Ordering::Relaxed);
    let (swapped, refused) = reloader.join().unwrap();
    result.unwrap_or_else(|e| panic!("calls failed during {swapped} reloads: {e}"));
    assert!(
        swapped >= 20 && refused >= 5,
        "{swapped} reloads, {refused} refused"
    );
}

/// Maintenance on: SIPp's REGISTER gets 503 with Retry-After (its de-registration 200);
/// off: 200 again.
#[test]
fn maintenance_gives_503_and_off_restores_200() {
    let s = server("off");
    let registrar = s.running.core.registrar();
    both(|t| {
        let addr = s.running.addr(t).unwrap();
        registrar.set_maintenance(true);
        let body = register(1, "carol", &format!("{CONTACT}      Expires: 300\n"))
            + &expect(503, &check("Retry-After", "60", false))
            + &register(2, "carol", &format!("{CONTACT}      Expires: 0\n"))
            + &expect(200, "");
        sipp(addr, t, &scenario(&body), &[]).unwrap_or_else(|e| panic!("{t} on: {e}"));
        registrar.set_maintenance(false);
        let body = register(3, "carol", &format!("{CONTACT}      Expires: 300\n"))
            + &expect(200, &check("Contact", "expires=300", false));
        sipp(addr, t, &scenario(&body), &[]).unwrap_or_else(|e| panic!("{t} off: {e}"));
    });
}
