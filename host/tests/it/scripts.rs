//! The policies shipped in `scripts/`, each run from its example configuration in
//! `examples/` (a copy, so tests may change its files).

use crate::lua::bump_mtime;
use crate::support::{Harness, Register, Reply, authorization, conf, data, find, logged};

pub fn register(aor: &str) -> Register {
    Register::new(aor).contact(&format!(
        "<sip:{}@192.0.2.10:5060>",
        aor.split('@').next().unwrap()
    ))
}

/// A REGISTER answered 401, then sent again with `user`/`password`; the final code.
pub fn with_digest(h: &Harness, aor: &str, user: &str, password: &str, cseq: u32) -> u16 {
    digest_reply(h, aor, user, password, cseq).code
}

/// [`with_digest`], the final reply whole.
pub fn digest_reply(h: &Harness, aor: &str, user: &str, password: &str, cseq: u32) -> Reply {
    let r = h.send(&register(aor).cseq(cseq).text());
    if r.code != 401 {
        return r;
    }
    let challenge = r.header("WWW-Authenticate").unwrap().to_owned();
    let auth = authorization(&challenge, user, password, "sip:example.com", 1);
    h.send(
        &register(aor)
            .cseq(cseq + 1)
            .header(&format!("Authorization: {auth}"))
            .text(),
    )
}

/// Alias lookup and credentials: the same requests, the same answers, whether the
/// built-in `[[aliases]]` or scripts/device_aliases.lua decides.
pub fn alias_battery(h: &mut Harness) -> Vec<(&'static str, u16)> {
    let udp = vec![
        (
            "alice, no credentials",
            h.send(&register("alice@example.com").text()).code,
        ),
        (
            "alice, right password",
            with_digest(h, "alice@example.com", "alice", "wonderland", 10),
        ),
        (
            "alice, wrong password",
            with_digest(h, "alice@example.com", "alice", "nope", 20),
        ),
        (
            "alice, bob's credentials",
            with_digest(h, "alice@example.com", "bob", "builder", 30),
        ),
        (
            "unknown user name",
            with_digest(h, "alice@example.com", "eve", "x", 40),
        ),
        (
            "unknown alias",
            h.send(&register("mallory@example.com").text()).code,
        ),
        (
            "Alice in capitals",
            with_digest(h, "alice@EXAMPLE.com", "alice", "wonderland", 50),
        ),
        (
            "bob over udp",
            with_digest(h, "bob@example.com", "bob", "builder", 60),
        ),
    ];
    h.transport = sipreg::config::Transport::Tcp;
    let tcp = [
        (
            "bob over tcp",
            with_digest(h, "bob@example.com", "bob", "builder", 70),
        ),
        (
            "alice over tcp",
            with_digest(h, "alice@example.com", "alice", "wonderland", 80),
        ),
    ];
    h.transport = sipreg::config::Transport::Udp;
    udp.into_iter().chain(tcp).collect()
}

/// What the battery expects, whoever decides.
pub const EXPECTED: [(&str, u16); 10] = [
    ("alice, no credentials", 401),
    ("alice, right password", 200),
    ("alice, wrong password", 401),
    ("alice, bob's credentials", 403),
    ("unknown user name", 401),
    ("unknown alias", 403),
    ("Alice in capitals", 200),
    ("bob over udp", 200),
    ("bob over tcp", 403),
    ("alice over tcp", 200),
];

/// The battery's aliases (alice over UDP and TCP, bob over UDP) in the built-in list.
fn builtin_aliases() -> String {
    conf("configs/example.com.toml", &data("battery/aliases.toml"))
}

#[test]
fn device_aliases_behave_like_the_builtin_alias_list() {
    let mut builtin = Harness::new(&builtin_aliases());
    let mut lua = Harness::example("device-aliases");
    let expected = EXPECTED.to_vec();
    assert_eq!(alias_battery(&mut builtin), expected, "built-in");
    let lines = logged(|| assert_eq!(alias_battery(&mut lua), expected, "Lua"));
    find(
        &lines,
        &[
            "Registration refused",
            "Reason=\"Alias not found\"",
            "mallory@example.com",
        ],
    );
    find(
        &lines,
        &[
            "Registration refused",
            "Reason=\"Invalid credentials\"",
            "Expected-username=\"alice\"",
            "Supplied-username=\"bob\"",
        ],
    );
    find(
        &lines,
        &[
            "Registration refused",
            "Reason=\"Protocol not enabled for alias\"",
        ],
    );
    // an alias without credentials registers without digest
    assert_eq!(lua.send(&register("lobby@example.com").text()).code, 200);
}

