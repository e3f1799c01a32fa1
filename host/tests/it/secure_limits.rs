//! The connection limits of the hardening issue hold over TLS and WebSocket too: one
//! address gets `tcp_max_per_source` connections whatever their transport, a TLS
//! connection that never speaks after its handshake or trickles a message is closed, and
//! 10,000 handshakes from one address are each closed and counted while the server serves
//! on.

use crate::secure_client::{cert_dir, exchange, tls, tls_table, trusting, websocket, ws_exchange};
use crate::support::{Reply, Served, app, conf, serve};
use sipreg::config::{self, Transport};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn server(certs: &std::path::Path, extra: &str) -> Served {
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\", \"tls:127.0.0.1:0\", \"ws:127.0.0.1:0\", \"wss:127.0.0.1:0\"]\n{extra}\n{}",
            tls_table(certs)
        ),
    );
    let cfg = config::parse(&toml, "limits.toml").unwrap_or_else(|e| panic!("{e}"));
    serve(&cfg, app(&cfg, Vec::new()).core)
}

fn options(n: u32, via: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via} 127.0.0.1:5999;branch=z9hG4bK-s{n}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: slimits-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

fn ok(text: &str) -> bool {
    Reply::parse(text.as_bytes()).code == 200
}

#[test]
fn one_address_gets_tcp_max_per_source_connections_over_every_transport() {
    let certs = cert_dir();
    let s = server(certs.path(), "tcp_max_per_source = 3\n");
    let r = &s.running;
    let config = trusting(&certs.path().join("cert.pem"));
    let mut a = tls(r.addr(Transport::Tls).unwrap(), "localhost", config.clone()).unwrap();
    let mut b = websocket(r.addr(Transport::Ws).unwrap(), None, Some("sip"), None).unwrap();
    let mut c = websocket(
        r.addr(Transport::Wss).unwrap(),
        Some(config.clone()),
        Some("sip"),
        None,
    )
    .unwrap();
    assert!(ok(&exchange(&mut a, &options(1, "TLS"))));
    assert!(ok(&ws_exchange(&mut b, &options(2, "WS"))));
    assert!(ok(&ws_exchange(&mut c, &options(3, "WSS"))));
    // The fourth, whatever its transport, is closed at the door.
    assert!(tls(r.addr(Transport::Tls).unwrap(), "localhost", config.clone()).is_err());
    assert!(websocket(r.addr(Transport::Ws).unwrap(), None, Some("sip"), None).is_err());
    assert_eq!(
        r.core.counters.connections_refused.load(Ordering::Relaxed),
        2
    );
    // a place given back is taken again
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let mut again = tls(r.addr(Transport::Tls).unwrap(), "localhost", config).unwrap();
    assert!(ok(&exchange(&mut again, &options(4, "TLS"))));
}

#[test]
fn a_tls_connection_that_never_speaks_or_trickles_is_closed() {
    let certs = cert_dir();
    let s = server(
        certs.path(),
        "tcp_first_byte_timeout = 1\ntcp_message_timeout = 1\n",
    );
    let addr = s.running.addr(Transport::Tls).unwrap();
    let config = trusting(&certs.path().join("cert.pem"));
    let closed_within = |c: &mut crate::secure_client::Tls, limit: Duration| {
        let started = Instant::now();
        c.sock.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 256];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return started.elapsed() < limit,
                Ok(_) => {}
            }
        }
    };
    let mut silent = tls(addr, "localhost", config.clone()).unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(4)), "silent");
    let mut slow = tls(addr, "localhost", config.clone()).unwrap();
    let started = Instant::now();
    for b in options(1, "TLS").as_bytes().iter().take(12) {
        if slow.write_all(&[*b]).and_then(|()| slow.flush()).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(closed_within(&mut slow, Duration::from_secs(3)), "trickled");
    assert!(started.elapsed() < Duration::from_secs(6));
    let mut fine = tls(addr, "localhost", config).unwrap();
    assert!(ok(&exchange(&mut fine, &options(2, "TLS"))));
}

/// 10,000 handshakes from one address, one after another: each a connection that sends a
/// ClientHello's first bytes and goes, or garbage; all closed and counted, and a fresh
/// REGISTER over every transport gets its 200 afterwards.
#[test]
fn ten_thousand_handshakes_from_one_address_are_closed_and_counted() {
    let certs = cert_dir();
    let s = server(certs.path(), "");
    let r = &s.running;
    let addr = r.addr(Transport::Tls).unwrap();
    const N: u64 = 10_000;
    let started = Instant::now();
    for i in 0..N {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // a TLS record header of a handshake, then nonsense; or plain garbage
        let bytes: &[u8] = if i % 2 == 0 {
            b"\x16\x03\x01\x00\x05hello"
        } else {
            b"GET / HTTP/1.0\r\n\r\n"
        };
        let _ = c.write_all(bytes);
        let mut buf = [0u8; 64];
        // the server's alert, then end of stream (or a reset): closed, never held
        while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while r
        .core
        .counters
        .tls_handshakes_failed
        .load(Ordering::Relaxed)
        < N
    {
        assert!(
            Instant::now() < deadline,
            "{} of {N} counted",
            r.core
                .counters
                .tls_handshakes_failed
                .load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("{N} failed handshakes in {:?}", started.elapsed());
    assert_eq!(r.core.flows().len(), 0, "none is held");
    let config = trusting(&certs.path().join("cert.pem"));
    let mut a = tls(addr, "localhost", config.clone()).unwrap();
    assert!(ok(&exchange(&mut a, &options(1, "TLS"))));
    let mut b = websocket(r.addr(Transport::Ws).unwrap(), None, Some("sip"), None).unwrap();
    assert!(ok(&ws_exchange(&mut b, &options(2, "WS"))));
    let mut c = websocket(
        r.addr(Transport::Wss).unwrap(),
        Some(config),
        Some("sip"),
        None,
    )
    .unwrap();
    assert!(ok(&ws_exchange(&mut c, &options(3, "WSS"))));
}
