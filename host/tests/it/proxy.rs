//! The proxy in process: what a forwarded request and response look like, loops, hops,
//! Route and Record-Route, NAT and redirect.

use crate::support::{Harness, Register, find, logged};
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

pub fn invite(to: &str, extra: &str) -> String {
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

#[test]
fn a_request_that_comes_back_has_looped_and_a_changed_one_spirals() {
    let mut h = Harness::new(CONFIG);
    register_bob(&mut h, "<sip:bob@192.0.2.10:5062>");
    let first = String::from_utf8(h.forwarded(&invite("bob@example.com", "")).bytes).unwrap();
    // the same request back with our Via on it (a loop through a misconfigured peer)
    let looped = first.replacen(
        "INVITE sip:bob@192.0.2.10:5062 SIP/2.0\r\n",
        "INVITE sip:bob@example.com SIP/2.0\r\n",
        1,
    );
    let looped = looped.replacen(
        "\r\nVia: ",
        "\r\nVia: SIP/2.0/UDP 192.0.2.99;branch=z9hG4bKpeer\r\nVia: ",
        1,
    );
    let r = h.send(&looped.replace("Max-Forwards: 69", "Max-Forwards: 70"));
    assert_eq!((r.code, r.reason.as_str()), (482, "Loop Detected"));
    // the same, but for another Request-URI: a spiral, forwarded
    let spiral = looped.replace(
        "INVITE sip:bob@example.com SIP",
        "INVITE sip:alice@example.com SIP",
    );
    assert_eq!(
        h.send(&spiral).code,
        480,
        "alice has no binding: routed, not a loop"
    );
}

#[test]
fn hops_proxy_require_and_relaying() {
    let mut h = Harness::new(CONFIG);
    register_bob(&mut h, "<sip:bob@192.0.2.10:5062>");
    let r = h.send(&invite("bob@example.com", "").replace("Max-Forwards: 70", "Max-Forwards: 0"));
    assert_eq!(r.code, 483);
    let r = h.send(&invite("bob@example.com", "Proxy-Require: foo\r\n"));
    assert_eq!((r.code, r.header("Unsupported")), (420, Some("foo")));
    // Require is the callee's business: passed on
    h.forwarded(&invite("bob@example.com", "Require: 100rel\r\n"));
    let r = h.send(&invite("bob@elsewhere.org", ""));
    assert_eq!((r.code, r.reason.as_str()), (403, "Relaying denied"));
    // a To tag does not make a request ours to relay: only our Record-Route does
    let tagged = invite("bob@192.0.2.99", "")
        .replace("To: <sip:bob@192.0.2.99>", "To: <sip:bob@192.0.2.99>;tag=x");
    let r = h.send(&tagged);
    assert_eq!((r.code, r.reason.as_str()), (403, "Relaying denied"));
    let r = h.send(&invite("carol@example.com", ""));
    assert_eq!(r.code, 404, "not an alias");
    let r = h.send(&invite("alice@example.com", ""));
    assert_eq!(r.code, 480, "an alias without binding");
    // the ACK of our own 480 ends here
    let ack = |to_tag: &str| {
        invite("alice@example.com", "")
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK")
            .replace(
                "To: <sip:alice@example.com>",
                &format!("To: <sip:alice@example.com>;tag={to_tag}"),
            )
    };
    let our_tag = r
        .header("To")
        .unwrap()
        .split("tag=")
        .nth(1)
        .unwrap()
        .to_owned();
    let out = h.output(ack(&our_tag).as_bytes());
    assert!(out.reply.is_empty() && out.forward.is_none());
    // an ACK that cannot be routed is dropped, never answered
    let out = h.output(ack("theirs").as_bytes());
    assert!(out.reply.is_empty() && out.forward.is_none());
    let to_bob = ack("b1").replace("alice@example.com", "bob@example.com");
    assert_eq!(
        h.forwarded(&to_bob).to.addr,
        "192.0.2.10:5062".parse().unwrap()
    );
}

#[test]
fn cancel_takes_the_invites_branch() {
    let mut h = Harness::new(CONFIG);
    register_bob(&mut h, "<sip:bob@192.0.2.10:5062>");
    let branch = |bytes: Vec<u8>| {
        let text = String::from_utf8(bytes).unwrap();
        let via = text.lines().nth(1).unwrap().to_owned();
        via.split("branch=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    };
    let i = branch(h.forwarded(&invite("bob@example.com", "")).bytes);
    let cancel = invite("bob@example.com", "")
        .replace("INVITE sip", "CANCEL sip")
        .replace("1 INVITE", "1 CANCEL");
    let f = h.forwarded(&cancel);
    assert_eq!(f.to.addr, "192.0.2.10:5062".parse().unwrap());
    assert_eq!(branch(f.bytes), i);
}

#[test]
fn tcp_binding_without_its_connection_is_480_and_best_binding_wins() {
    let mut h = Harness::new(CONFIG);
    h.transport = Transport::Tcp;
    register_bob(&mut h, "<sip:bob@192.0.2.10:5062;transport=tcp>");
    let r = h.send(&invite("bob@example.com", ""));
    assert_eq!(
        (r.code, r.reason.as_str()),
        (480, "Connection to the device is gone")
    );
    // a second binding over UDP with a higher q is chosen
    h.transport = Transport::Udp;
    let reg = Register::new("bob@example.com")
        .call_id("second")
        .contact("<sip:bob@192.0.2.10:5064>;q=0.9");
    h.send(&reg.text());
    let f = h.forwarded(&invite("bob@example.com", ""));
    assert_eq!(f.to.addr, "192.0.2.10:5064".parse().unwrap());
}

#[test]
fn redirect_answers_302_with_every_binding() {
    let mut h = Harness::new(&format!("{CONFIG}\n[proxy]\nmode = \"redirect\"\n"));
    register_bob(&mut h, "<sip:bob@192.0.2.10:5062>;q=0.5");
    let second = Register::new("bob@example.com")
        .call_id("second")
        .contact("<sip:bob@192.0.2.10:5064>");
    h.send(&second.text());
    let r = h.send(&invite("bob@example.com", ""));
    assert_eq!(r.code, 302);
    assert_eq!(
        r.all("Contact"),
        vec![
            "<sip:bob@192.0.2.10:5064>",
            "<sip:bob@192.0.2.10:5062>;q=0.5"
        ]
    );
    assert_eq!(h.send(&invite("alice@example.com", "")).code, 480);
    let cancel = invite("bob@example.com", "")
        .replace("INVITE sip", "CANCEL sip")
        .replace("1 INVITE", "1 CANCEL");
    assert_eq!(h.send(&cancel).code, 481);
}

/// RFC 3327: a binding registered through an edge proxy is reached through it, with the
/// Path as the route set.
#[test]
fn a_binding_with_a_path_is_reached_through_it() {
    let h = Harness::new(CONFIG);
    let reg = Register::new("bob@example.com")
        .contact("<sip:bob@10.1.1.1:5060>")
        .header("Path: <sip:192.0.2.50:5070;lr>, <sip:192.0.2.51;lr>");
    assert_eq!(h.send(&reg.text()).code, 200);
    let f = h.forwarded(&invite("bob@example.com", ""));
    assert_eq!(f.to.addr, "192.0.2.50:5070".parse().unwrap());
    let text = String::from_utf8(f.bytes).unwrap();
    assert!(
        text.starts_with("INVITE sip:bob@10.1.1.1:5060 SIP/2.0\r\n"),
        "{text}"
    );
    assert!(
        text.contains("\r\nRoute: <sip:192.0.2.50:5070;lr>, <sip:192.0.2.51;lr>\r\n"),
        "{text}"
    );
}

/// A phone with this server as its outbound proxy preloads a Route to it: the request is
/// still routed by its Request-URI (and the Route to us goes).
#[test]
fn a_preloaded_route_to_us_is_consumed() {
    let mut h = Harness::new(CONFIG);
    register_bob(&mut h, "<sip:bob@192.0.2.10:5062>");
    let f = h.forwarded(&invite(
        "bob@example.com",
        "Route: <sip:127.0.0.1:5060;lr>\r\n",
    ));
    assert_eq!(f.to.addr, "192.0.2.10:5062".parse().unwrap());
    let text = String::from_utf8(f.bytes).unwrap();
    assert!(!text.contains("\r\nRoute:"), "{text}");
    // by our domain name, too
    let f = h.forwarded(&invite(
        "bob@example.com",
        "Route: <sip:example.com;lr>\r\n",
    ));
    assert_eq!(f.to.addr, "192.0.2.10:5062".parse().unwrap());
}

/// RFC 3608: the Service-Route of a 200 (here carol's `[[aliases]] reply_headers`) is signed
/// by this server; a device that preloads it as its Route is sent to that hop, with the
/// Request-URI and the Route as they are. A preloaded Route it did not hand out (unsigned,
/// or the signature moved to another hop) is still refused.
#[test]
fn a_preloaded_service_route_we_handed_out_is_followed() {
    let config = format!(
        "{CONFIG}\n[[aliases]]\nalias = \"carol@example.com\"\nreply_headers = {{ \"Service-Route\" = \"<sip:192.0.2.50:5070;lr>\" }}\n"
    );
    let h = Harness::new(&config);
    let r = h.send(
        &Register::new("carol@example.com")
            .contact("<sip:carol@192.0.2.10:5060>")
            .text(),
    );
    assert_eq!(r.code, 200, "{r:?}");
    let route = r
        .header("Service-Route")
        .expect("a Service-Route")
        .to_owned();
    assert!(route.starts_with("<sip:192.0.2.50:5070;lr;sr="), "{route}");
    let from_carol = |route: &str| {
        invite("bob@example.com", &format!("Route: {route}\r\n")).replace(
            "<sip:alice@example.com>;tag=a1",
            "<sip:carol@example.com>;tag=c1",
        )
    };
    let f = h.forwarded(&from_carol(&route));
    assert_eq!(f.to.addr, "192.0.2.50:5070".parse().unwrap());
    let text = String::from_utf8(f.bytes).unwrap();
    assert!(
        text.starts_with("INVITE sip:bob@example.com SIP/2.0\r\n"),
        "{text}"
    );
    assert!(text.contains(&format!("\r\nRoute: {route}\r\n")), "{text}");
    for forged in [
        "<sip:192.0.2.50:5070;lr>".to_owned(),
        route.replace("192.0.2.50", "198.51.100.9"),
    ] {
        let lines = logged(|| {
            let r = h.send(&from_carol(&forged));
            assert_eq!(
                (r.code, r.reason.as_str()),
                (403, "Preload Route denied"),
                "{forged}"
            );
        });
        find(&lines, &["Preload Route denied"]);
    }
}

/// Every method RFC 3261 and its extensions define for calls and events is routed the
/// same way; a refusal is logged with its reason.
#[test]
fn every_method_is_routed_and_refusals_say_why() {
    let mut h = Harness::new(CONFIG);
    register_bob(&mut h, "<sip:bob@192.0.2.10:5062>");
    for m in [
        "INVITE",
        "BYE",
        "MESSAGE",
        "OPTIONS",
        "SUBSCRIBE",
        "NOTIFY",
        "INFO",
        "UPDATE",
        "REFER",
        "PUBLISH",
        "PRACK",
    ] {
        let req = invite("bob@example.com", "")
            .replace("INVITE sip:", &format!("{m} sip:"))
            .replace("1 INVITE", &format!("1 {m}"));
        let f = h.forwarded(&req);
        assert_eq!(f.to.addr, "192.0.2.10:5062".parse().unwrap(), "{m}");
        assert!(
            String::from_utf8_lossy(&f.bytes).starts_with(&format!("{m} sip:bob@192.0.2.10:5062 "))
        );
    }
    let lines = logged(|| assert_eq!(h.send(&invite("alice@example.com", "")).code, 480));
    find(
        &lines,
        &[
            "Request not routed",
            "status=480",
            "reason=\"No registration\"",
        ],
    );
    let lines = logged(|| assert_eq!(h.send(&invite("carol@example.com", "")).code, 404));
    find(
        &lines,
        &[
            "Request not routed",
            "alias=\"carol@example.com\"",
            "reason=\"Alias not found\"",
        ],
    );
}
