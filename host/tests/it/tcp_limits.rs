//! What a TCP client cannot hold (issue 18, finding 6): more connections from one address
//! than `tcp_max_per_source`, a connection that never speaks, a message trickled a byte at
//! a time, a Content-Length no buffer can hold. Each is closed, and the server goes on
//! answering the others.

use crate::support::{Served, app, conf, serve};
use sipreg::config::{self, Transport};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn server(extra: &str) -> Served {
    let toml = conf("configs/loopback.toml", extra);
    let cfg = config::parse(&toml, "limits.toml").unwrap();
    serve(&cfg, app(&cfg, Vec::new()).core)
}

fn connect(s: &Served) -> TcpStream {
    let c = TcpStream::connect(s.running.addr(Transport::Tcp).unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c
}

fn options(n: u32) -> String {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-l{n}\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: limits-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Whether the server answers an OPTIONS on this connection.
fn answers(c: &mut TcpStream, n: u32) -> bool {
    if c.write_all(options(n).as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 2048];
    matches!(c.read(&mut buf), Ok(k) if k > 0 && buf.starts_with(b"SIP/2.0 200"))
}

/// Seconds until the server closes `c` (it reads end of stream), at most `limit`.
fn closed_after(c: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    c.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) if started.elapsed() < limit => return Some(started.elapsed()),
            Ok(_) => continue,
            _ => return None,
        }
    }
}

#[test]
fn one_address_gets_tcp_max_per_source_connections() {
    let s = server("[server]\ntcp_max_per_source = 3\n");
    let mut open: Vec<TcpStream> = (0..3).map(|_| connect(&s)).collect();
    for (i, c) in open.iter_mut().enumerate() {
        assert!(answers(c, i as u32), "connection {i} is served");
    }
    let mut fourth = connect(&s);
    assert!(
        closed_after(&mut fourth, Duration::from_secs(3)).is_some(),
        "the fourth is closed at once"
    );
    assert_eq!(
        s.running
            .core
            .counters
            .connections_refused
            .load(Ordering::Relaxed),
        1
    );
    // a place given back is taken again
    drop(open.pop());
    std::thread::sleep(Duration::from_millis(200));
    let mut again = connect(&s);
    assert!(
        answers(&mut again, 9),
        "a connection after one closed is served"
    );
}

#[test]
fn a_connection_that_never_speaks_is_closed() {
    let s = server("[server]\ntcp_first_byte_timeout = 1\n");
    let mut silent = connect(&s);
    let t = closed_after(&mut silent, Duration::from_secs(4)).expect("closed");
    assert!(
        t >= Duration::from_millis(800),
        "not before its time: {t:?}"
    );
    let mut other = connect(&s);
    assert!(answers(&mut other, 1));
}

#[test]
fn a_trickled_message_is_closed_and_a_huge_length_refused() {
    let s = server("[server]\ntcp_message_timeout = 1\n");
    let mut slow = connect(&s);
    let text = options(1);
    let started = Instant::now();
    let mut closed = false;
    for b in text.as_bytes() {
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let closed = closed || closed_after(&mut slow, Duration::from_secs(2)).is_some();
    assert!(closed, "a byte every 200 ms never makes a message in time");
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut huge = connect(&s);
    let head = options(2).replace("Content-Length: 0", "Content-Length: 18446744073709551615");
    huge.write_all(head.as_bytes()).unwrap();
    assert!(
        closed_after(&mut huge, Duration::from_secs(3)).is_some(),
        "a length over max_message_size closes the connection at once"
    );
    let mut fine = connect(&s);
    assert!(answers(&mut fine, 3));
}
