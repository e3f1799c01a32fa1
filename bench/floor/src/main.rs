//! The least a UDP registrar can do: a blocking receive, the Via, From, To, Call-ID and
//! CSeq lines copied into a 200, a send. No parsing, no state. `bench/bench.sh` measures
//! its CPU per registration beside sipreg's, as the floor that one receive and one send
//! per message cost on the machine.
//!
//!     udp-floor 127.0.0.1:5071

use std::net::UdpSocket;

const ECHOED: [&[u8]; 5] = [b"Via:", b"From:", b"To:", b"Call-ID:", b"CSeq:"];

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5071".to_owned());
    let socket = UdpSocket::bind(&addr)?;
    let mut buf = vec![0u8; 65_536];
    let mut out = Vec::with_capacity(1024);
    loop {
        let (n, src) = socket.recv_from(&mut buf)?;
        out.clear();
        out.extend_from_slice(b"SIP/2.0 200 OK\r\n");
        for line in buf[..n].split(|&b| b == b'\n') {
            if ECHOED.iter().any(|h| line.starts_with(h)) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
        out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        socket.send_to(&out, src)?;
    }
}
