//! STUN Binding requests on the UDP SIP port (RFC 5626 section 4.4.2's keep-alive), asked
//! by aioice's STUN implementation (PyPI `aioice`, not ours), which parses our answer and
//! checks its FINGERPRINT: the mapped address is the client's own.

use crate::support::{app, conf, serve};
use sipreg::config::{self, Transport};
use std::process::Command;
use std::sync::atomic::Ordering;

const CLIENT: &str = r#"
import socket, sys
from aioice import stun
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(5)
req = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
req.add_fingerprint()
s.sendto(bytes(req), ("127.0.0.1", port))
data, _ = s.recvfrom(2048)
resp = stun.parse_message(data)
assert resp.message_class == stun.Class.RESPONSE, resp
assert resp.transaction_id == req.transaction_id
ip, p = resp.attributes["XOR-MAPPED-ADDRESS"]
print(f"{ip}:{p} {s.getsockname()[0]}:{s.getsockname()[1]} {'FINGERPRINT' in resp.attributes}")
"#;

#[test]
fn stun_binding_requests_on_the_sip_port_are_answered() {
    let toml = conf("configs/loopback.toml", "");
    let cfg = config::parse(&toml, "stun.toml").unwrap();
    let served = serve(&cfg, app(&cfg, Vec::new()).core);
    let port = served.running.addr(Transport::Udp).unwrap().port();
    let out = Command::new("python3")
        .args(["-c", CLIENT, &port.to_string()])
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}\n(./test.sh installs aioice from PyPI)",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{text}");
    assert_eq!(
        fields[0], fields[1],
        "the mapped address is the client's: {text}"
    );
    assert_eq!(fields[2], "True", "{text}");
    assert_eq!(
        served
            .running
            .core
            .counters
            .stun_answered
            .load(Ordering::Relaxed),
        1
    );
    // SIP on the same port is unaffected.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let options = format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKst1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: st1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(options.as_bytes(), ("127.0.0.1", port))
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = sock.recv(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));
}
