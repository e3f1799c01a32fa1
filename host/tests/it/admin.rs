//! The operator's view: SIPp registers real devices, and the admin API, the CLI
//! (`sipreg status`, `history`, `maintenance`, `reload`) and `/metrics` read them back.
//! The status page in a real browser is in `page`.

use crate::process::Process;
use crate::sippkit::{check, expect, register_message, scenario, sipp};
use crate::support::{Served, app, conf, serve};
use serde_json::Value;
use sipreg::config::{self, Transport};
use std::net::SocketAddr;
use std::time::Duration;

/// alice/wonderland and bob/builder exist; MD5 first for SIPp.
pub const ALIASES: &str = r#"
[auth]
challenge = "www"
realm = "127.0.0.1"
algorithms = ["MD5"]

[[aliases]]
alias = "alice@127.0.0.1"
username = "alice"
password = "wonderland"

[[aliases]]
alias = "bob@127.0.0.1"
username = "bob"
password = "builder"
"#;

/// A server with an admin listener on a free loopback port (`admin` adds keys to it).
pub fn server(admin: &str) -> Served {
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            r#"
[store]
type = "memory"

[admin]
listen = "127.0.0.1:0"
{admin}
{ALIASES}"#
        ),
    );
    let cfg = config::parse(&toml, "admin.toml").unwrap();
    serve(&cfg, app(&cfg, Vec::new()).core)
}

/// A REGISTER of `user` (Contact at SIPp's own address), challenged, then answered
/// with `password`, expecting `code` (and `checks` on it).
pub fn register(user: &str, password: &str, expires: u32, code: u16, checks: &str) -> String {
    let contact = format!(
        "      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>\n      Expires: {expires}\n"
    );
    let answer = format!("      [authentication username={user} password={password}]\n");
    register_message(1, user, &contact)
        + "  <recv response=\"401\" auth=\"true\" timeout=\"5000\"/>\n"
        + &register_message(2, user, &(contact + &answer))
        + &expect(code, checks)
}

/// `user` registers with SIPp at `server` over `t` (challenged, then `password`) and gets
/// `code`.
pub fn sipp_registers(
    server: SocketAddr,
    t: Transport,
    user: &str,
    password: &str,
    expires: u32,
    code: u16,
) {
    let s = scenario(&register(user, password, expires, code, ""));
    sipp(server, t, &s, &[]).unwrap_or_else(|e| panic!("{user} over {t}: {e}"));
}

/// The `sipreg` binary on `listen` (SIP), with `store` and `[admin]` keys `admin` on a
/// free port, alice and bob as aliases: its folder, the process, its first SIP address.
fn process(listen: &str, store: &str, admin: &str) -> (tempfile::TempDir, Process, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nlisten = {listen}\ndomains = [\"127.0.0.1\"]\n\n[store]\ntype = \"{store}\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n{admin}\n{ALIASES}"
    );
    std::fs::write(dir.path().join("sipreg.toml"), toml).unwrap();
    let (p, addr) = Process::run(dir.path());
    (dir, p, addr)
}

