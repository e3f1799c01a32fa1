//! Writing what a proxy passes on: a request with our Via on top, the received Via marked
//! with `received`/`rport`, Max-Forwards decremented, the Route set replaced and our
//! Record-Route added (RFC 3261 section 16.6); a response less our Via (section 16.7).
//! Every other header and the body go out as they came.

use crate::sip::params::split_outside_quotes;
use crate::sip::response::{push_number, write_received};
use crate::sip::scan;
use crate::sip::via::Via;
use crate::sip::{HeaderName, Message};
use std::net::SocketAddr;

/// How a request is changed on its way through.
#[derive(Debug)]
pub struct Changes<'a> {
    pub request_uri: &'a str,
    /// Our Via value.
    pub via: &'a str,
    /// Where the request came from (for `received`/`rport` on its top Via).
    pub source: SocketAddr,
    /// The Route values to send, in order (the received ones less ours, after a Path).
    pub routes: &'a [&'a str],
    /// Our Record-Route values, topmost first.
    pub record_route: &'a [String],
}

fn line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn routes(out: &mut Vec<u8>, values: &[&str]) {
    if !values.is_empty() {
        line(out, "Route", &values.join(", "));
    }
}

fn record_routes(out: &mut Vec<u8>, values: &[String]) {
    for v in values {
        line(out, "Record-Route", v);
    }
}

fn end(out: &mut Vec<u8>, msg: &Message, had_length: bool) {
    if !had_length {
        out.extend_from_slice(b"Content-Length: ");
        push_number(out, msg.body().len() as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(msg.body());
}

/// Writes the request `msg` (top Via `top`) as forwarded with `c`.
pub fn request(msg: &Message, top: &Via<'_>, c: &Changes<'_>, out: &mut Vec<u8>) {
    let method = msg.start_line().split(' ').next().unwrap_or("");
    out.reserve(msg.head().len() + msg.body().len() + 256);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(c.request_uri.as_bytes());
    out.extend_from_slice(b" SIP/2.0\r\n");
    line(out, "Via", c.via);
    let (mut first_via, mut routes_done, mut rr_done) = (true, false, false);
    let (mut max_forwards, mut had_length) = (false, false);
    for (name, raw, value) in msg.entries() {
        match name {
            HeaderName::Via if first_via => {
                first_via = false;
                out.extend_from_slice(raw.as_bytes());
                out.extend_from_slice(b": ");
                write_received(out, top, c.source);
                for rest in split_outside_quotes(value, b',').skip(1) {
                    out.extend_from_slice(b", ");
                    out.extend_from_slice(scan::trim(rest).as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
            HeaderName::MaxForwards => {
                max_forwards = true;
                let n: u32 = value.parse().unwrap_or(70);
                out.extend_from_slice(raw.as_bytes());
                out.extend_from_slice(b": ");
                push_number(out, u64::from(n.saturating_sub(1)));
                out.extend_from_slice(b"\r\n");
            }
            HeaderName::Route => {
                if !routes_done {
                    routes(out, c.routes);
                    routes_done = true;
                }
            }
            HeaderName::RecordRoute => {
                if !rr_done {
                    record_routes(out, c.record_route);
                    rr_done = true;
                }
                line(out, raw, value);
            }
            _ => {
                had_length |= name == HeaderName::ContentLength;
                line(out, raw, value);
            }
        }
    }
    if !max_forwards {
        out.extend_from_slice(b"Max-Forwards: 69\r\n");
    }
    if !routes_done {
        routes(out, c.routes);
    }
    if !rr_done {
        record_routes(out, c.record_route);
    }
    end(out, msg, had_length);
}

/// Writes the response `msg` less its top Via element (ours).
pub fn response(msg: &Message, out: &mut Vec<u8>) {
    out.reserve(msg.head().len() + msg.body().len() + 32);
    out.extend_from_slice(msg.start_line().as_bytes());
    out.extend_from_slice(b"\r\n");
    let (mut first_via, mut had_length) = (true, false);
    for (name, raw, value) in msg.entries() {
        if name == HeaderName::Via && first_via {
            first_via = false;
            let rest: Vec<&str> = split_outside_quotes(value, b',')
                .skip(1)
                .map(scan::trim)
                .collect();
            if !rest.is_empty() {
                line(out, raw, &rest.join(", "));
            }
            continue;
        }
        had_length |= name == HeaderName::ContentLength;
        line(out, raw, value);
    }
    end(out, msg, had_length);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::request::top_via;

    fn msg(text: &str) -> Message {
        Message::parse(text.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn request_changes() {
        let m = msg("MESSAGE sip:bob@example.com SIP/2.0\n\
            v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport, SIP/2.0/UDP p;branch=z9hG4bK0\n\
            Max-Forwards: 10\n\
            Route: <sip:us;lr>, <sip:next;lr>\n\
            Record-Route: <sip:earlier;lr>\n\
            From: <sip:a@example.com>;tag=1\n\
            To: <sip:bob@example.com>\n\
            Call-ID: c\n\
            CSeq: 1 MESSAGE\n\n\
            hi");
        let top = top_via(&m).unwrap();
        let mut out = Vec::new();
        let rr = vec!["<sip:us;lr>".to_owned()];
        request(
            &m,
            &top,
            &Changes {
                request_uri: "sip:bob@192.0.2.5",
                via: "SIP/2.0/UDP us:5060;branch=z9hG4bK.srX",
                source: "198.51.100.1:7000".parse().unwrap(),
                routes: &["<sip:next;lr>"],
                record_route: &rr,
            },
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "MESSAGE sip:bob@192.0.2.5 SIP/2.0\r\n\
             Via: SIP/2.0/UDP us:5060;branch=z9hG4bK.srX\r\n\
             v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=198.51.100.1;rport=7000, SIP/2.0/UDP p;branch=z9hG4bK0\r\n\
             Max-Forwards: 9\r\n\
             Route: <sip:next;lr>\r\n\
             Record-Route: <sip:us;lr>\r\n\
             Record-Route: <sip:earlier;lr>\r\n\
             From: <sip:a@example.com>;tag=1\r\n\
             To: <sip:bob@example.com>\r\n\
             Call-ID: c\r\n\
             CSeq: 1 MESSAGE\r\n\
             Content-Length: 2\r\n\r\nhi"
        );
        assert!(Message::parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn response_loses_our_via() {
        let m = msg("SIP/2.0 200 OK\n\
            Via: SIP/2.0/UDP us;branch=z9hG4bK.srX, SIP/2.0/UDP a;branch=z9hG4bK1\n\
            Via: SIP/2.0/UDP b;branch=z9hG4bK2\n\
            Content-Length: 0\n\n");
        let mut out = Vec::new();
        response(&m, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\n\
             Via: SIP/2.0/UDP b;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
