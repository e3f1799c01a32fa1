//! The `sipreg` binary: `check` names file, line and key; `run` serves on its default.

use crate::process::Process;
use std::process::Command;
use std::time::Duration;

fn sipreg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipreg"))
}

/// `sipreg check --config path`.
fn check(path: &str) -> std::process::Output {
    sipreg().args(["check", "--config", path]).output().unwrap()
}

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sipreg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_accepts_the_example_and_names_file_line_and_key() {
    for example in ["sipreg.toml", "redis-node.toml"] {
        let path = format!("{}/../examples/{example}", env!("CARGO_MANIFEST_DIR"));
        let ok = check(&path);
        assert!(
            ok.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    let bad = temp(
        "bad.toml",
        "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\n\n[registrar]\nmax_expire = 5\n",
    );
    let out = check(bad.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:5:1: key `registrar.max_expire`: unknown field `max_expire`",
            bad.display()
        )),
        "{err}"
    );
}

/// Every example checks, in a copy of `examples/` where `sipreg cert --self-signed` made
/// the certificate the TLS and WebRTC examples name, as their comments say.
#[test]
fn check_accepts_every_example() {
    let copy = crate::support::copy_examples();
    let dir = copy.path().join("examples");
    let made = sipreg()
        .args([
            "cert",
            "--self-signed",
            "--host",
            "localhost",
            "--host",
            "127.0.0.1",
            "--out",
        ])
        .arg(dir.join("certs"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // The plugin examples name the release build; the tests have the debug one.
    let sql = dir.join("sql-directory.toml");
    let text = std::fs::read_to_string(&sql).unwrap().replace(
        "../target/release/libsql_directory.so",
        crate::plugins::library("sql-directory").to_str().unwrap(),
    );
    std::fs::write(&sql, text).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let out = check(path.to_str().unwrap());
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 7, "{n} examples");
}

#[test]
fn check_compiles_scripts_and_names_file_and_line() {
    let cfg = "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\ndomains = [\"example.com\"]\n\n[[hooks]]\ntype = \"lua\"\nscript = \"broken.lua\"\n";
    let script = temp(
        "broken.lua",
        "local M = {}\nfunction M.bind(ctx)\n  return sip.accept(\nend\nreturn M\n",
    );
    let bad = temp("scripted.toml", cfg);
    let out = check(bad.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:4:", script.display())),
        "{err}"
    );
    std::fs::write(
        &script,
        "return { bind = function() return sip.accept() end }\n",
    )
    .unwrap();
    let out = check(bad.to_str().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 script(s)"));
    // a script that is not there is a configuration error with the key
    let missing = temp("missing.toml", &cfg.replace("broken.lua", "nothere.lua"));
    let out = check(missing.to_str().unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":7:1: key `hooks[0].script`: ")
            && err.contains("nothere.lua is not a readable file"),
        "{err}"
    );
}

#[test]
fn try_prints_the_decision_trail_and_the_reply() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = sipreg()
        .args([
            "try",
            "--config",
            &format!("{root}/examples/device-aliases.toml"),
            "--request",
            &format!("{root}/examples/requests/register-unknown.sip"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let trail = text
        .lines()
        .find(|l| l.contains("sipreg::trail") && l.contains("hook=\"authenticate\""))
        .unwrap_or_else(|| panic!("no authenticate decision in:\n{text}"));
    assert!(
        trail.contains("device_aliases.lua") && trail.contains("code: 403"),
        "{trail}"
    );
    assert!(text.contains("Reason=\"Alias not found\""), "{text}");
    assert!(text.contains("\nSIP/2.0 403 Forbidden\r\n"), "{text}");
    // the example's OPTIONS: answered by the registrar itself
    let out = sipreg()
        .args([
            "try",
            "--config",
            &format!("{root}/examples/device-aliases.toml"),
            "--request",
            &format!("{root}/examples/requests/options.sip"),
            "--transport",
            "tcp",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("SIP/2.0 200 OK\r\n"));
    // a call through the dial plan: the forwarded request and where it goes
    let out = sipreg()
        .args([
            "try",
            "--config",
            &format!("{root}/examples/dial-plan.toml"),
            "--request",
            &format!("{root}/examples/requests/invite-extension.sip"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "(forwarded over UDP to 192.0.2.200:5060)\nINVITE sip:555123@192.0.2.200 SIP/2.0\r\n"
        ),
        "{text}"
    );
}

#[test]
fn run_without_config_serves_open_registration_on_5060_and_logs() {
    // The default listens on 127.0.0.1:5060; skip nothing: if the port is taken the test says so.
    if std::net::UdpSocket::bind("127.0.0.1:5060").is_err() {
        panic!("127.0.0.1:5060 is in use: stop whatever listens there and run again");
    }
    if std::net::TcpListener::bind("127.0.0.1:5080").is_err() {
        panic!(
            "127.0.0.1:5080 (the default admin port) is in use: stop whatever listens there and run again"
        );
    }
    // In a folder of its own: the default keeps its bindings in a file there.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Process::start(&["run"], dir.path());
    // wait for both listeners
    child.wait_for("listening");
    child.wait_for("listening");
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let reg = "REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKcli\r\nFrom: <sip:zed@example.org>;tag=1\r\nTo: <sip:zed@example.org>\r\nCall-ID: cli-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:zed@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n";
    c.send_to(reg.as_bytes(), "127.0.0.1:5060").unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(reply.starts_with("SIP/2.0 200 OK\r\n"), "{reply}");
    let added = child.wait_for("Registration added");
    assert!(added.contains("zed@example.org"), "{added}");
    // `sipreg status` finds the default admin listener by itself.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .arg("status")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let zed = table
        .lines()
        .find(|l| l.starts_with("zed@example.org"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        zed.contains("<sip:zed@127.0.0.1:5999>") && zed.contains(" UDP "),
        "{zed}"
    );
    drop(child);
    assert!(
        dir.path().join("sipreg-location.redb").is_file(),
        "the default store is a file in the working folder"
    );
}

/// A running server reloads its script when the file changes and on SIGHUP, and keeps
/// the old one when the new one does not compile.
#[test]
fn run_reloads_scripts_on_change_and_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("policy.lua");
    let answer = |reason: &str| {
        format!("return {{ on_request = function() return sip.respond(403, \"{reason}\") end }}\n")
    };
    std::fs::write(&script, answer("one")).unwrap();
    let cfg = dir.path().join("sipreg.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = [\"udp:127.0.0.1:0\"]\ndomains = [\"example.org\"]\n\n[auth]\nchallenge = \"off\"\n\n[[hooks]]\ntype = \"lua\"\nscript = \"policy.lua\"\n",
    )
    .unwrap();
    let (mut child, addr) = Process::run(dir.path());
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ask = |n: u32| {
        let reg = format!(
            "REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKreload{n}\r\nFrom: <sip:zed@example.org>;tag=1\r\nTo: <sip:zed@example.org>\r\nCall-ID: reload-{n}\r\nCSeq: 1 REGISTER\r\nContact: <sip:zed@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n"
        );
        c.send_to(reg.as_bytes(), addr).unwrap();
        let mut buf = [0u8; 2048];
        let (len, _) = c.recv_from(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..len])
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(ask(1), "SIP/2.0 403 one");
    std::fs::write(&script, answer("two")).unwrap();
    bump(&script);
    child.wait_for("script reloaded");
    assert_eq!(ask(2), "SIP/2.0 403 two");
    std::fs::write(&script, "return { on_request = function( end }\n").unwrap();
    bump(&script);
    let refused = child.wait_for("script refused");
    assert!(refused.contains("policy.lua:1:"), "{refused}");
    assert_eq!(ask(3), "SIP/2.0 403 two");
    std::fs::write(&script, answer("three")).unwrap();
    let pid = child.id().to_string();
    // SIGHUP reloads at once (the poll may also see the change; either reload serves)
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    child.wait_for("script reloaded");
    assert_eq!(ask(4), "SIP/2.0 403 three");
}

/// Moves a file's modification time forward, so that a change is seen on any clock.
fn bump(path: &std::path::Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
        .unwrap();
}

/// `sipreg check` loads plugins too, and reports a refused one as `run` would.
#[test]
fn check_loads_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, plugin: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "[server]\nlisten = [\"udp:127.0.0.1:5060\"]\ndomains = [\"example.com\"]\n\n[auth]\nchallenge = \"off\"\n\n[[hooks]]\ntype = \"plugin\"\npath = \"{}\"\nconfig = {{ blocked_user_agent = \"X\" }}\n",
                crate::plugins::library(plugin).display()
            ),
        )
        .unwrap();
        path
    };
    let good = write("good.toml", "plugin-template");
    let out = check(good.to_str().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 plugin(s)"));
    let old = write("old.toml", "test-plugin-old-abi");
    let out = check(old.to_str().unwrap());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "libtest_plugin_old_abi.so was built for plugin ABI 999, and this sipreg speaks ABI 1"
        ),
        "{err}"
    );
}
