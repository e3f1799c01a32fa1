//! `sips:` and TLS targets in the proxy: a sips: request reaches only a binding over a
//! secure transport, record-routed with a sips: URI; a request the dial plan sends to a
//! sips: gateway goes out on a new TLS connection that verifies the gateway's certificate
//! against `[tls] ca` for the URI's name (RFC 5922), sent as SNI.

use crate::secure_client::{
    Ca, call, caller, cert_dir, exchange, read_message, recv, tls, tls_table, trusting,
};
use crate::support::{Reply, app, conf, serve};
use sipreg::config::{self, Transport};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn a_sips_request_reaches_only_a_secure_binding() {
    let certs = cert_dir();
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]\n\n{}",
            tls_table(certs.path())
        ),
    );
    let cfg = config::parse(&toml, "sips.toml").unwrap_or_else(|e| panic!("{e}"));
    let served = serve(&cfg, app(&cfg, Vec::new()).core);
    let r = &served.running;
    let udp = r.addr(Transport::Udp).unwrap();
    // alice over UDP, bob over TLS
    let alice = caller();
    let a = alice.local_addr().unwrap();
    let reg = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {a};branch=z9hG4bKa1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: a1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@{a}>\r\nContent-Length: 0\r\n\r\n"
    );
    alice.send_to(reg.as_bytes(), udp).unwrap();
    assert!(recv(&alice).starts_with("SIP/2.0 200"));
    let config = trusting(&certs.path().join("cert.pem"));
    let mut bob = tls(r.addr(Transport::Tls).unwrap(), "localhost", config).unwrap();
    let reg = "REGISTER sips:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKb1\r\nMax-Forwards: 70\r\nFrom: <sips:bob@127.0.0.1>;tag=b\r\nTo: <sips:bob@127.0.0.1>\r\nCall-ID: b1\r\nCSeq: 1 REGISTER\r\nContact: <sips:bob@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(Reply::parse(exchange(&mut bob, reg).as_bytes()).code, 200);

    let carol = caller();
    call(&carol, "sips:alice@127.0.0.1", "s1", udp);
    let no = recv(&carol);
    assert!(
        no.starts_with("SIP/2.0 480 No binding over a secure transport"),
        "{no}"
    );
    // the same call as sip: reaches alice
    call(&carol, "sip:alice@127.0.0.1", "s2", udp);
    assert!(recv(&alice).starts_with("INVITE sip:alice@"));

    call(&carol, "sips:bob@127.0.0.1", "s3", udp);
    let arrived = read_message(&mut bob);
    assert!(
        arrived.starts_with("INVITE sips:bob@127.0.0.1:5999 SIP/2.0"),
        "{arrived}"
    );
    let rr = arrived
        .lines()
        .find(|l| l.starts_with("Record-Route:"))
        .unwrap();
    assert!(
        rr.contains("<sips:") && rr.contains("transport=tls"),
        "{arrived}"
    );
}

/// A TLS server of the test's (a gateway), with a certificate the test CA signed for
/// `names`: every message it reads, with the SNI it was asked for, goes to the channel;
/// a failed handshake sends "handshake failed".
fn gateway(ca: &Ca, names: &[&str]) -> (u16, mpsc::Receiver<String>) {
    let (cert, key) = ca.server(names);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            let mut shook = true;
            while s.conn.is_handshaking() {
                if s.conn.complete_io(&mut s.sock).is_err() {
                    shook = false;
                    break;
                }
            }
            if !shook {
                let _ = tx.send("handshake failed".to_owned());
                continue;
            }
            let sni = s.conn.server_name().unwrap_or("").to_owned();
            let m = read_message(&mut s);
            let _ = tx.send(format!("SNI {sni}\n{m}"));
        }
    });
    (port, rx)
}

#[test]
fn a_sips_gateway_is_reached_over_tls_verified_for_its_name() {
    let (ca, certs) = (Ca::new("gateway CA"), cert_dir());
    let (good, got) = gateway(&ca, &["localhost"]);
    let (wrong, refused) = gateway(&ca, &["gw.example.org"]);
    let plan = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/dial_plan.lua");
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\", \"tls:127.0.0.1:0\"]\n\n{}ca = \"{}\"\n\n[[hooks]]\ntype = \"lua\"\nscript = \"{plan}\"\n[hooks.config]\nrules = [\n  {{ match = \"^9(%d+)$\", target = \"sips:%1@localhost:{good}\" }},\n  {{ match = \"^8(%d+)$\", target = \"sips:%1@localhost:{wrong}\" }},\n]\n",
            tls_table(certs.path()),
            ca.pem().display()
        ),
    );
    let cfg = config::parse(&toml, "gw.toml").unwrap_or_else(|e| panic!("{e}"));
    let served = serve(&cfg, app(&cfg, Vec::new()).core);
    let udp = served.running.addr(Transport::Udp).unwrap();
    let carol = caller();
    call(&carol, "sip:9123@127.0.0.1", "g1", udp);
    let m = got
        .recv_timeout(Duration::from_secs(10))
        .expect("the gateway got it");
    assert!(
        m.starts_with("SNI localhost\nINVITE sips:123@localhost:"),
        "{m}"
    );
    let via = m.lines().find(|l| l.starts_with("Via:")).unwrap();
    assert!(via.starts_with("Via: SIP/2.0/TLS "), "{m}");
    // A gateway whose certificate names another host: the connection is refused by us.
    call(&carol, "sip:8123@127.0.0.1", "g2", udp);
    let m = refused
        .recv_timeout(Duration::from_secs(10))
        .expect("a connection came");
    assert_eq!(m, "handshake failed");
}
