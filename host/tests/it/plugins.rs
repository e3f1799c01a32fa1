//! Native plugins: the real `.so` files the workspace builds, loaded through the C ABI.
//! Fixtures in `host/tests/plugins/`: `misbehaving` (does what X-Test asks, panics
//! included), `old-abi` (says ABI 999), `not-a-plugin` (a library without our symbols),
//! `short-table` (ABI 1, but a function table shorter than ABI 1's).

use crate::support::{Harness, Register, authorization, conf, find, logged};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// The shared library of a workspace crate, built (once per test run) with cargo.
pub fn library(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    if !built.iter().any(|p| p == package) {
        let status = std::process::Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["build", "--quiet", "-p", package])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build -p {package} failed");
        built.push(package.to_owned());
    }
    let path = target
        .join("debug")
        .join(format!("lib{}.so", package.replace('-', "_")));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A configuration with one plugin hook (with `alice`, also alice in `[[aliases]]`).
fn config(challenge: &str, plugin: &std::path::Path, table: &str, alice: bool) -> String {
    let aliases = if alice {
        "\n[[aliases]]\nalias = \"alice@example.com\"\npassword = \"wonderland\"\n"
    } else {
        ""
    };
    let extra = format!(
        r#"
[auth]
challenge = "{challenge}"

[[hooks]]
type = "plugin"
path = "{}"
config = {table}
{aliases}"#,
        plugin.display()
    );
    conf("configs/example.com.toml", &extra)
}

fn misbehaving(challenge: &str) -> Harness {
    Harness::with_files(
        &config(
            challenge,
            &library("test-plugin-misbehaving"),
            r#"{ greeting = "hi" }"#,
            false,
        ),
        &[],
    )
}

fn register(aor: &str) -> Register {
    Register::new(aor).contact("<sip:dev@192.0.2.10:5060>")
}

#[test]
fn refused_libraries_name_the_path_and_the_versions() {
    let load = |path: &std::path::Path, extra: &str| {
        let table = format!("{{ greeting = \"hi\"{extra} }}");
        Harness::try_with_files(&config("off", path, &table, false), &[])
            .err()
            .expect("refused")
    };
    let old = library("test-plugin-old-abi");
    let e = load(&old, "");
    assert!(
        e.contains(&old.display().to_string())
            && e.contains("built for plugin ABI 999")
            && e.contains("speaks ABI 1"),
        "{e}"
    );
    let short = library("test-plugin-short-table");
    let e = load(&short, "");
    assert!(
        e.contains("its function table has 8 bytes; plugin ABI 1 needs at least"),
        "{e}"
    );
    let other = library("test-plugin-not-a-plugin");
    let e = load(&other, "");
    assert!(
        e.contains("is not a sipreg plugin") && e.contains(&other.display().to_string()),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("fake.so");
    std::fs::write(&text, "not an ELF file").unwrap();
    let e = load(&text, "");
    assert!(e.contains("is not a loadable library"), "{e}");
    // issue 18, finding 9: the error names the configuration's file, line and key
    assert!(
        e.starts_with("test.toml:") && e.contains(": key `hooks[0].path`: "),
        "{e}"
    );
    let e = load(&library("test-plugin-misbehaving"), ", refuse = true");
    assert!(
        e.contains("plugin misbehaving refused to start: configured to refuse"),
        "{e}"
    );
    let e = load(&dir.path().join("missing.so"), "");
    assert!(
        e.contains("key `hooks[0].path`") && e.contains("missing.so is not a readable file"),
        "{e}"
    );
}

#[test]
fn a_panicking_plugin_fails_one_request() {
    let h = misbehaving("off");
    let t = |v: &str| {
        register("a@example.com")
            .header(&format!("X-Test: {v}"))
            .text()
    };
    let lines = logged(|| assert_eq!(h.send(&t("panic")).code, 500));
    let l = find(&lines, &["hook failed", "on_request"]);
    assert!(
        l.contains("misbehaving (") && l.contains("panicked: asked to panic"),
        "{l}"
    );
    assert_eq!(
        h.send(&t("nothing")).code,
        200,
        "the next request is served"
    );
    let lines = logged(|| {
        assert_eq!(h.send(&t("bad-code")).code, 500);
        assert_eq!(h.send(&t("bad-header")).code, 500);
    });
    find(&lines, &["code 200 is not a final refusal"]);
    find(&lines, &["Via is written by the registrar"]);
    assert_eq!(h.send(&t("nothing")).code, 200);
    // /metrics counts the plugin's three failed calls.
    let metrics = sipreg::admin::render_metrics(&h.core);
    let errors = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "sipreg_hook_errors_total{hook=\"on_request\",implementation=\"misbehaving",
            )
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(errors.ends_with(" 3"), "{errors}");
}

