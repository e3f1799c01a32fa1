//! sipvicious (Debian `sipvicious`: `svwar` enumerates aliases, `svcrack` guesses
//! passwords) against a running `sipreg`, and the documented fail2ban filter
//! (`examples/fail2ban/`) checked with `fail2ban-regex` on the log they caused (issue 18,
//! findings 10 and 11: on c01b7a9 svcrack found the password in 1 s, and a banned svcrack
//! wrote 2,829 lines in 15 s).

use crate::admin::{base, http};
use crate::process::Process;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Fails the test when a tool is missing (`./test.sh` installs them).
fn need(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is missing: ./test.sh installs sipvicious and fail2ban"
    );
}

/// A server with aliases 101 and 102 (and more `[registrar]`/`[auth.guard]` lines), its
/// folder, its SIP and admin addresses.
fn server(registrar: &str, guard: &str) -> (tempfile::TempDir, Process, SocketAddr, SocketAddr) {
    server_logging(registrar, guard, "text")
}

/// The shipped rate-guard plugin (the guard behind it at 10) stops svcrack before 20
/// guesses, banning the source address.
#[test]
fn svcrack_meets_the_rate_guard_plugin() {
    need("svcrack");
    let plugin = crate::plugins::library("rate-guard");
    let hook = format!(
        "failures = 10\n\n[[hooks]]\ntype = \"plugin\"\npath = \"{}\"\nconfig = {{ requests_per_second = 1000, failures = 5, failure_window_seconds = 300, ban_seconds = 600 }}\n",
        plugin.display()
    );
    let (dir, _p, addr, admin) = server("", &hook);
    let out = svcrack(dir.path(), addr, "101", "tr0ub4dor", 12, &[]);
    assert!(!out.contains("The password for"), "{out}");
    let guesses = metric(
        admin,
        "sipreg_auth_failures_total{reason=\"Invalid credentials\"}",
    );
    eprintln!("rate-guard: {guesses} guesses checked");
    assert!((1..20).contains(&guesses), "{guesses} guesses checked");
    assert!(
        metric(admin, "sipreg_register_refusals_total{reason=\"Banned\"}") > 0,
        "rate-guard answered"
    );
}

/// [`server`] writing its log in `format` (`text`, `json`).
fn server_logging(
    registrar: &str,
    guard: &str,
    format: &str,
) -> (tempfile::TempDir, Process, SocketAddr, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sipreg.toml"),
        format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\"]\ndomains = [\"127.0.0.1\"]\n\n[registrar]\n{registrar}\n[store]\ntype = \"memory\"\n\n[auth]\nchallenge = \"www\"\nrealm = \"127.0.0.1\"\nalgorithms = [\"MD5\"]\n\n[auth.guard]\n{guard}\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[[aliases]]\nalias = \"101@127.0.0.1\"\npassword = \"tr0ub4dor\"\n\n[[aliases]]\nalias = \"102@127.0.0.1\"\npassword = \"correct-horse\"\n"
        ),
    )
    .unwrap();
    let cfg = dir.path().join("sipreg.toml");
    let args = [
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--log-format",
        format,
    ];
    let mut p = Process::start(&args, dir.path());
    let addr = p.listening();
    let admin = p.admin();
    (dir, p, addr, admin)
}

/// A free UDP port for the tool's own socket: by default it binds 5060, which the test of
/// the default configuration needs.
fn free_port() -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port().to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the tool runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn svwar(addr: SocketAddr, extra: &[&str]) -> String {
    run(Command::new("timeout")
        .args([
            "60",
            "svwar",
            "-e100-120",
            "-m",
            "REGISTER",
            "-P",
            &free_port(),
        ])
        .args(extra)
        .arg(format!("udp://{addr}")))
}

#[test]
fn svwar_finds_no_alias_when_unknown_ones_are_challenged() {
    need("svwar");
    // The control: with 404 for unknown aliases, svwar finds exactly the two.
    let (_d, _p, addr, _) = server("unknown_alias = \"not-found\"\n", "");
    let found = svwar(addr, &[]);
    for ext in ["101", "102"] {
        assert!(found.contains(&format!("| {ext} ")), "{found}");
    }
    assert!(!found.contains("| 103 "), "{found}");
    // Challenged like real ones: svwar tells nothing apart, even forced.
    let (_d, _p, addr, _) = server("unknown_alias = \"challenge\"\n", "");
    for extra in [&[][..], &["--force"][..]] {
        let found = svwar(addr, extra);
        assert!(found.contains("found nothing"), "{extra:?}: {found}");
        assert!(!found.contains("| 101 "), "{extra:?}: {found}");
    }
}

