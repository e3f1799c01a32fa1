//! `bind`'s limits for one AOR and the headers it adds to the 200: quinn's own limits
//! (1 binding, none evicted, 60 to 120 s) and headers, beside alice on `[registrar]`'s.

use super::{Harness, battery, digest_reply};
use crate::support::{Register, Reply};

/// What a reply says of the limits: its code, and for a 423 its Min-Expires, for a 200
/// its contacts' expiry and the added headers.
fn seen(r: &Reply) -> String {
    let mut out = r.code.to_string();
    if let Some(m) = r.header("Min-Expires") {
        out.push_str(&format!(" Min-Expires={m}"));
    }
    for (contact, expires) in r.contact_expires() {
        out.push_str(&format!(" {contact};expires={expires}"));
    }
    for name in ["P-Associated-URI", "Service-Route"] {
        for v in r.all(name) {
            // The signature this server adds to a Service-Route (its key is random here).
            let v = match v.find(";sr=") {
                Some(at) if v.len() == at + 4 + 16 + 1 => format!("{};sr=(signed)>", &v[..at]),
                _ => v.to_owned(),
            };
            out.push_str(&format!(" {name}={v}"));
        }
    }
    out
}

fn quinn(contact: &str, expires: u32, cseq: u32) -> Register {
    Register::new("quinn@example.com")
        .contact(&format!("<{contact}>;expires={expires}"))
        .cseq(cseq)
}

fn limits(h: &mut Harness) -> Vec<(&'static str, String)> {
    let desk = "sip:quinn@192.0.2.20:5060";
    let soft = "sip:quinn@192.0.2.21:5060";
    let r = |req| seen(&digest_reply(h, req, "quinn", "quinn-pw"));
    let alice = Register::new("alice@example.com")
        .contact("<sip:alice@192.0.2.10:5060>;expires=30")
        .cseq(50);
    vec![
        ("quinn asks 30 s", r(quinn(desk, 30, 1))),
        ("quinn asks 3600 s", r(quinn(desk, 3600, 10))),
        ("quinn adds a second contact", r(quinn(soft, 100, 20))),
        ("quinn refreshes hers", r(quinn(desk, 90, 30))),
        (
            "alice asks 30 s",
            seen(&digest_reply(h, alice, "alice", "wonderland")),
        ),
    ]
}

fn expected() -> Vec<(&'static str, String)> {
    let headers = " P-Associated-URI=<sip:quinn@example.com> Service-Route=<sip:edge.example.com;lr;sr=(signed)>";
    vec![
        ("quinn asks 30 s", "423 Min-Expires=60".into()),
        (
            "quinn asks 3600 s",
            format!("200 sip:quinn@192.0.2.20:5060;expires=120{headers}"),
        ),
        ("quinn adds a second contact", "403".into()),
        (
            "quinn refreshes hers",
            format!("200 sip:quinn@192.0.2.20:5060;expires=90{headers}"),
        ),
        (
            "alice asks 30 s",
            "200 sip:alice@192.0.2.10:5060;expires=30".into(),
        ),
    ]
}

battery!(limits, expected());