#[test]
fn plugin_decisions_and_host_services() {
    let h = misbehaving("off");
    let t = |v: &str| {
        register("a@example.com")
            .header(&format!("X-Test: {v}"))
            .text()
    };
    let r = h.send(&t("refuse"));
    assert_eq!((r.code, r.reason.as_str()), (403, "hi from 192.0.2.10"));
    assert_eq!(r.header("X-Method"), Some("REGISTER"));
    assert!(h.send_raw(t("drop").as_bytes()).is_none());
    assert_eq!(
        h.send(&register("b@example.com").expires("600").text())
            .code,
        200
    );
    let kv = |n: u32| {
        h.send(
            &register("x@example.com")
                .cseq(n)
                .header("X-Test: kv")
                .header("X-Aor: b@example.com")
                .text(),
        )
        .reason
    };
    assert_eq!(kv(1), "count 1 last REGISTER bindings 1");
    assert_eq!(kv(2), "count 2 last REGISTER bindings 1");
    // bind may shorten expiry and set q
    let r = h.send(&register("c@example.com").header("X-Bind: shorten").text());
    assert_eq!(r.code, 200);
    assert_eq!(
        r.contact_expires(),
        vec![("sip:dev@192.0.2.10:5060".to_owned(), 120)]
    );
    assert!(
        r.header("Contact").unwrap().ends_with(";q=0.5"),
        "{}",
        r.text
    );
}

#[test]
fn plugin_authentication() {
    let h = misbehaving("www");
    // trusted without digest
    assert_eq!(
        h.send(&register("a@example.com").header("X-Auth: trust").text())
            .code,
        200
    );
    // credentials from the plugin, checked by the host's digest code
    let r = h.send(&register("b@example.com").header("X-Auth: password").text());
    assert_eq!(r.code, 401);
    let challenge = r.header("WWW-Authenticate").unwrap().to_owned();
    let good = authorization(&challenge, "b", "secret", "sip:example.com", 1);
    let r = h.send(
        &register("b@example.com")
            .cseq(2)
            .header("X-Auth: password")
            .header(&format!("Authorization: {good}"))
            .text(),
    );
    assert_eq!(r.code, 200);
    let bad = authorization(&challenge, "b", "wrong", "sip:example.com", 2);
    let r = h.send(
        &register("b@example.com")
            .cseq(3)
            .header("X-Auth: password")
            .header(&format!("Authorization: {bad}"))
            .text(),
    );
    assert_eq!(r.code, 401);
    let lines = logged(|| {
        assert_eq!(
            h.send(&register("c@example.com").header("X-Auth: bad-ha1").text())
                .code,
            500
        );
        assert_eq!(
            h.send(&register("c@example.com").header("X-Auth: panic").text())
                .code,
            500
        );
    });
    find(
        &lines,
        &[
            "authenticate",
            "ha1 must be 32 (MD5) or 64 (SHA-256) hex digits",
        ],
    );
    find(&lines, &["authenticate", "panicked: authenticate panics"]);
}

#[test]
fn plugin_logs_go_to_the_host_log() {
    let lines = logged(|| {
        misbehaving("off");
    });
    find(
        &lines,
        &[
            "sipreg::plugin",
            "created",
            "plugin=\"misbehaving\"",
            "fields=greeting=\"hi\"",
        ],
    );
}

/// Today's plugins, and the same plugins as built at c01b7a9 against that commit's plugin
/// API (kept in `host/tests/plugins/c01b7a9-*`): the C ABI still loads them, and they
/// behave the same.
const BUILDS: [&str; 2] = ["", "c01b7a9-"];

#[test]
fn alias_directory_behaves_like_the_builtin_alias_list() {
    for build in BUILDS {
        alias_directory(&format!("{build}alias-directory"));
    }
}

