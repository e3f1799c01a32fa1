//! The server's certificates: reloaded when their files change and on SIGHUP without
//! dropping a connection (a bad new pair refused, the old one serving on), chosen by SNI,
//! and checked by `sipreg check` (file, line and key; a warning for an expired one).

use crate::process::Process;
use crate::secure_client::{exchange, tls, trusting};
use crate::support::Reply;
use std::path::Path;
use std::process::Command;

/// A pair for `hosts` written as `<stem>.pem`/`<stem>.key`, valid from `from` to `to`
/// days from now.
fn pair(dir: &Path, stem: &str, hosts: &[&str], from: i64, to: i64) {
    let mut params =
        rcgen::CertificateParams::new(hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>())
            .unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from);
    params.not_after = now + time::Duration::days(to);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
}

fn register(call_id: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=f\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5999;transport=tls>\r\nContent-Length: 0\r\n\r\n"
    )
}

const CONFIG: &str = "[server]\nlisten = [\"tls:127.0.0.1:0\"]\ndomains = [\"127.0.0.1\"]\n\n[auth]\nchallenge = \"off\"\n\n[store]\ntype = \"memory\"\n\n[tls]\ncert = \"live.pem\"\nkey = \"live.key\"\n";

#[test]
fn certificates_are_reloaded_on_change_and_sighup_and_a_bad_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pair(d, "live", &["localhost"], -1, 30);
    std::fs::copy(d.join("live.pem"), d.join("first.pem")).unwrap();
    std::fs::write(d.join("sipreg.toml"), CONFIG).unwrap();
    let (mut p, addr) = Process::run(d);
    let first = trusting(&d.join("first.pem"));
    let mut open = tls(addr, "localhost", first.clone()).unwrap();
    assert_eq!(
        Reply::parse(exchange(&mut open, &register("r1")).as_bytes()).code,
        200
    );

    // A new pair replaces the files: new connections get it, the open one stays.
    pair(d, "live", &["localhost"], -1, 30);
    p.wait_for("TLS certificates reloaded");
    let second = trusting(&d.join("live.pem"));
    assert!(
        tls(addr, "localhost", first.clone()).is_err(),
        "the old certificate is gone"
    );
    let mut fresh = tls(addr, "localhost", second.clone()).unwrap();
    assert_eq!(
        Reply::parse(exchange(&mut fresh, &register("r2")).as_bytes()).code,
        200
    );
    assert_eq!(
        Reply::parse(exchange(&mut open, &register("r3")).as_bytes()).code,
        200
    );

    // A key of another certificate is refused; the previous pair keeps serving.
    pair(d, "other", &["localhost"], -1, 30);
    std::fs::copy(d.join("other.key"), d.join("live.key")).unwrap();
    let line = p.wait_for("TLS certificates not reloaded");
    assert!(line.contains("is not the key of the certificate"), "{line}");
    let mut still = tls(addr, "localhost", second.clone()).unwrap();
    assert_eq!(
        Reply::parse(exchange(&mut still, &register("r4")).as_bytes()).code,
        200
    );

    // SIGHUP reads the files again even when they did not change.
    pair(d, "live", &["localhost"], -1, 30);
    p.wait_for("TLS certificates reloaded");
    Command::new("kill")
        .args(["-HUP", &p.id().to_string()])
        .status()
        .unwrap();
    p.wait_for("TLS certificates reloaded");
    let third = trusting(&d.join("live.pem"));
    let mut last = tls(addr, "localhost", third).unwrap();
    assert_eq!(
        Reply::parse(exchange(&mut last, &register("r5")).as_bytes()).code,
        200
    );
}

#[test]
fn the_certificate_is_chosen_by_the_name_the_client_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pair(d, "live", &["localhost"], -1, 30);
    pair(d, "org", &["sip.example.org", "*.example.net"], -1, 30);
    let config = format!("{CONFIG}\n[[tls.certificates]]\ncert = \"org.pem\"\nkey = \"org.key\"\n");
    std::fs::write(d.join("sipreg.toml"), config).unwrap();
    let (_p, addr) = Process::run(d);
    let org = trusting(&d.join("org.pem"));
    for name in ["sip.example.org", "edge.example.net"] {
        let mut s = tls(addr, name, org.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            Reply::parse(exchange(&mut s, &register(name)).as_bytes()).code,
            200
        );
    }
    // Any other name gets `cert`.
    assert!(tls(addr, "localhost", org).is_err());
    let mut s = tls(addr, "localhost", trusting(&d.join("live.pem"))).unwrap();
    assert_eq!(
        Reply::parse(exchange(&mut s, &register("default")).as_bytes()).code,
        200
    );
}

#[test]
fn check_names_a_bad_pair_and_warns_of_an_expired_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_sipreg"))
            .args(["check", "--config"])
            .arg(d.join("sipreg.toml"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    std::fs::write(d.join("sipreg.toml"), CONFIG).unwrap();
    let file = d.join("sipreg.toml").display().to_string();
    // missing
    let (code, err) = check();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!("{file}:12:1: key `tls.cert`: cannot read")),
        "{err}"
    );
    // a key of another certificate
    pair(d, "live", &["localhost"], -1, 30);
    pair(d, "other", &["localhost"], -1, 30);
    std::fs::copy(d.join("other.key"), d.join("live.key")).unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with(&format!("{file}:13:1: key `tls.key`: the key in")),
        "{err}"
    );
    assert!(
        err.contains("is not the key of the certificate in"),
        "{err}"
    );
    // expired: a warning, and the configuration still checks
    pair(d, "live", &["localhost"], -30, -1);
    let (code, err) = check();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.starts_with(&format!(
            "warning: {file}:12:1: key `tls.cert`: the certificate expired on"
        )),
        "{err}"
    );
    // a TLS listener without [tls]
    std::fs::write(d.join("sipreg.toml"), CONFIG.split("[tls]").next().unwrap()).unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("key `server.listen[0]`: a tls listener needs a [tls] table"),
        "{err}"
    );
}

/// `sipreg run` on its embedded default starts with no certificate anywhere.
#[test]
fn the_default_configuration_needs_no_certificate() {
    let default = sipreg::config::parse(sipreg::config::DEFAULT_CONFIG, "default").unwrap();
    assert!(default.tls.is_none());
    assert!(
        default
            .server
            .listen
            .iter()
            .all(|l| !l.transport.is_secure())
    );
}
