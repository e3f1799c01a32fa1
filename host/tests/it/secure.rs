//! TLS, WS and WSS over real loopback sockets, with clients of our own (rustls,
//! tungstenite): registration over each, a call reaching a TLS binding on its connection,
//! RFC 7118's subprotocol and keep-alives, and what a hostile peer gets.

use crate::secure_client::{
    call, caller, cert_dir, exchange, read_message, recv, tls, tls_table, trusting, websocket,
    ws_exchange, ws_next,
};
use crate::support::{Reply, Served, app, conf, now_ms, serve};
use sipreg::config::{self, Transport};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const LISTEN: &str = r#"[server]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0", "ws:127.0.0.1:0", "wss:127.0.0.1:0"]
tcp_idle_timeout = 3
max_message_size = 4000
"#;

fn start(dir: &std::path::Path, extra: &str) -> Served {
    let toml = conf(
        "configs/loopback.toml",
        &format!("{LISTEN}\n{}\n{extra}", tls_table(dir)),
    );
    let cfg = config::parse(&toml, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    serve(&cfg, app(&cfg, Vec::new()).core)
}

/// A REGISTER as a client over `via` sends it, its Contact on `host`.
fn register(user: &str, via: &str, host: &str, call_id: &str) -> String {
    let t = via.to_ascii_lowercase();
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{via} {host};branch=z9hG4bK{call_id}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@127.0.0.1>;tag=f{call_id}\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{host};transport={t}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    )
}

fn reply(text: &str) -> Reply {
    Reply::parse(text.as_bytes())
}

/// A WSS connection to `r` that sends one REGISTER of `user` (Contact host `host`): the
/// connection and the answer.
fn wss_register(
    r: &sipreg::server::Running,
    config: std::sync::Arc<rustls::ClientConfig>,
    user: &str,
    host: &str,
    id: &str,
) -> (crate::secure_client::Ws, Reply) {
    let mut wss = websocket(
        r.addr(Transport::Wss).unwrap(),
        Some(config),
        Some("sip"),
        None,
    )
    .unwrap();
    let answer = reply(&ws_exchange(&mut wss, &register(user, "WSS", host, id)));
    (wss, answer)
}

fn binding_transport(served: &Served, aor: &str) -> Transport {
    let b = served
        .running
        .core
        .registrar()
        .location()
        .lookup(aor, now_ms())
        .unwrap();
    assert_eq!(b.len(), 1, "{aor}: {b:?}");
    b[0].transport
}

#[test]
fn tls_register_then_a_call_reaches_the_binding_on_its_connection() {
    let certs = cert_dir();
    let served = start(certs.path(), "");
    let r = &served.running;
    let config = trusting(&certs.path().join("cert.pem"));
    let mut phone = tls(r.addr(Transport::Tls).unwrap(), "localhost", config).unwrap();
    let ok = reply(&exchange(
        &mut phone,
        &register("alice", "TLS", "127.0.0.1:5999", "t1"),
    ));
    assert_eq!(ok.code, 200, "{}", ok.text);
    assert!(
        ok.header("Via").unwrap().starts_with("SIP/2.0/TLS"),
        "{}",
        ok.text
    );
    assert_eq!(
        binding_transport(&served, "alice@127.0.0.1"),
        Transport::Tls
    );

    // A call from a UDP phone: it goes out on the TLS connection, record-routed with it.
    let caller = caller();
    call(
        &caller,
        "sip:alice@127.0.0.1",
        "call1",
        r.addr(Transport::Udp).unwrap(),
    );
    let arrived = read_message(&mut phone);
    assert!(
        arrived.starts_with("INVITE sip:alice@127.0.0.1:5999;transport=tls SIP/2.0"),
        "{arrived}"
    );
    let top_via = arrived.lines().find(|l| l.starts_with("Via:")).unwrap();
    assert!(top_via.starts_with("Via: SIP/2.0/TLS "), "{arrived}");
    let rr = arrived
        .lines()
        .find(|l| l.starts_with("Record-Route:"))
        .unwrap();
    assert!(
        rr.contains("transport=tls") && rr.contains("sr-b="),
        "{arrived}"
    );
    // The phone rings: its 180 goes back to the caller over UDP.
    let mut ringing = String::from("SIP/2.0 180 Ringing\r\n");
    for l in arrived.lines().skip(1).take_while(|l| !l.is_empty()) {
        if l.starts_with("Via:")
            || l.starts_with("From:")
            || l.starts_with("Call-ID:")
            || l.starts_with("CSeq:")
            || l.starts_with("Record-Route:")
        {
            ringing.push_str(l);
            ringing.push_str("\r\n");
        } else if l.starts_with("To:") {
            ringing.push_str(&format!("{l};tag=a1\r\n"));
        }
    }
    ringing.push_str("Content-Length: 0\r\n\r\n");
    phone.write_all(ringing.as_bytes()).unwrap();
    phone.flush().unwrap();
    let back = recv(&caller);
    assert!(back.starts_with("SIP/2.0 180 Ringing"), "{back}");
    assert!(
        back.contains("branch=z9hG4bKcall1") && !back.contains("SIP/2.0/TLS"),
        "{back}"
    );

    // Once the TLS connection is closed the binding is unreachable: 480.
    drop(phone);
    let deadline = Instant::now() + Duration::from_secs(3);
    while !r.core.flows().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    call(
        &caller,
        "sip:alice@127.0.0.1",
        "call2",
        r.addr(Transport::Udp).unwrap(),
    );
    let gone = recv(&caller);
    assert!(gone.starts_with("SIP/2.0 480"), "{gone}");
}