fn alias_directory(package: &str) {
    use crate::support::md5_hex;
    let csv = format!(
        "# written by provisioning\nalice@example.com,udp tcp,alice,{}\nbob@example.com,udp,bob,{}\n",
        md5_hex("alice:example.com:wonderland"),
        md5_hex("bob:example.com:builder")
    );
    let toml = config(
        "www",
        &library(package),
        r#"{ file = "directory.csv", check_interval_ms = 0 }"#,
        false,
    );
    let mut h = Harness::with_files(&toml, &[("directory.csv", &csv)]);
    let lines = logged(|| {
        assert_eq!(
            crate::scripts::alias_battery(&mut h),
            crate::scripts::EXPECTED.to_vec()
        );
    });
    find(
        &lines,
        &[
            "sipreg::plugin",
            "Registration refused",
            "Reason=\"Alias not found\"",
        ],
    );
    find(
        &lines,
        &[
            "Registration refused",
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
    // the provisioning system adds carol: seen without a restart
    let carol = format!(
        "carol@example.com,udp,carol,{}\n",
        md5_hex("carol:example.com:c4rol")
    );
    h.write("directory.csv", &format!("{csv}{carol}"));
    let path = h.dir.as_ref().unwrap().path().join("directory.csv");
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(2))
        .unwrap();
    assert_eq!(
        crate::scripts::with_digest(&h, "carol@example.com", "carol", "c4rol", 500),
        200
    );
    // a broken file is refused and the last good one stays
    h.write("directory.csv", "garbage\n");
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(4))
        .unwrap();
    let lines = logged(|| {
        assert_eq!(
            crate::scripts::with_digest(&h, "carol@example.com", "carol", "c4rol", 510),
            200
        );
    });
    find(
        &lines,
        &[
            "directory refused",
            "directory.csv:1: not `alias,transports,username,ha1`",
        ],
    );
    // routing: an unknown alias of the directory's domain is 404
    let invite = |to: &str| {
        format!(
            "INVITE sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-d{to}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:{to}>\r\nCall-ID: d-{to}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let lines = logged(|| assert_eq!(h.send(&invite("mallory@example.com")).code, 404));
    find(
        &lines,
        &[
            "Request not routed",
            "Alias=\"mallory@example.com\"",
            "Reason=\"Alias not found\"",
        ],
    );
    // carol, added to the directory and registered above, is reached
    let f = h.forwarded(&invite("carol@example.com"));
    assert_eq!(f.to.addr, "192.0.2.10:5060".parse().unwrap());
}

fn plugin_config(plugin: &str, challenge: &str, table: &str) -> String {
    config(challenge, &library(plugin), table, true)
}

#[test]
fn audit_log_writes_json_lines_and_rotates() {
    for build in BUILDS {
        audit_log(&format!("{build}audit-log"));
    }
}

fn audit_log(package: &str) {
    let h = Harness::with_files(
        &plugin_config(
            package,
            "www",
            r#"{ file = "audit.jsonl", max_bytes = 2048, keep = 2 }"#,
        ),
        &[],
    );
    assert_eq!(
        crate::scripts::with_digest(&h, "alice@example.com", "alice", "wonderland", 1),
        200
    );
    assert_eq!(h.send(&register("mallory@example.com").text()).code, 403);
    assert_eq!(
        h.send(
            &register("alice@example.com")
                .cseq(5)
                .expires("0")
                .header("Authorization: Digest username=\"alice\"")
                .text()
        )
        .code,
        401
    );
    let dir = h.dir.as_ref().unwrap().path();
    let text = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        &kinds[..5],
        &[
            "request",
            "authenticate",
            "request",
            "authenticate",
            "binding"
        ],
        "{text}"
    );
    let binding = &events[4];
    assert_eq!(binding["aor"], "alice@example.com");
    assert_eq!(binding["identity"], "alice");
    assert_eq!(binding["new"], true);
    assert!(binding["time"].as_u64().unwrap() > 0);
    // rotation: many requests later, at most audit.jsonl + 2 old files, each under 2 KiB
    for n in 0..60 {
        h.send(&register("mallory@example.com").cseq(10 + n).text());
    }
    for name in ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"] {
        let len = std::fs::metadata(dir.join(name)).unwrap().len();
        assert!(len <= 2048, "{name}: {len} bytes");
    }
    assert!(!dir.join("audit.jsonl.3").exists());
}