#[test]
fn device_aliases_reload_when_the_list_changes() {
    let h = Harness::example("device-aliases");
    assert_eq!(h.send(&register("carol@example.com").text()).code, 403);
    let list = std::fs::read_to_string(h.dir.as_ref().unwrap().path().join("examples/aliases.csv"))
        .unwrap();
    h.write(
        "examples/aliases.csv",
        &format!("{list}carol@example.com,udp\n"),
    );
    bump_mtime(&h, "examples/aliases.csv");
    assert!(h.scripts[0].changed());
    h.scripts[0].reload().unwrap();
    assert_eq!(h.send(&register("carol@example.com").text()).code, 200);
}

#[test]
fn maintenance_refuses_registrations_and_lets_devices_leave() {
    let h = Harness::example("maintenance");
    assert_eq!(
        h.send(&register("a@example.com").expires("600").text())
            .code,
        200
    );
    h.write("examples/maintenance.flag", "");
    assert!(h.scripts[0].changed(), "the flag file is watched");
    h.scripts[0].reload().unwrap();
    let lines = logged(|| {
        let r = h.send(&register("b@example.com").text());
        assert_eq!((r.code, r.header("Retry-After")), (503, Some("300")));
    });
    find(&lines, &["Registration refused", "Maintenance mode"]);
    // a refresh is refused too; a query and a removal are not
    assert_eq!(
        h.send(&register("a@example.com").cseq(2).expires("600").text())
            .code,
        503
    );
    assert_eq!(
        h.send(&Register::new("a@example.com").cseq(3).text()).code,
        200
    );
    assert_eq!(
        h.send(&register("a@example.com").cseq(4).expires("0").text())
            .code,
        200
    );
    assert_eq!(
        h.send(
            &Register::new("a@example.com")
                .contact("*")
                .expires("0")
                .cseq(5)
                .text()
        )
        .code,
        200
    );
    std::fs::remove_file(
        h.dir
            .as_ref()
            .unwrap()
            .path()
            .join("examples/maintenance.flag"),
    )
    .unwrap();
    assert!(h.scripts[0].changed());
    h.scripts[0].reload().unwrap();
    assert_eq!(h.send(&register("b@example.com").cseq(2).text()).code, 200);
}

#[test]
fn admin_log_writes_the_pexip_lines() {
    let h = Harness::example("admin-log");
    let lines = logged(|| {
        assert_eq!(h.send(&register("bob@example.com").text()).code, 200);
        assert_eq!(
            h.send(&register("bob@example.com").cseq(2).text()).code,
            200
        );
        assert_eq!(
            h.send(&register("bob@example.com").cseq(3).expires("0").text())
                .code,
            200
        );
    });
    let added = find(
        &lines,
        &[
            "sipreg::script",
            "Registration added",
            "Alias=\"bob@example.com\"",
            "Location=\"Europe\"",
            "Protocol=\"SIP\"",
        ],
    );
    let core = find(&lines, &["sipreg::admin", "Registration added"]);
    let id = core
        .split("registration_id=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(
        added.contains(&format!("Registration-id=\"{id}\"")),
        "{added} / {core}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("sipreg::script") && l.contains("Registration added"))
            .count(),
        1,
        "a refresh adds nothing"
    );
    let deleted = find(&lines, &["sipreg::script", "Registration deleted"]);
    assert!(
        deleted.contains(&format!("Registration-id=\"{id}\""))
            && deleted.contains("Reason=\"Registration removed by the device\"")
            && deleted.contains("Natted=\"False\""),
        "{deleted}"
    );
}

#[test]
fn ip_allowlist_refuses_and_trusts_by_network() {
    let mut h = Harness::example("ip-allowlist");
    // 192.0.2.10 is in the trusted /28: no digest
    assert_eq!(h.send(&register("alice@example.com").text()).code, 200);
    h.source = "192.0.2.100:5060".parse().unwrap();
    assert_eq!(
        h.send(&register("alice@example.com").cseq(2).text()).code,
        401
    );
    h.source = "[2001:db8::5]:5060".parse().unwrap();
    assert_eq!(
        h.send(&register("alice@example.com").cseq(3).text()).code,
        401
    );
    let lines = logged(|| {
        h.source = "198.51.100.7:5060".parse().unwrap();
        let r = h.send(&register("alice@example.com").cseq(4).text());
        assert_eq!(
            (r.code, r.reason.as_str()),
            (403, "Forbidden (source not allowed)")
        );
        h.source = "[2001:db9::5]:5060".parse().unwrap();
        assert_eq!(
            h.send(&register("alice@example.com").cseq(5).text()).code,
            403
        );
    });
    find(
        &lines,
        &[
            "Request refused",
            "Source=\"198.51.100.7\"",
            "Source not allowed",
        ],
    );
}

