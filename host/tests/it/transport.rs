//! The transports over real loopback sockets: TCP framing, CRLF keep-alive, the size limit,
//! the idle timeout, replies on the request's connection; UDP request and reply.

use crate::support::{Reply, Served, app, conf, serve};
use sipreg::config::{self, Transport};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn start() -> Served {
    let toml = conf(
        "configs/loopback.toml",
        "[server]\nmax_message_size = 2000\ntcp_idle_timeout = 1\n",
    );
    let cfg = config::parse(&toml, "t.toml").unwrap();
    serve(&cfg, app(&cfg, Vec::new()).core)
}

fn options(call_id: &str, transport: &str) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:5999;branch=z9hG4bK{call_id}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Reads whole replies (the server always sends Content-Length: 0) until `n` are in.
fn read_replies(s: &mut TcpStream, n: usize) -> Vec<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while buf.windows(4).filter(|w| w == b"\r\n\r\n").count() < n && Instant::now() < deadline {
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..k]);
    }
    let text = String::from_utf8(buf).unwrap();
    text.split_inclusive("\r\n\r\n")
        .map(|m| Reply::parse(m.as_bytes()))
        .collect()
}

fn connect(r: &sipreg::server::Running) -> TcpStream {
    let s = TcpStream::connect(r.addr(Transport::Tcp).unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn tcp_frames_pipelined_and_split_messages_and_replies_on_the_same_connection() {
    let served = start();
    let r = &served.running;
    let mut s = connect(r);
    let two = options("one", "TCP") + &options("two", "TCP");
    s.write_all(two.as_bytes()).unwrap();
    let third = options("three", "TCP");
    let (a, b) = third.split_at(40);
    s.write_all(a.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b.as_bytes()).unwrap();
    let replies = read_replies(&mut s, 3);
    let ids: Vec<_> = replies
        .iter()
        .map(|r| r.header("Call-ID").unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["one", "two", "three"]);
    assert!(replies.iter().all(|r| r.code == 200));
}

#[test]
fn tcp_crlf_keepalive_is_answered() {
    let served = start();
    let r = &served.running;
    let mut s = connect(r);
    s.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    s.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"\r\n");
    // the connection still serves requests
    s.write_all(options("after-ping", "TCP").as_bytes())
        .unwrap();
    assert_eq!(read_replies(&mut s, 1)[0].code, 200);
}

/// RFC 5626 section 4.4.1: CRLF pings keep a flow open past the idle timeout (1 s here),
/// and the flow stays registered for requests to the device; when they stop, it goes.
#[test]
fn tcp_crlf_keepalives_keep_the_flow() {
    let served = start();
    let r = &served.running;
    let mut s = connect(r);
    let me = s.local_addr().unwrap();
    let mut pong = [0u8; 2];
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(400));
        s.write_all(b"\r\n\r\n").unwrap();
        s.read_exact(&mut pong).unwrap();
        assert!(
            r.core.flows().is_open(Transport::Tcp, me),
            "2 s in, past the idle timeout"
        );
    }
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "closed once the pings stop");
    let deadline = Instant::now() + Duration::from_secs(2);
    while r.core.flows().is_open(Transport::Tcp, me) {
        assert!(Instant::now() < deadline, "the closed flow is forgotten");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tcp_message_over_the_limit_closes_the_connection() {
    let served = start();
    let r = &served.running;
    let mut s = connect(r);
    let big = options("big", "TCP").replace("Content-Length: 0", "Content-Length: 5000");
    s.write_all(big.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "closed without a reply");
    assert_eq!(
        r.core
            .counters
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn tcp_idle_connection_is_closed() {
    let served = start();
    let r = &served.running;
    let mut s = connect(r);
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[test]
fn udp_request_and_oversized_datagram() {
    let served = start();
    let r = &served.running;
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let server = r.addr(Transport::Udp).unwrap();
    let big = options("big", "UDP").replace(
        "Max-Forwards: 70",
        &format!("X-Pad: {}\r\nMax-Forwards: 70", "x".repeat(3000)),
    );
    c.send_to(big.as_bytes(), server).unwrap();
    let named = options("u1", "UDP").replace("127.0.0.1:5999;", "client.example:5999;rport;");
    c.send_to(named.as_bytes(), server).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    let reply = Reply::parse(&buf[..n]);
    assert_eq!(
        (reply.code, reply.header("Call-ID")),
        (200, Some("u1")),
        "only the small one is answered"
    );
    let port = c.local_addr().unwrap().port();
    assert!(
        reply
            .header("Via")
            .unwrap()
            .ends_with(&format!(";received=127.0.0.1;rport={port}")),
        "{}",
        reply.text
    );
}