#[test]
fn rate_guard_limits_and_bans() {
    for build in BUILDS {
        rate_guard(&format!("{build}rate-guard"));
    }
}

fn rate_guard(package: &str) {
    let mut h = Harness::with_files(
        &plugin_config(
            package,
            "www",
            "{ requests_per_second = 5, failures = 3, ban_seconds = 60 }",
        ),
        &[],
    );
    // six requests in one second from one source: the sixth is refused
    let codes: Vec<u16> = (0..6)
        .map(|n| {
            h.send(&register("alice@example.com").cseq(n + 1).text())
                .code
        })
        .collect();
    assert_eq!(codes, vec![401, 401, 401, 401, 401, 503]);
    h.now += 1000;
    assert_eq!(
        h.send(&register("alice@example.com").cseq(20).text()).code,
        401,
        "a new second"
    );
    // three failed authentications: banned on the fourth attempt
    h.source = "192.0.2.30:5060".parse().unwrap();
    let lines = logged(|| {
        for n in 0..3 {
            h.now += 1000;
            assert_eq!(
                crate::scripts::with_digest(
                    &h,
                    "alice@example.com",
                    "alice",
                    "wrong",
                    100 + 10 * n
                ),
                401
            );
        }
        h.now += 1000;
        let r = h.send(&register("alice@example.com").cseq(200).header("Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"x\", uri=\"sip:example.com\", response=\"0\"").text());
        assert_eq!((r.code, r.reason.as_str()), (403, "Banned"));
    });
    let banned_at = h.now;
    find(
        &lines,
        &[
            "Source banned",
            "Source=\"192.0.2.30\"",
            "Banned=\"192.0.2.30\"",
        ],
    );
    h.now += 1000;
    assert_eq!(
        h.send(&register("alice@example.com").cseq(300).text()).code,
        403,
        "banned: every request"
    );
    // another source still registers, and a success clears its failures
    h.source = "192.0.2.31:5060".parse().unwrap();
    for n in 0..2 {
        h.now += 1000;
        assert_eq!(
            crate::scripts::with_digest(&h, "alice@example.com", "alice", "wrong", 400 + 10 * n),
            401
        );
    }
    h.now += 1000;
    assert_eq!(
        crate::scripts::with_digest(&h, "alice@example.com", "alice", "wonderland", 500),
        200
    );
    for n in 0..2 {
        h.now += 1000;
        assert_eq!(
            crate::scripts::with_digest(&h, "alice@example.com", "alice", "wrong", 600 + 10 * n),
            401
        );
    }
    h.now += 1000;
    assert_eq!(
        crate::scripts::with_digest(&h, "alice@example.com", "alice", "wonderland", 700),
        200
    );
    // the ban's key lives 60 s of the clock the plugin reads (the harness's, set at the
    // third failure, a second before `banned_at`): over then
    h.source = "192.0.2.30:5060".parse().unwrap();
    h.now = banned_at + 58_000;
    let banned = h.send(&register("alice@example.com").cseq(800).text()).code;
    assert_eq!(banned, 403, "still banned");
    h.now = banned_at + 60_000;
    assert_eq!(
        h.send(&register("alice@example.com").cseq(900).text()).code,
        401,
        "the ban is over"
    );
}

#[test]
fn the_template_plugin_works_as_shipped() {
    let h = Harness::with_files(
        &plugin_config(
            "plugin-template",
            "off",
            r#"{ blocked_user_agent = "BadPhone" }"#,
        ),
        &[],
    );
    let r = h.send(
        &register("a@example.com")
            .header("User-Agent: BadPhone/2.1")
            .text(),
    );
    assert_eq!((r.code, r.reason.as_str()), (403, "User agent not allowed"));
    assert_eq!(
        h.send(
            &register("a@example.com")
                .header("User-Agent: GoodPhone")
                .text()
        )
        .code,
        403,
        "a@ is not in [[aliases]]"
    );
    assert_eq!(
        h.send(
            &register("alice@example.com")
                .header("User-Agent: GoodPhone")
                .text()
        )
        .code,
        200
    );
    let e = Harness::try_with_files(&plugin_config("plugin-template", "off", "{}"), &[])
        .err()
        .unwrap();
    assert!(
        e.contains("refused to start: config: blocked_user_agent is missing"),
        "{e}"
    );
}
