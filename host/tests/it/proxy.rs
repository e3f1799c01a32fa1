//! The proxy in process: what a forwarded request and response look like, loops, hops,
//! Route and Record-Route, NAT and redirect.

use crate::support::{Harness, Register};
use sipreg::config::Transport;

const CONFIG: &str = r#"
[server]
listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
domains = ["example.com"]

[auth]
challenge = "off"

[[aliases]]
alias = "alice@example.com"

[[aliases]]
alias = "bob@example.com"
"#;

fn invite(to: &str, extra: &str) -> String {
    format!(
        "INVITE sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-i1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:{to}>\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.10:5060>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
}

/// The response `code` a device would send to a request it received as `forwarded`.
fn response_to(forwarded: &str, code: &str) -> String {
    let mut out = format!("SIP/2.0 {code}\r\n");
    for line in forwarded.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let name = line.split(':').next().unwrap().to_ascii_lowercase();
        if ["via", "from", "to", "call-id", "cseq", "record-route"].contains(&name.as_str()) {
            out.push_str(line);
            if name == "to" {
                out.push_str(";tag=b1");
            }
            out.push_str("\r\n");
        }
    }
    out + "Contact: <sip:bob@192.0.2.20:5060>\r\nContent-Length: 0\r\n\r\n"
}

/// bob registers from 192.0.2.10:5062 (the address the harness's REGISTER names in Via).
fn register_bob(h: &mut Harness, contact: &str) {
    let source = h.source;
    h.source = "192.0.2.10:5062".parse().unwrap();
    let r = h.send(&Register::new("bob@example.com").contact(contact).text());
    assert_eq!(r.code, 200);
    h.source = source;
}

#[test]
fn invite_goes_to_the_binding_and_the_response_comes_back() {
    let mut h = Harness::new(CONFIG);
    register_bob(&mut h, "<sip:bob@192.0.2.10:5062>");
    let f = h.forwarded(&invite("bob@example.com", ""));
    assert_eq!(f.to.addr, "192.0.2.10:5062".parse().unwrap());
    assert_eq!(f.to.transport, Transport::Udp);
    let text = String::from_utf8(f.bytes).unwrap();
    assert!(
        text.starts_with("INVITE sip:bob@192.0.2.10:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.sr"),
        "{text}"
    );
    assert!(
        text.contains("\r\nRecord-Route: <sip:127.0.0.1:5060;lr>\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nMax-Forwards: 69\r\n"), "{text}");
    // bob answers; the response goes back to alice without our Via
    let resp = response_to(&text, "180 Ringing");
    let back = h
        .output(resp.as_bytes())
        .forward
        .expect("response forwarded");
    assert_eq!(back.to.addr, "192.0.2.10:5060".parse().unwrap());
    let back = String::from_utf8(back.bytes).unwrap();
    assert!(
        back.starts_with(
            "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-i1;"
        ),
        "{back}"
    );
    assert!(!back.contains("z9hG4bK.sr"), "{back}");
}
