//! The least a UDP registrar can do: a blocking receive, the Via, From, To, Call-ID and
//! CSeq lines copied into a 200, a send. No parsing, no state. `bench/bench.sh` measures
//! its CPU per registration beside sipreg's, as the floor that one receive and one send
//! per message cost on the machine.
//!
//!     udp-floor [--challenge] [--log FILE] 127.0.0.1:5071
//!
//! `--challenge`: a request without an `Authorization` line is answered 401 with a fixed
//! digest challenge, one with it 200 (nothing is checked): the floor of a registration
//! with digest auth, two receives and two sends.
//! `--log FILE`: the floor of a durable registrar. Each request answered 200 is appended
//! to FILE, and its 200 sent only after the `fdatasync` of its group: the first 200
//! waiting starts a group, which is written 10 ms later (sipreg's default
//! `commit_delay_ms`) with everything that arrived meanwhile, as sipreg's committer does.

use std::fs::File;
use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const ECHOED: [&[u8]; 5] = [b"Via:", b"From:", b"To:", b"Call-ID:", b"CSeq:"];
/// How long a group of durable 200s gathers before its write (sipreg's default).
const COMMIT_DELAY: Duration = Duration::from_millis(10);
const CHALLENGE: &[u8] = b"WWW-Authenticate: Digest realm=\"127.0.0.1\", \
    nonce=\"b1f3c9e2a7d84f6095c1e0d3a2b4c6d8\", algorithm=MD5, qop=\"auth\"\r\n";

/// 200s waiting for the `fdatasync` of their requests.
struct Group {
    file: File,
    requests: Vec<u8>,
    replies: Vec<(Vec<u8>, SocketAddr)>,
    started: Option<Instant>,
}

impl Group {
    /// Writes the requests, syncs them and sends their 200s; the receive blocks again.
    fn commit(&mut self, socket: &UdpSocket) -> io::Result<()> {
        self.file.write_all(&self.requests)?;
        self.file.sync_data()?;
        self.requests.clear();
        self.started = None;
        socket.set_read_timeout(None)?;
        for (reply, to) in self.replies.drain(..) {
            socket.send_to(&reply, to)?;
        }
        Ok(())
    }
}

fn reply(request: &[u8], challenge: bool, out: &mut Vec<u8>) -> bool {
    let authorized = !challenge
        || request
            .split(|&b| b == b'\n')
            .any(|l| l.starts_with(b"Authorization:"));
    out.clear();
    out.extend_from_slice(if authorized {
        b"SIP/2.0 200 OK\r\n"
    } else {
        b"SIP/2.0 401 Unauthorized\r\n"
    });
    for line in request.split(|&b| b == b'\n') {
        if ECHOED.iter().any(|h| line.starts_with(h)) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    if !authorized {
        out.extend_from_slice(CHALLENGE);
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    authorized
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut challenge, mut log, mut addr) = (false, None, "127.0.0.1:5071".to_owned());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--challenge" => challenge = true,
            "--log" => log = Some(args.next().expect("--log FILE")),
            _ => addr = a,
        }
    }
    let mut group = match log {
        Some(path) => Some(Group {
            file: File::options().create(true).append(true).open(path)?,
            requests: Vec::new(),
            replies: Vec::new(),
            started: None,
        }),
        None => None,
    };
    let socket = UdpSocket::bind(&addr)?;
    let mut buf = vec![0u8; 65_536];
    let mut out = Vec::with_capacity(1024);
    loop {
        let (n, src) = match socket.recv_from(&mut buf) {
            Ok(v) => v,
            // Only with --log: the receive's timeout, a group is due.
            Err(e) if group.is_some() && timed_out(&e) => {
                if let Some(g) = &mut group {
                    g.commit(&socket)?;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let authorized = reply(&buf[..n], challenge, &mut out);
        match &mut group {
            Some(g) if authorized => {
                g.requests.extend_from_slice(&buf[..n]);
                g.replies.push((out.clone(), src));
                let started = match g.started {
                    Some(s) => s,
                    None => {
                        // The group is written even if nothing else arrives (within
                        // 10 ms of the last arrival; one system call per group, not per
                        // request: a floor must not add work).
                        socket.set_read_timeout(Some(COMMIT_DELAY))?;
                        *g.started.insert(Instant::now())
                    }
                };
                if started.elapsed() >= COMMIT_DELAY {
                    g.commit(&socket)?;
                }
            }
            _ => {
                socket.send_to(&out, src)?;
            }
        }
    }
}