fn metric(admin: SocketAddr, line_start: &str) -> u64 {
    let (code, body) = http("GET", &format!("{}/metrics", base(admin)), None, None);
    assert_eq!(code, 200);
    let Value::String(text) = body else {
        panic!("{body:?}")
    };
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

/// svcrack with 200 guesses, the right password last, for `seconds` at most; its output.
fn svcrack(
    dir: &Path,
    addr: SocketAddr,
    user: &str,
    right: &str,
    seconds: u32,
    extra: &[&str],
) -> String {
    let words: Vec<String> = (1..200)
        .map(|i| format!("guess{i}"))
        .chain([right.to_owned()])
        .collect();
    let dict = dir.join("dictionary.txt");
    std::fs::write(&dict, words.join("\n") + "\n").unwrap();
    run(Command::new("timeout")
        .arg(seconds.to_string())
        .args(["svcrack", "-P", &free_port(), "-u", user, "-d"])
        .arg(&dict)
        .args(extra)
        .arg(format!("udp://{addr}")))
}

/// Every log line until the process is stopped.
fn log_of(p: &mut Process) -> Vec<String> {
    let _ = p.terminate(Duration::from_secs(10));
    let mut lines = Vec::new();
    while let Some(l) = p.next_with("", Duration::from_millis(200)) {
        lines.push(l);
    }
    lines
}

#[test]
fn svcrack_meets_the_builtin_guard_and_the_log_stays_readable() {
    svcrack_against_the_guard("text");
}

/// The same with `--log-format json` (as examples/sipreg.service runs it).
#[test]
fn svcrack_against_the_guard_in_json() {
    svcrack_against_the_guard("json");
}

fn svcrack_against_the_guard(format: &str) {
    need("svcrack");
    need("fail2ban-regex");
    let (dir, mut p, addr, admin) = server_logging("", "", format);
    let started = Instant::now();
    let out = svcrack(dir.path(), addr, "101", "tr0ub4dor", 12, &[]);
    let took = started.elapsed();
    assert!(!out.contains("The password for"), "{out}");
    // Five guesses were checked, then the source was banned for 101: 403 at once.
    assert_eq!(
        metric(
            admin,
            "sipreg_auth_failures_total{reason=\"Invalid credentials\"}"
        ),
        5
    );
    let refused = metric(
        admin,
        "sipreg_register_refusals_total{reason=\"Too many failed authentications\"}",
    );
    assert!(refused > 100, "svcrack kept asking: {refused} refusals");
    assert_eq!(
        metric(admin, "sipreg_register_responses_total{code=\"200\""),
        0
    );
    let lines = log_of(&mut p);
    // On c01b7a9 such a run wrote thousands of lines; now a few per kind and window.
    let per_second = lines.len() as f64 / took.as_secs_f64();
    assert!(
        lines.len() < 150,
        "{} lines in {took:?} ({per_second:.0}/s) for {refused} refusals",
        lines.len()
    );
    let summary = lines
        .iter()
        .find(|l| l.contains("Registration refused repeated "))
        .unwrap_or_else(|| panic!("no summary line in {lines:#?}"));
    assert!(
        summary.contains("source=127.0.0.1") || summary.contains("\"source\":\"127.0.0.1\""),
        "{summary}"
    );
    // The fail2ban filter finds the source in the full lines and in the summary.
    let log = dir.path().join("sipreg.log");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let filter = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/fail2ban/filter.d/sipreg.conf"
    );
    let checked = run(Command::new("fail2ban-regex").arg(&log).arg(filter));
    let matched: u64 = checked
        .lines()
        .find_map(|l| l.strip_prefix("Lines: "))
        .and_then(|l| l.split(", ").find_map(|p| p.strip_suffix(" matched")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{checked}"));
    let expected = lines
        .iter()
        .filter(|l| {
            l.contains("Authentication failed")
                || l.contains("Source banned")
                || (l.contains("Registration refused") && l.contains("Too many failed"))
                || l.contains("Registration refused repeated")
        })
        .count() as u64;
    eprintln!(
        "{format}: svcrack for {took:?}: {refused} refusals, {} log lines, {matched} matched by the fail2ban filter",
        lines.len()
    );
    assert!(matched >= 7, "{checked}");
    assert_eq!(matched, expected, "{checked}");
    let verbose = run(Command::new("fail2ban-regex")
        .arg("-v")
        .arg(&log)
        .arg(filter));
    assert!(verbose.contains("127.0.0.1"), "{verbose}");
}

/// `answer = "drop"`: a banned svcrack hears nothing and gives up by itself.
#[test]
fn a_banned_svcrack_that_hears_nothing_gives_up() {
    need("svcrack");
    let (dir, _p, addr, admin) = server("", "answer = \"drop\"\n");
    let started = Instant::now();
    let out = svcrack(dir.path(), addr, "102", "correct-horse", 60, &[]);
    assert!(!out.contains("The password for"), "{out}");
    eprintln!("svcrack, unanswered, gave up after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        metric(
            admin,
            "sipreg_auth_failures_total{reason=\"Invalid credentials\"}"
        ),
        5
    );
}

/// The shipped lockout.lua (examples/lockout.toml, the guard behind it at 10) stops
/// svcrack before 20 guesses, with its own answer.
#[test]
fn svcrack_meets_the_lockout_script() {
    need("svcrack");
    let dir = crate::support::copy_examples();
    let cfg = dir.path().join("examples/lockout.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "udp:127.0.0.1:5060\", \"tcp:127.0.0.1:5060",
        "udp:127.0.0.1:0",
    ) + "\n[admin]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(dir.path().join("examples/sipreg.toml"), text).unwrap();
    let (mut p, addr) = Process::run(&dir.path().join("examples"));
    let admin = p.admin();
    // users.csv: alice's password is wonderland (realm example.com)
    let out = svcrack(
        dir.path(),
        addr,
        "alice",
        "wonderland",
        15,
        &["--domain", "example.com"],
    );
    assert!(!out.contains("The password for"), "{out}");
    let guesses = metric(
        admin,
        "sipreg_auth_failures_total{reason=\"Invalid credentials\"}",
    );
    eprintln!("lockout.lua: {guesses} guesses checked");
    assert!((1..20).contains(&guesses), "{guesses} guesses checked");
    assert!(
        metric(
            admin,
            "sipreg_register_refusals_total{reason=\"Locked out\"}"
        ) > 0,
        "lockout.lua answered"
    );
}