/// `sipreg args`: exit code, stdout, stderr.
fn sipreg(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(args)
        .env_remove("SIPREG_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One REGISTER of `user` without credentials, expecting `code` (and `checks` on it).
fn plain(user: &str, code: u16, checks: &str) -> String {
    let contact =
        format!("      Contact: <sip:{user}@[local_ip]:[local_port]>\n      Expires: 300\n");
    register_message(1, user, &contact) + &expect(code, checks)
}

/// The admin API's base URL.
pub fn base(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// An HTTP request to the admin API: status and body (JSON, or text as a string).
pub fn http(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let auth = token.map(|t| format!("Bearer {t}"));
    let answer = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = agent.delete(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        (m, b) => {
            let mut r = if m == "PUT" {
                agent.put(url)
            } else {
                agent.post(url)
            };
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r = r.header("Content-Type", "application/json");
            r.send(b.unwrap_or(""))
        }
    };
    let mut r = answer.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn get(url: &str) -> (u16, Value) {
    http("GET", url, None, None)
}

fn aliases_of(v: &Value) -> Vec<String> {
    v["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["alias"].as_str().unwrap().to_owned())
        .collect()
}

/// One history entry with this outcome and reason, if any.
fn entry<'a>(history: &'a Value, outcome: &str, reason: &str) -> Option<&'a Value> {
    history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["outcome"] == outcome && e["reason"] == reason)
}

#[test]
fn the_api_reads_back_what_sipp_registered_and_removes_it() {
    let s = server("");
    let api = base(s.running.admin.unwrap());
    let udp = s.running.addr(Transport::Udp).unwrap();
    let tcp = s.running.addr(Transport::Tcp).unwrap();
    sipp_registers(udp, Transport::Udp, "alice", "wonderland", 300, 200);
    sipp_registers(tcp, Transport::Tcp, "bob", "builder", 600, 200);
    sipp_registers(udp, Transport::Udp, "alice", "wrong", 300, 401);
    sipp(
        udp,
        Transport::Udp,
        &scenario(&plain("mallory", 403, "")),
        &[],
    )
    .unwrap();

    let (code, all) = get(&format!("{api}/api/registrations"));
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["total"], 2, "{all}");
    assert_eq!(aliases_of(&all), ["alice@127.0.0.1", "bob@127.0.0.1"]);
    let alice = &all["registrations"][0];
    assert_eq!(alice["transport"], "udp");
    assert!(
        alice["contact"]
            .as_str()
            .unwrap()
            .starts_with("<sip:alice@127.0.0.1:")
    );
    let left = alice["expires_in"].as_u64().unwrap();
    assert!((290..=300).contains(&left), "{left}");
    assert_eq!(alice["reach"], "UNKNOWN");
    assert_eq!(all["registrations"][1]["transport"], "tcp");

    // A limit keeps the first by alias; the total counts all.
    let (_, v) = get(&format!("{api}/api/registrations?limit=1"));
    assert_eq!(
        (aliases_of(&v), v["total"].as_u64()),
        (vec!["alice@127.0.0.1".to_owned()], Some(2))
    );
    // Filters: alias (part of it, any case), transport, source.
    let (_, v) = get(&format!("{api}/api/registrations?alias=ALI"));
    assert_eq!(aliases_of(&v), ["alice@127.0.0.1"]);
    let (_, v) = get(&format!("{api}/api/registrations?transport=tcp"));
    assert_eq!(aliases_of(&v), ["bob@127.0.0.1"]);
    let bob_source = all["registrations"][1]["source"]
        .as_str()
        .unwrap()
        .to_owned();
    let port = bob_source.rsplit(':').next().unwrap();
    let (_, v) = get(&format!("{api}/api/registrations?source=:{port}"));
    assert_eq!(aliases_of(&v), ["bob@127.0.0.1"]);
    let (_, v) = get(&format!("{api}/api/registrations?source=192.0.2."));
    assert_eq!(v["total"], 0);
    let (code, v) = get(&format!("{api}/api/registrations?transport=sctp"));
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("udp, tcp, tls, ws or wss")
    );

    // One AOR, as an operator types it.
    let (code, v) = get(&format!("{api}/api/registrations/sip:alice@127.0.0.1"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(aliases_of(&v), ["alice@127.0.0.1"]);
    let (code, _) = get(&format!("{api}/api/registrations/nobody@127.0.0.1"));
    assert_eq!(code, 404);

    // The history: added, the wrong password and the unknown alias with their reasons.
    let (_, h) = get(&format!("{api}/api/history?alias=alice@127.0.0.1"));
    let added = entry(&h, "added", "Registration added").expect("alice added");
    assert_eq!(added["transport"], "udp");
    let refused = entry(&h, "refused", "Invalid credentials").expect("wrong password");
    assert_eq!(refused["code"], 401);
    assert!(
        h["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["alias"] == "alice@127.0.0.1")
    );
    let (_, h) = get(&format!("{api}/api/history?outcome=refused"));
    let mallory = entry(&h, "refused", "Alias not found").expect("unknown alias");
    assert_eq!(mallory["alias"], "mallory@127.0.0.1");
    assert_eq!(mallory["code"], 403);
    assert!(
        h["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["outcome"] == "refused")
    );

    // Removal: gone from the store, in the history, a second removal finds nothing.
    let (code, v) = http(
        "DELETE",
        &format!("{api}/api/registrations/alice@127.0.0.1"),
        None,
        None,
    );
    assert_eq!((code, v["removed"].as_u64()), (200, Some(1)), "{v}");
    let (code, _) = get(&format!("{api}/api/registrations/alice@127.0.0.1"));
    assert_eq!(code, 404);
    let (_, h) = get(&format!(
        "{api}/api/history?alias=alice@127.0.0.1&outcome=deleted"
    ));
    assert!(
        entry(&h, "deleted", "Removed by the administrator").is_some(),
        "{h}"
    );
    let (code, _) = http(
        "DELETE",
        &format!("{api}/api/registrations/alice@127.0.0.1"),
        None,
        None,
    );
    assert_eq!(code, 404);

    let (code, health) = get(&format!("{api}/api/health"));
    assert_eq!(code, 200);
    assert_eq!(
        (health["status"].as_str(), health["bindings"].as_u64()),
        (Some("ok"), Some(1))
    );
    let (code, v) = get(&format!("{api}/api/nothing"));
    assert_eq!(code, 404, "{v}");
}

#[test]
fn a_token_guards_everything_but_the_page() {
    let s = server("token = \"s3cret\"");
    let api = base(s.running.admin.unwrap());
    for path in [
        "/api/health",
        "/api/registrations",
        "/api/history",
        "/metrics",
    ] {
        let url = format!("{api}{path}");
        assert_eq!(
            http("GET", &url, None, None).0,
            401,
            "{path} without a token"
        );
        assert_eq!(
            http("GET", &url, Some("s3creT"), None).0,
            401,
            "{path} wrong token"
        );
        assert_eq!(
            http("GET", &url, Some("s3cret"), None).0,
            200,
            "{path} right token"
        );
    }
    let body = Some(r#"{"maintenance": true}"#);
    let url = format!("{api}/api/maintenance");
    assert_eq!(http("PUT", &url, None, body).0, 401);
    assert!(!s.running.core.registrar().in_maintenance());
    assert_eq!(http("PUT", &url, Some("s3cret"), body).0, 200);
    assert!(s.running.core.registrar().in_maintenance());
    let (code, page) = get(&format!("{api}/"));
    assert_eq!(code, 200);
    assert!(
        page.as_str()
            .unwrap()
            .contains("<title>sipreg status</title>")
    );
}

/// The value of a sample in Prometheus text (0 when absent).
pub fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[test]
fn metrics_move_with_the_traffic() {
    let s = server("");
    let api = base(s.running.admin.unwrap());
    let udp = s.running.addr(Transport::Udp).unwrap();
    let scrape = || match get(&format!("{api}/metrics")) {
        (200, Value::String(t)) => t,
        other => panic!("{other:?}"),
    };
    let before = scrape();
    let ok = "sipreg_register_responses_total{code=\"200\",outcome=\"ok\"}";
    let challenged = "sipreg_register_responses_total{code=\"401\",outcome=\"challenged\"}";
    let wrong = "sipreg_auth_failures_total{reason=\"Invalid credentials\"}";
    let auth_calls =
        "sipreg_hook_duration_seconds_count{hook=\"authenticate\",implementation=\"builtin\"}";
    // Alice three times (one SIPp port: one binding, refreshed), one wrong password.
    let three = scenario(&register("alice", "wonderland", 300, 200, ""));
    sipp(udp, Transport::Udp, &three, &["-m", "3"]).unwrap();
    sipp_registers(udp, Transport::Udp, "bob", "nope", 300, 401);
    let after = scrape();
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(delta(ok), 3.0, "{after}");
    assert_eq!(delta(challenged), 5.0, "{after}");
    assert_eq!(delta(wrong), 1.0, "{after}");
    assert_eq!(delta(auth_calls), 8.0, "{after}");
    assert_eq!(sample(&after, "sipreg_registrations"), 1.0, "{after}");
    assert_eq!(sample(&after, "sipreg_maintenance"), 0.0);
    assert_eq!(sample(&after, "sipreg_store_up"), 1.0);
    // Every family has its HELP and TYPE, every sample line a name, labels and a number.
    for l in after.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = l.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{l}");
        let family = name.split('{').next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| family.strip_suffix(s))
            .unwrap_or(family);
        assert!(
            after.contains(&format!("# TYPE {base} "))
                || after.contains(&format!("# TYPE {family} ")),
            "{l}"
        );
    }
}

#[test]
fn maintenance_on_through_the_cli_gives_503_to_sipp_and_off_restores_200() {
    let (dir, mut p, udp) = process(r#"["udp:127.0.0.1:0"]"#, "memory", r#"token = "t0k""#);
    let api = base(p.admin());
    let cfg = dir.path().join("sipreg.toml");
    // The CLI at this URL, with the token from the configuration.
    let cli = |args: &[&str]| {
        let cfg = cfg.to_str().unwrap();
        sipreg(&[args, &["--admin", &api, "--config", cfg]].concat())
    };
    sipp_registers(udp, Transport::Udp, "alice", "wonderland", 300, 200);

    let (code, out, err) = cli(&["maintenance", "on"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("maintenance on"), "{out}");
    p.wait_for("Maintenance mode on");
    // In maintenance the 503 comes before any challenge.
    let refused = plain("bob", 503, &check("Retry-After", "60", false));
    sipp(udp, Transport::Udp, &scenario(&refused), &[]).unwrap();
    let (code, out, _) = cli(&["status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("maintenance ON"), "{out}");
    let metrics = http("GET", &format!("{api}/metrics"), Some("t0k"), None).1;
    let metrics = metrics.as_str().unwrap();
    assert_eq!(sample(metrics, "sipreg_maintenance"), 1.0, "{metrics}");
    assert_eq!(
        sample(
            metrics,
            "sipreg_register_responses_total{code=\"503\",outcome=\"unavailable\"}"
        ),
        1.0
    );

    let (code, out, _) = cli(&["maintenance", "off"]);
    assert_eq!((code, out.trim()), (Some(0), "maintenance off"));
    sipp_registers(udp, Transport::Udp, "bob", "builder", 300, 200);

    // Without the token the CLI says what went wrong and fails.
    let (code, _, err) = sipreg(&["status", "--admin", &api]);
    assert_eq!(code, Some(1));
    assert!(err.contains("401"), "{err}");
}

#[test]
fn status_and_history_print_tables_of_what_sipp_registered() {
    let (_dir, mut p, udp) = process(r#"["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]"#, "memory", "");
    let tcp = p.listening();
    let api = base(p.admin());
    let cli = |args: &[&str]| {
        let (code, out, err) = sipreg(&[args, &["--admin", &api]].concat());
        assert_eq!(code, Some(0), "{args:?}: {err}");
        out
    };
    sipp_registers(udp, Transport::Udp, "alice", "wonderland", 300, 200);
    sipp_registers(tcp, Transport::Tcp, "bob", "builder", 600, 200);
    sipp_registers(udp, Transport::Udp, "bob", "wrong", 300, 401);

    let status = cli(&["status"]);
    let lines: Vec<&str> = status.lines().collect();
    assert!(
        lines[0].starts_with("Alias") && lines[0].contains("Status"),
        "{status}"
    );
    let alice = lines
        .iter()
        .find(|l| l.starts_with("alice@127.0.0.1"))
        .expect("alice");
    assert!(
        alice.contains(" UDP ") && alice.contains(" No ") && alice.contains("UNKNOWN"),
        "{alice}"
    );
    let bob = lines
        .iter()
        .find(|l| l.starts_with("bob@127.0.0.1"))
        .expect("bob");
    assert!(
        bob.contains(" TCP ") && (bob.contains("600s") || bob.contains("599s")),
        "{bob}"
    );
    assert!(
        status.contains("2 registration(s) of 2 alias(es); maintenance off"),
        "{status}"
    );
    let only_bob = cli(&["status", "--alias", "bob"]);
    assert!(
        !only_bob.contains("alice@") && only_bob.contains("bob@127.0.0.1"),
        "{only_bob}"
    );

    let history = cli(&["history", "--alias", "bob@127.0.0.1"]);
    let added = history
        .lines()
        .find(|l| l.contains(" added "))
        .expect("added");
    assert!(
        added.contains("bob@127.0.0.1") && added.contains(" TCP "),
        "{history}"
    );
    let refused = history
        .lines()
        .find(|l| l.contains(" refused "))
        .expect("refused");
    assert!(
        refused.contains(" 401 ") && refused.ends_with("Invalid credentials"),
        "{history}"
    );
    assert!(!history.contains("alice@"), "{history}");
    assert!(history.trim_end().ends_with("2 entries"), "{history}");
}

#[test]
fn reload_through_the_api_keeps_a_refused_script_out() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("policy.lua");
    std::fs::write(&script, "return {}\n").unwrap();
    let toml = "[server]\nlisten = [\"udp:127.0.0.1:0\"]\n\n[store]\ntype = \"memory\"\n\n[auth]\nchallenge = \"off\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[[hooks]]\ntype = \"lua\"\nscript = \"policy.lua\"\n";
    std::fs::write(dir.path().join("sipreg.toml"), toml).unwrap();
    let (mut p, _) = Process::run(dir.path());
    let api = base(p.admin());
    let reload = || {
        let (code, out, _) = sipreg(&["reload", "--admin", &api]);
        (code, out)
    };
    let (code, out) = reload();
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("reloaded") && out.contains("policy.lua"),
        "{out}"
    );
    std::fs::write(
        &script,
        "return {\n  on_request = function(ctx) end\n  oops\n}\n",
    )
    .unwrap();
    let (code, out) = reload();
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("refused") && out.contains("policy.lua:"),
        "{out}"
    );
    let (status, v) = http("POST", &format!("{api}/api/reload"), None, None);
    assert_eq!(status, 422, "{v}");
    assert!(
        v["failed"][0][1].as_str().unwrap().contains("policy.lua"),
        "{v}"
    );
    // The old version kept serving.
    let (code, health) = get(&format!("{api}/api/health"));
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")));
}

/// A removal through the API is on disk when answered: after SIGKILL and a restart on the
/// same file the AOR stays gone, and the other binding is back.
#[test]
fn a_removal_answered_survives_kill_9() {
    let (dir, mut p, udp) = process(r#"["udp:127.0.0.1:0"]"#, "embedded", "");
    let api = base(p.admin());
    for (user, password) in [("alice", "wonderland"), ("bob", "builder")] {
        sipp_registers(udp, Transport::Udp, user, password, 600, 200);
    }
    let (code, v) = http(
        "DELETE",
        &format!("{api}/api/registrations/alice@127.0.0.1"),
        None,
        None,
    );
    assert_eq!(code, 200, "{v}");
    p.kill();
    let (mut p, _) = Process::run(dir.path());
    let api = base(p.admin());
    let (_, v) = get(&format!("{api}/api/registrations"));
    assert_eq!(aliases_of(&v), ["bob@127.0.0.1"]);
}

#[test]
fn the_cli_says_when_no_admin_api_answers() {
    let port = crate::sippkit::free_udp_port();
    let (code, out, err) = sipreg(&["status", "--admin", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.contains("cannot reach the admin API at http://127.0.0.1:"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("x.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = [\"udp:127.0.0.1:0\"]\n[auth]\nchallenge = \"off\"\n",
    )
    .unwrap();
    let (code, _, err) = sipreg(&["history", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no [admin] table"), "{err}");
}