#[test]
fn ws_and_wss_register_with_the_sip_subprotocol_and_answer_keepalives() {
    let certs = cert_dir();
    let served = start(certs.path(), "");
    let r = &served.running;
    let mut ws = websocket(r.addr(Transport::Ws).unwrap(), None, Some("sip"), None).unwrap();
    let ok = reply(&ws_exchange(
        &mut ws,
        &register("carol", "WS", "df7jal23ls0d.invalid", "w1"),
    ));
    assert_eq!(ok.code, 200, "{}", ok.text);
    assert!(
        ok.header("Via")
            .unwrap()
            .starts_with("SIP/2.0/WS df7jal23ls0d.invalid"),
        "{}",
        ok.text
    );
    assert_eq!(binding_transport(&served, "carol@127.0.0.1"), Transport::Ws);
    // RFC 5626's CRLF ping as SIP.js sends it, and a WebSocket ping.
    ws.send(Message::text("\r\n\r\n")).unwrap();
    assert_eq!(ws_next(&mut ws), "\r\n");
    ws.send(Message::Ping(b"hi".to_vec().into())).unwrap();
    let pong = loop {
        match ws.read().unwrap() {
            Message::Pong(p) => break p,
            Message::Text(t) if t.contains("Call-ID: sipreg-qualify-") => {} // a probe
            other => panic!("expected a pong, got {other:?}"),
        }
    };
    assert_eq!(&pong[..], b"hi");

    let config = trusting(&certs.path().join("cert.pem"));
    let mut wss = websocket(
        r.addr(Transport::Wss).unwrap(),
        Some(config),
        Some("sip"),
        Some("https://phone.example"),
    )
    .unwrap();
    let ok = reply(&ws_exchange(
        &mut wss,
        &register("dave", "WSS", "k2j3h4.invalid", "w2"),
    ));
    assert_eq!(ok.code, 200, "{}", ok.text);
    assert_eq!(binding_transport(&served, "dave@127.0.0.1"), Transport::Wss);

    // A call to the WS user reaches its connection, whatever the .invalid Contact says.
    let caller = caller();
    call(
        &caller,
        "sip:carol@127.0.0.1",
        "ws1",
        r.addr(Transport::Udp).unwrap(),
    );
    let arrived = ws_next(&mut ws);
    assert!(
        arrived.starts_with("INVITE sip:carol@df7jal23ls0d.invalid;transport=ws SIP/2.0"),
        "{arrived}"
    );
    let rr = arrived
        .lines()
        .find(|l| l.starts_with("Record-Route:"))
        .unwrap();
    assert!(rr.contains("transport=ws"), "{arrived}");
}