#[test]
fn credentials_file_checks_digests_and_rereads_the_file() {
    let h = Harness::example("credentials-file");
    assert_eq!(
        with_digest(&h, "alice@example.com", "alice", "wonderland", 1),
        200
    );
    assert_eq!(
        with_digest(&h, "alice@example.com", "alice", "wrong", 10),
        401
    );
    assert_eq!(
        with_digest(&h, "alice@example.com", "bob", "builder", 20),
        403
    );
    assert_eq!(
        with_digest(&h, "carol@example.com", "carol", "c4rol", 30),
        401
    );
    let ha1 = crate::support::md5_hex("carol:example.com:c4rol");
    let path = h.dir.as_ref().unwrap().path().join("examples/users.csv");
    let users = std::fs::read_to_string(&path).unwrap();
    h.write("examples/users.csv", &format!("{users}carol,{ha1}\n"));
    bump_mtime(&h, "examples/users.csv");
    assert!(h.scripts[0].changed());
    h.scripts[0].reload().unwrap();
    assert_eq!(
        with_digest(&h, "carol@example.com", "carol", "c4rol", 40),
        200
    );
    // a broken line is refused with file and line, and the old list keeps serving
    h.write(
        "examples/users.csv",
        &format!("{users}carol,{ha1}\ndave,xyz\n"),
    );
    bump_mtime(&h, "examples/users.csv");
    let e = h.scripts[0].reload().unwrap_err().to_string();
    assert!(e.contains("users.csv:6:"), "{e}");
    assert_eq!(
        with_digest(&h, "carol@example.com", "carol", "c4rol", 50),
        200
    );
}

#[test]
fn lockout_after_failed_attempts() {
    let mut h = Harness::example("lockout");
    for i in 0..5 {
        assert_eq!(
            with_digest(&h, "alice@example.com", "alice", "wrong", 10 * i + 1),
            401,
            "attempt {i}"
        );
    }
    let lines = logged(|| {
        let r = h.send(&register("alice@example.com").cseq(100).header("Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", response=\"0\"").text());
        assert_eq!((r.code, r.reason.as_str()), (403, "Locked out"));
    });
    find(&lines, &["Locked out", "Attempts=\"5\""]);
    // even the right password is refused now, from this source
    assert_eq!(
        with_digest(&h, "alice@example.com", "alice", "wonderland", 200),
        403
    );
    // bob, elsewhere, is not affected, and a success clears his count
    h.source = "192.0.2.20:5060".parse().unwrap();
    for i in 0..4 {
        assert_eq!(
            with_digest(&h, "bob@example.com", "bob", "wrong", 300 + 10 * i),
            401
        );
    }
    assert_eq!(
        with_digest(&h, "bob@example.com", "bob", "builder", 400),
        200
    );
    assert_eq!(with_digest(&h, "bob@example.com", "bob", "wrong", 410), 401);
    assert_eq!(
        with_digest(&h, "bob@example.com", "bob", "builder", 420),
        200
    );
}

#[test]
fn dial_plan_maps_extensions_and_patterns() {
    let mut h = Harness::example("dial-plan");
    let invite = |dialled: &str| {
        format!(
            "INVITE sip:{dialled}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{dialled};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=d1\r\nTo: <sip:{dialled}@example.com>\r\nCall-ID: dial-{dialled}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.10:5060>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    h.source = "192.0.2.10:5062".parse().unwrap();
    let r = h.send(
        &Register::new("bob@example.com")
            .contact("<sip:bob@192.0.2.10:5062>")
            .text(),
    );
    assert_eq!(r.code, 200);
    // 1002 is bob: his binding
    let lines = logged(|| {
        let f = h.forwarded(&invite("1002"));
        assert_eq!(f.to.addr, "192.0.2.10:5062".parse().unwrap());
        assert!(
            String::from_utf8_lossy(&f.bytes)
                .starts_with("INVITE sip:bob@192.0.2.10:5062 SIP/2.0\r\n")
        );
    });
    find(
        &lines,
        &["Dial plan", "Dialled=\"1002\"", "Alias=\"bob@example.com\""],
    );
    // 1001 is alice, who is not registered
    assert_eq!(h.send(&invite("1001")).code, 480);
    // 9 + number: the gateway, the number without the 9
    let f = h.forwarded(&invite("9555123"));
    assert_eq!(f.to.addr, "192.0.2.200:5060".parse().unwrap());
    assert!(
        String::from_utf8_lossy(&f.bytes).starts_with("INVITE sip:555123@192.0.2.200 SIP/2.0\r\n")
    );
    // nothing matches: the registrar's own routing (not an alias: 404)
    assert_eq!(h.send(&invite("7777")).code, 404);
    // the alias itself still works
    assert_eq!(
        h.forwarded(&invite("bob")).to.addr,
        "192.0.2.10:5062".parse().unwrap()
    );
}
