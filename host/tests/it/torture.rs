//! RFC 4475 torture messages (copied into tests/data/rfc4475): each gets the treatment
//! the RFC asks of a registrar. Valid requests are handled (REGISTER and OPTIONS answered,
//! other methods 405/501 with the proxy off); malformed ones get 400 (505 for another SIP
//! version, 416 for another URI scheme) when a Via can be read, and are dropped otherwise;
//! responses are never answered. With the proxy on, the messages a proxy treats
//! differently get that treatment (483; a preloaded Route refused, followed in a dialog).

use crate::support::Harness;
use std::path::Path;

const OPEN: &str = r#"
[server]
listen = ["udp:127.0.0.1:0"]
[auth]
challenge = "off"
[proxy]
mode = "off"
"#;

/// `None`: no reply (a response, or no readable Via).
const EXPECTED: &[(&str, Option<u16>)] = &[
    ("valid/dblreq", Some(200)),
    ("valid/esc01", Some(405)),
    ("valid/esc02", Some(501)),
    ("valid/escnull", Some(200)),
    ("valid/intmeth", Some(501)),
    ("valid/longreq", Some(405)),
    ("valid/lwsdisp", Some(200)),
    ("valid/mpart01", Some(405)),
    ("valid/noreason", None),
    ("valid/semiuri", Some(200)),
    ("valid/transports", Some(200)),
    ("valid/unreason", None),
    ("valid/wsinv", Some(405)),
    ("invalid/badaspec", Some(400)),
    ("invalid/badbranch", Some(200)),
    ("invalid/baddate", Some(400)),
    ("invalid/baddn", Some(400)),
    ("invalid/badinv01", None),
    ("invalid/badvers", Some(505)),
    ("invalid/bcast", None),
    ("invalid/bext01", Some(420)),
    ("invalid/bigcode", None),
    ("invalid/clerr", Some(400)),
    ("invalid/cparam01", Some(200)),
    ("invalid/cparam02", Some(200)),
    ("invalid/escruri", Some(400)),
    ("invalid/insuf", Some(400)),
    ("invalid/inv2543", Some(405)),
    ("invalid/invut", Some(405)),
    ("invalid/lwsruri", Some(400)),
    ("invalid/lwsstart", Some(400)),
    ("invalid/ltgtruri", Some(400)),
    ("invalid/mcl01", Some(400)),
    ("invalid/mismatch01", Some(400)),
    ("invalid/mismatch02", Some(400)),
    ("invalid/multi01", Some(400)),
    ("invalid/ncl", Some(400)),
    ("invalid/novelsc", Some(416)),
    ("invalid/quotbal", Some(400)),
    ("invalid/regaut01", Some(401)),
    ("invalid/regbadct", Some(400)),
    ("invalid/regescrt", Some(200)),
    ("invalid/scalar02", Some(400)),
    ("invalid/scalarlg", None),
    ("invalid/sdp01", Some(405)),
    ("invalid/test", None),
    ("invalid/trws", Some(400)),
    ("invalid/unkscm", Some(416)),
    ("invalid/unksm2", Some(400)),
    ("invalid/zeromf", Some(200)),
];

fn data() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475"))
}

#[test]
fn every_message_gets_the_treatment_the_rfc_asks_for() {
    let open = Harness::new(OPEN);
    // regaut01 needs authentication on; everything else runs on the open configuration
    let authed = Harness::new(&OPEN.replace(
        "challenge = \"off\"",
        "challenge = \"www\"\nrealm = \"example.com\"",
    ));
    let mut failures = Vec::new();
    for (name, expected) in EXPECTED {
        let bytes = std::fs::read(data().join(format!("{name}.dat"))).unwrap();
        let h = if *name == "invalid/regaut01" {
            &authed
        } else {
            &open
        };
        let got = h.send_raw(&bytes);
        let code = got.as_ref().map(|r| r.code);
        if code != *expected {
            failures.push(format!(
                "{name}: expected {expected:?}, got {code:?} {}",
                got.as_ref().map(|r| r.reason.clone()).unwrap_or_default()
            ));
        }
        if let Some(r) = got
            && r.code == 400
        {
            assert!(
                r.reason != "Bad Request",
                "{name}: a 400 says what is wrong"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_proxy_counts_hops_and_follows_route() {
    let h = Harness::new(&OPEN.replace("mode = \"off\"", "mode = \"proxy\""));
    let send = |name: &str| {
        let bytes = std::fs::read(data().join(format!("{name}.dat"))).unwrap();
        h.output(&bytes)
    };
    // zeromf: OPTIONS sip:user@example.com with Max-Forwards: 0
    let out = send("invalid/zeromf");
    assert!(String::from_utf8_lossy(&out.reply).starts_with("SIP/2.0 483 Too Many Hops\r\n"));
    // mpart01: a MESSAGE outside a dialog with a Route to somebody else: not relayed
    let out = send("valid/mpart01");
    assert!(
        String::from_utf8_lossy(&out.reply).starts_with("SIP/2.0 403 Preload Route denied\r\n")
    );
    // the same within a dialog along our Record-Route goes to the next Route, body and all
    let bytes = std::fs::read(data().join("valid/mpart01.dat")).unwrap();
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let (head, body) = bytes.split_at(split);
    let head = String::from_utf8(head.to_vec()).unwrap().replacen(
        "Route: <sip:127.0.0.1:5080>",
        "Route: <sip:127.0.0.1:0;lr>, <sip:127.0.0.1:5080>",
        1,
    );
    let to = head
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .to_owned();
    let mut text = head
        .replacen(&to, &format!("{to};tag=callee"), 1)
        .into_bytes();
    text.extend_from_slice(body);
    let f = h.output(&text).forward.expect("forwarded");
    assert_eq!(f.to.addr, "127.0.0.1:5080".parse().unwrap());
    assert!(f.bytes.ends_with(body), "the multipart body goes along");
    let text = String::from_utf8_lossy(&f.bytes);
    assert!(
        text.contains("\r\nRoute: <sip:127.0.0.1:5080>\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nMax-Forwards: 69\r\n"), "{text}");
}

#[test]
fn every_message_file_has_an_expectation() {
    for dir in ["valid", "invalid"] {
        for entry in std::fs::read_dir(data().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let key = format!("{dir}/{}", name.trim_end_matches(".dat"));
            assert!(
                EXPECTED.iter().any(|(n, _)| *n == key),
                "no expectation for {key}"
            );
        }
    }
}

#[test]
fn regescrt_stores_the_contact_with_its_escaped_header() {
    let h = Harness::new(OPEN);
    let bytes = std::fs::read(data().join("invalid/regescrt.dat")).unwrap();
    let r = h.send_raw(&bytes).unwrap();
    assert_eq!(
        r.header("Contact"),
        Some("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600")
    );
}