#[test]
fn websocket_without_the_sip_subprotocol_or_from_an_unlisted_origin_is_refused() {
    let certs = cert_dir();
    let served = start(
        certs.path(),
        "[websocket]\norigins = [\"https://phone.example.com\"]\n",
    );
    let r = &served.running;
    let addr = r.addr(Transport::Ws).unwrap();
    let status = |e: tokio_tungstenite::tungstenite::Error| match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    };
    assert_eq!(status(websocket(addr, None, None, None).unwrap_err()), 400);
    assert_eq!(
        status(websocket(addr, None, Some("chat"), None).unwrap_err()),
        400
    );
    assert_eq!(
        status(websocket(addr, None, Some("sip"), Some("https://evil.example")).unwrap_err()),
        403
    );
    let mut ok = websocket(
        addr,
        None,
        Some("chat, sip"),
        Some("https://phone.example.com"),
    )
    .unwrap();
    let reg = reply(&ws_exchange(
        &mut ok,
        &register("erin", "WS", "a.invalid", "w3"),
    ));
    assert_eq!(reg.code, 200);
    // counted once the refusal is written: a moment after the client read it
    let deadline = Instant::now() + Duration::from_secs(2);
    while r.core.counters.ws_upgrades_failed.load(Ordering::Relaxed) != 3 {
        assert!(Instant::now() < deadline, "three refusals counted");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn hostile_tls_and_websocket_peers_are_closed_and_counted_and_the_server_serves_on() {
    let certs = cert_dir();
    let served = start(certs.path(), "");
    let r = &served.running;
    let tls_addr = r.addr(Transport::Tls).unwrap();
    let mut buf = [0u8; 1024];
    // Garbage instead of a ClientHello.
    let mut s = TcpStream::connect(tls_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"REGISTER sip:127.0.0.1 SIP/2.0\r\n\r\n")
        .unwrap();
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(n < 64, "an alert at most, then closed");
    // A client that stalls in the handshake: closed after handshake_timeout (1 s).
    let mut stall = TcpStream::connect(tls_addr).unwrap();
    stall
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let t = Instant::now();
    assert_eq!(stall.read(&mut buf).unwrap_or(0), 0);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // A client that does not trust the certificate gives up: counted on our side too.
    let other = cert_dir();
    assert!(
        tls(
            tls_addr,
            "localhost",
            trusting(&other.path().join("cert.pem"))
        )
        .is_err()
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while r
        .core
        .counters
        .tls_handshakes_failed
        .load(Ordering::Relaxed)
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "handshakes failed: {}",
            r.core
                .counters
                .tls_handshakes_failed
                .load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // WebSocket: an unmasked client frame, a message over the limit, a close mid-message.
    let ws_addr = r.addr(Transport::Ws).unwrap();
    let dropped = r.core.counters.dropped.load(Ordering::Relaxed);
    let mut big = websocket(ws_addr, None, Some("sip"), None).unwrap();
    let huge = register("x", "WS", "a.invalid", "big") + &" ".repeat(5000);
    let _ = big.send(Message::text(huge));
    assert!(
        big.read().is_err() || big.read().is_err(),
        "closed after a message over the limit"
    );
    assert_eq!(r.core.counters.dropped.load(Ordering::Relaxed), dropped + 1);
    // an unmasked text frame, written by hand after a real upgrade
    let raw = websocket(ws_addr, None, Some("sip"), None).unwrap();
    let mut sock = raw.into_inner();
    let payload = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n";
    let mut frame = vec![0x81, payload.len() as u8];
    frame.extend_from_slice(payload);
    sock.write_all(&frame).unwrap();
    let mut closed = [0u8; 256];
    let n = sock.read(&mut closed).unwrap_or(0);
    // a close frame (0x88) or nothing: never a SIP answer
    assert!(n == 0 || closed[0] == 0x88, "{:?}", &closed[..n]);
    // a close in the middle of a fragmented message
    let frag = websocket(ws_addr, None, Some("sip"), None).unwrap();
    let mut sock = frag.into_inner();
    let mut part = vec![0x01, 0x80 | 5, 1, 2, 3, 4];
    part.extend(
        b"REGIS"
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
    );
    sock.write_all(&part).unwrap();
    drop(sock);

    // The server serves on, over every transport.
    let config = trusting(&certs.path().join("cert.pem"));
    let mut phone = tls(tls_addr, "localhost", config.clone()).unwrap();
    assert_eq!(
        reply(&exchange(
            &mut phone,
            &register("f1", "TLS", "127.0.0.1:5999", "ok1")
        ))
        .code,
        200
    );
    let mut ws = websocket(ws_addr, None, Some("sip"), None).unwrap();
    assert_eq!(
        reply(&ws_exchange(
            &mut ws,
            &register("f2", "WS", "b.invalid", "ok2")
        ))
        .code,
        200
    );
    let mut wss = websocket(
        r.addr(Transport::Wss).unwrap(),
        Some(config),
        Some("sip"),
        None,
    )
    .unwrap();
    assert_eq!(
        reply(&ws_exchange(
            &mut wss,
            &register("f3", "WSS", "c.invalid", "ok3")
        ))
        .code,
        200
    );
    // What /metrics says of it: the open connections by transport, the failures.
    let metrics = sipreg::admin::render_metrics(&r.core);
    let sample = |name: &str| crate::admin::sample(&metrics, name);
    assert!(
        sample("sipreg_tls_handshakes_failed_total") >= 3.0,
        "{metrics}"
    );
    assert!(
        sample("sipreg_websocket_upgrades_failed_total") == 0.0,
        "{metrics}"
    );
    for t in ["tls", "ws", "wss"] {
        let open = sample(&format!("sipreg_connections_open{{transport=\"{t}\"}}"));
        assert!(open >= 1.0, "{t}: {metrics}");
    }
}

#[test]
fn an_alias_may_be_limited_to_the_secure_transports() {
    let certs = cert_dir();
    let served = start(
        certs.path(),
        "[[aliases]]\nalias = \"sec@127.0.0.1\"\ntransports = [\"tls\", \"wss\"]\n",
    );
    let r = &served.running;
    let config = trusting(&certs.path().join("cert.pem"));
    let mut phone = tls(r.addr(Transport::Tls).unwrap(), "localhost", config.clone()).unwrap();
    let ok = reply(&exchange(
        &mut phone,
        &register("sec", "TLS", "127.0.0.1:5999", "s1"),
    ));
    assert_eq!(ok.code, 200, "{}", ok.text);
    let (_wss, ok) = wss_register(r, config, "sec", "s.invalid", "s2");
    assert_eq!(ok.code, 200, "{}", ok.text);
    let mut ws = websocket(r.addr(Transport::Ws).unwrap(), None, Some("sip"), None).unwrap();
    let no = reply(&ws_exchange(
        &mut ws,
        &register("sec", "WS", "s.invalid", "s3"),
    ));
    assert_eq!(
        (no.code, no.reason.as_str()),
        (403, "Forbidden (WS not enabled for alias)")
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = udp.local_addr().unwrap().to_string();
    udp.send_to(
        register("sec", "UDP", &me, "s4").as_bytes(),
        r.addr(Transport::Udp).unwrap(),
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = udp.recv(&mut buf).unwrap();
    let no = Reply::parse(&buf[..n]);
    assert_eq!(
        (no.code, no.reason.as_str()),
        (403, "Forbidden (UDP not enabled for alias)")
    );
}

/// RFC 5626 section 4.4.1's CRLF keep-alive over TLS, and TLS and WSS listeners on IPv6.
#[test]
fn tls_keepalives_and_ipv6_listeners() {
    let certs = cert_dir();
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            "[server]\nlisten = [\"udp:[::1]:0\", \"tls:[::1]:0\", \"wss:[::1]:0\"]\ndomains = [\"127.0.0.1\", \"[::1]\"]\n\n{}",
            tls_table(certs.path())
        ),
    );
    let cfg = config::parse(&toml, "v6.toml").unwrap_or_else(|e| panic!("{e}"));
    let served = serve(&cfg, app(&cfg, Vec::new()).core);
    let r = &served.running;
    let tls_addr = r.addr(Transport::Tls).unwrap();
    assert!(tls_addr.is_ipv6());
    let config = trusting(&certs.path().join("cert.pem"));
    let mut phone = tls(tls_addr, "localhost", config.clone()).unwrap();
    phone.write_all(b"\r\n\r\n").unwrap();
    phone.flush().unwrap();
    let mut pong = [0u8; 2];
    phone.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n");
    let ok = reply(&exchange(
        &mut phone,
        &register("six", "TLS", "[::1]:5999", "v1"),
    ));
    assert_eq!(ok.code, 200, "{}", ok.text);
    assert_eq!(binding_transport(&served, "six@127.0.0.1"), Transport::Tls);
    let (_wss, ok) = wss_register(r, config, "sixws", "v6.invalid", "v2");
    assert_eq!(ok.code, 200, "{}", ok.text);
}

/// A WebSocket client that never finishes its upgrade is closed at `upgrade_timeout` and
/// counted; one that upgrades and then says nothing, at `tcp_idle_timeout` (3 s here).
#[test]
fn websocket_deadlines_close_a_stalled_upgrade_and_an_idle_connection() {
    let certs = cert_dir();
    let served = start(certs.path(), "[websocket]\nupgrade_timeout = 1\n");
    let r = &served.running;
    let addr = r.addr(Transport::Ws).unwrap();
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stalled.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 256];
    assert_eq!(
        stalled.read(&mut buf).unwrap_or(0),
        0,
        "closed without an answer"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let deadline = Instant::now() + Duration::from_secs(2);
    while r.core.counters.ws_upgrades_failed.load(Ordering::Relaxed) != 1 {
        assert!(Instant::now() < deadline, "the stalled upgrade is counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut idle = websocket(addr, None, Some("sip"), None).unwrap();
    let t = Instant::now();
    loop {
        match idle.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
        assert!(t.elapsed() < Duration::from_secs(6), "still open");
    }
    assert!(
        t.elapsed() >= Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}
