//! Mutual TLS: `[tls] verify_client` and `ca`; a client certificate's identity reaches a
//! Lua policy (`sip.tls_peer()`), which ties an alias to the certificate's `URI:` SAN.

use crate::secure_client::{Ca, cert_dir, exchange, tls, tls_table, trusting, trusting_as};
use crate::support::{Reply, Served, app, conf, serve};
use sipreg::config::{self, Transport};
use std::sync::atomic::Ordering;

/// A policy: a request over TLS registers only the alias its certificate names.
const POLICY: &str = r#"
local M = {}
function M.bind(ctx)
  local peer = sip.tls_peer()
  if sip.transport() ~= "tls" then return sip.CONTINUE end
  if peer == nil then return sip.respond(403, "Client certificate required") end
  for _, san in ipairs(peer.sans) do
    if san == "URI:sip:" .. ctx.aor then return sip.CONTINUE end
  end
  return sip.respond(403, peer.subject .. " is not " .. ctx.aor)
end
return M
"#;

fn server(mode: &str, ca: &Ca, certs: &std::path::Path) -> (Served, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.lua"), POLICY).unwrap();
    let hooks = format!(
        "[[hooks]]\ntype = \"lua\"\nscript = \"{}\"\n",
        dir.path().join("policy.lua").display()
    );
    served(mode, ca, certs, &hooks, dir)
}

fn served(
    mode: &str,
    ca: &Ca,
    certs: &std::path::Path,
    hooks: &str,
    dir: tempfile::TempDir,
) -> (Served, tempfile::TempDir) {
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]\n\n{}ca = \"{}\"\nverify_client = \"{mode}\"\n\n{hooks}",
            tls_table(certs),
            ca.pem().display(),
        ),
    );
    let cfg = config::parse(&toml, "mtls.toml").unwrap_or_else(|e| panic!("{e}"));
    (serve(&cfg, app(&cfg, Vec::new()).core), dir)
}

fn register(user: &str, call_id: &str) -> String {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=f\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@127.0.0.1:5999;transport=tls>\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn required_client_certificates_are_verified_and_reach_the_policy() {
    let (ca, certs) = (Ca::new("sipreg test CA"), cert_dir());
    let (served, _dir) = server("required", &ca, certs.path());
    let r = &served.running;
    let addr = r.addr(Transport::Tls).unwrap();
    let server_pem = certs.path().join("cert.pem");
    let alice = ca.client("alice", "sip:alice@127.0.0.1");
    let alice_again = (alice.0.clone(), alice.1.clone_key());
    let mut phone = tls(addr, "localhost", trusting_as(&server_pem, alice)).unwrap();
    let ok = Reply::parse(exchange(&mut phone, &register("alice", "m1")).as_bytes());
    assert_eq!(ok.code, 200, "{}", ok.text);
    // The same certificate cannot register bob.
    let no = Reply::parse(exchange(&mut phone, &register("bob", "m2")).as_bytes());
    assert_eq!(
        (no.code, no.reason.as_str()),
        (403, "CN=alice is not bob@127.0.0.1")
    );

    // Without a certificate, or with one of another CA: the handshake fails, counted.
    let failed = || {
        r.core
            .counters
            .tls_handshakes_failed
            .load(Ordering::Relaxed)
    };
    let before = failed();
    let refused = |config| match tls(addr, "localhost", config) {
        Err(_) => true,
        // TLS 1.3: the client finishes first; the server's alert comes on the first read
        Ok(mut s) => {
            use std::io::{Read, Write};
            let _ = s.write_all(register("carol", "m3").as_bytes());
            let mut buf = [0u8; 64];
            !matches!(s.read(&mut buf), Ok(n) if n > 0)
        }
    };
    assert!(refused(trusting(&server_pem)), "no client certificate");
    let other = Ca::new("another CA");
    assert!(refused(trusting_as(
        &server_pem,
        other.client("alice", "sip:alice@127.0.0.1")
    )));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while failed() < before + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "failures counted: {}",
            failed() - before
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // And the server serves on.
    let mut again = tls(addr, "localhost", trusting_as(&server_pem, alice_again)).unwrap();
    let ok = Reply::parse(exchange(&mut again, &register("alice", "m4")).as_bytes());
    assert_eq!(ok.code, 200);
}

#[test]
fn optional_client_certificates_let_a_client_without_one_in_for_the_policy_to_judge() {
    let (ca, certs) = (Ca::new("sipreg test CA"), cert_dir());
    let (served, _dir) = server("optional", &ca, certs.path());
    let addr = served.running.addr(Transport::Tls).unwrap();
    let server_pem = certs.path().join("cert.pem");
    let mut anonymous = tls(addr, "localhost", trusting(&server_pem)).unwrap();
    let no = Reply::parse(exchange(&mut anonymous, &register("alice", "o1")).as_bytes());
    assert_eq!(
        (no.code, no.reason.as_str()),
        (403, "Client certificate required")
    );
    let alice = ca.client("alice", "sip:alice@127.0.0.1");
    let mut phone = tls(addr, "localhost", trusting_as(&server_pem, alice)).unwrap();
    let ok = Reply::parse(exchange(&mut phone, &register("alice", "o2")).as_bytes());
    assert_eq!(ok.code, 200, "{}", ok.text);
    let no = Reply::parse(exchange(&mut phone, &register("bob", "o3")).as_bytes());
    assert_eq!(
        (no.code, no.reason.as_str()),
        (403, "CN=alice is not bob@127.0.0.1")
    );
}

/// A plugin sees the transport and the client certificate (the audit log writes them); a
/// plugin built against c01b7a9's plugin API still loads and sees a TLS request as TCP,
/// the transport it runs over.
#[test]
fn plugins_see_the_client_certificate_and_older_plugins_still_load() {
    for (package, transport, subject) in [
        ("audit-log", "tls", Some("CN=alice")),
        ("c01b7a9-audit-log", "tcp", None),
    ] {
        let (ca, certs) = (Ca::new("sipreg test CA"), cert_dir());
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let hooks = format!(
            "[[hooks]]\ntype = \"plugin\"\npath = \"{}\"\nconfig = {{ file = \"{}\" }}\n",
            crate::plugins::library(package).display(),
            audit.display()
        );
        let (s, _dir) = served("required", &ca, certs.path(), &hooks, dir);
        let addr = s.running.addr(Transport::Tls).unwrap();
        let alice = ca.client("alice", "sip:alice@127.0.0.1");
        let mut phone = tls(
            addr,
            "localhost",
            trusting_as(&certs.path().join("cert.pem"), alice),
        )
        .unwrap();
        let ok = Reply::parse(exchange(&mut phone, &register("alice", "p1")).as_bytes());
        assert_eq!(ok.code, 200, "{package}: {}", ok.text);
        let text = std::fs::read_to_string(&audit).unwrap();
        let request: serde_json::Value = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["event"] == "request")
            .unwrap_or_else(|| panic!("{package}: {text}"));
        assert_eq!(request["transport"], transport, "{package}: {request}");
        assert_eq!(
            request["tls_subject"].as_str(),
            subject,
            "{package}: {request}"
        );
        if subject.is_some() {
            assert_eq!(
                request["tls_sans"][0], "URI:sip:alice@127.0.0.1",
                "{request}"
            );
        }
    }
}
