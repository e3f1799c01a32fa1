//! pjsua2 (PyPI `pjsua2-python`, PJSIP's own library) registers with digest auth over
//! TLS, verifying our certificate (`tests/data/clients/pjsua2_register.py`), and refuses
//! a server it cannot verify. It registers as an RFC 5626 outbound flow (`+sip.instance`,
//! `reg-id`, `;ob`) over TLS.

use crate::secure_client::{cert_dir, tls_table};
use crate::support::{app, conf, now_ms, serve};
use sipreg::config::{self, Transport};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/clients/pjsua2_register.py")
}

/// Runs the client; its first line of output, and the child (registered until its stdin
/// closes).
fn register(args: &[&str]) -> (String, std::process::Child) {
    let mut child = Command::new("python3")
        .arg(script())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // pjlib prints a few lines of its own first.
    let line = BufReader::new(child.stdout.as_mut().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("REGISTERED") || l.starts_with("FAILED"))
        .unwrap_or_default();
    (line, child)
}

#[test]
fn pjsua2_registers_over_tls_and_refuses_a_server_it_cannot_verify() {
    let certs = cert_dir();
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]\n\n[auth]\nchallenge = \"www\"\n\n[[aliases]]\nalias = \"alice@127.0.0.1\"\npassword = \"wonderland\"\ntransports = [\"tls\"]\n\n{}",
            tls_table(certs.path())
        ),
    );
    let cfg = config::parse(&toml, "pjsua2.toml").unwrap_or_else(|e| panic!("{e}"));
    let served = serve(&cfg, app(&cfg, Vec::new()).core);
    let tls = served.running.addr(Transport::Tls).unwrap().to_string();
    let ca = certs.path().join("cert.pem");
    let ca = ca.to_str().unwrap();
    let (line, mut child) = register(&["tls", &tls, "alice@127.0.0.1", "wonderland", ca]);
    assert_eq!(
        line, "REGISTERED 200 OK",
        "(./test.sh installs pjsua2-python)"
    );
    let b = served
        .running
        .core
        .registrar()
        .location()
        .lookup("alice@127.0.0.1", now_ms())
        .unwrap();
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].transport, Transport::Tls);
    assert!(b[0].key.contains("transport=tls"), "{b:?}");
    // pjsua2 registers as an RFC 5626 outbound flow: instance and reg-id over TLS.
    assert_eq!(b[0].reg_id.as_deref(), Some("1"), "{b:?}");
    assert!(b[0].instance.is_some(), "{b:?}");
    drop(child.stdin.take()); // unregisters and exits
    assert!(child.wait().unwrap().success());
    // A wrong password is refused; a certificate it does not trust, it refuses.
    let (line, mut c) = register(&["tls", &tls, "alice@127.0.0.1", "wrong", ca]);
    assert!(
        line.starts_with("FAILED 401") || line.starts_with("FAILED 403"),
        "{line}"
    );
    let _ = c.wait();
    let other = cert_dir();
    let other_ca = other.path().join("cert.pem");
    let (line, mut c) = register(&[
        "tls",
        &tls,
        "alice@127.0.0.1",
        "wonderland",
        other_ca.to_str().unwrap(),
    ]);
    assert!(
        line.starts_with("FAILED") && !line.starts_with("FAILED 200"),
        "{line}"
    );
    let _ = c.wait();
}
