//! Responses: what a decision asks for ([`Reply`]) and how it is written for a request
//! (RFC 3261 section 8.2.6: Via, From, To with tag, Call-ID and CSeq copied; RFC 3581
//! `received` / `rport` on the top Via).

use super::header::HeaderName;
use super::message::Message;
use super::name_addr::NameAddr;
use super::params::split_outside_quotes;
use super::scan;
use super::via::Via;
use std::borrow::Cow;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

/// A response to send: status, reason phrase and the headers beyond the copied ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub reason: Cow<'static, str>,
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// Why, for the registration history when it says more than the reason phrase
    /// ("Alias not found" behind a plain 403); never sent.
    pub cause: Option<Cow<'static, str>>,
}

impl Reply {
    /// A reply with the standard reason phrase of `code`.
    pub fn new(code: u16) -> Reply {
        Reply {
            code,
            reason: Cow::Borrowed(reason_phrase(code)),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// A reply with its own reason phrase.
    pub fn with_reason(code: u16, reason: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            reason: reason.into(),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// Says why, for the history (not sent).
    pub fn because(mut self, cause: impl Into<Cow<'static, str>>) -> Reply {
        self.cause = Some(cause.into());
        self
    }

    /// Why it was sent: the cause when given, else the reason phrase.
    pub fn why(&self) -> &str {
        self.cause.as_deref().unwrap_or(&self.reason)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The reason phrase RFC 3261 (and its extensions) give a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        200 => "OK",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        430 => "Flow Failed",
        439 => "First Hop Lacks Outbound Support",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => match code / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// Writes text that goes into a status line or header value, without the control
/// characters a hook's text might carry (they would break the message).
fn push_clean(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= b' ' && b != 0x7f) {
        out.extend_from_slice(text.as_bytes());
    } else {
        out.extend(text.bytes().filter(|b| *b >= b' ' && *b != 0x7f));
    }
}

pub(crate) fn push_number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(crate::text::decimal(n, &mut [0; 20]).as_bytes());
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_number(out, u64::from(*octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(ByteWriter(out), "{v6}");
        }
    }
}

/// Writes the top Via header with `received` and, when asked for, `rport` filled in
/// (RFC 3261 section 18.2.1, RFC 3581).
fn write_top_via(out: &mut Vec<u8>, top: &Via<'_>, src: SocketAddr) {
    out.extend_from_slice(b"Via: ");
    write_received(out, top, src);
}

/// Writes the value of the top Via as a server that received the request from `src`
/// passes it on: with `received` when `src` differs from the sent-by host, and `rport`
/// filled in when the client asked for it.
pub(crate) fn write_received(out: &mut Vec<u8>, top: &Via<'_>, src: SocketAddr) {
    let via = top.raw;
    let wants_rport = top.param("rport").is_some();
    let host_differs = super::via::host_ip(top.host) != Some(src.ip());
    if !wants_rport && !host_differs {
        out.extend_from_slice(via.as_bytes());
        return;
    }
    // Rewrite the parameter list: drop existing received/rport, then add ours.
    let (base, params) = match scan::find(via, b';') {
        Some(i) => (scan::before(via, i), scan::after(via, i)),
        None => (via, ""),
    };
    out.extend_from_slice(base.as_bytes());
    for p in split_outside_quotes(params, b';').filter(|p| !scan::trim(p).is_empty()) {
        let name = scan::trim(scan::split_once(p, b'=').map_or(p, |(n, _)| n));
        if name.eq_ignore_ascii_case("received")
            || (wants_rport && name.eq_ignore_ascii_case("rport"))
        {
            continue;
        }
        out.push(b';');
        out.extend_from_slice(p.as_bytes());
    }
    out.extend_from_slice(b";received=");
    push_ip(out, src.ip());
    if wants_rport {
        out.extend_from_slice(b";rport=");
        push_number(out, u64::from(src.port()));
    }
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Writes the response to `req`, whose top Via is `top_via`, into `out`. `to_tag` is added
/// to To when it has none.
pub fn encode(
    req: &Message,
    top_via: &Via<'_>,
    src: SocketAddr,
    reply: &Reply,
    to_tag: &str,
    out: &mut Vec<u8>,
) {
    out.reserve(512);
    out.extend_from_slice(b"SIP/2.0 ");
    push_number(out, u64::from(reply.code));
    out.push(b' ');
    push_clean(out, &reply.reason);
    out.extend_from_slice(b"\r\n");
    let mut first = true;
    for value in req.headers_named(HeaderName::Via) {
        for element in split_outside_quotes(value, b',') {
            let element = scan::trim(element);
            if element.is_empty() {
                continue;
            }
            if first {
                write_top_via(out, top_via, src);
                first = false;
            } else {
                out.extend_from_slice(b"Via: ");
                out.extend_from_slice(element.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    for (name, h) in [
        (&b"From: "[..], HeaderName::From),
        (&b"To: "[..], HeaderName::To),
    ] {
        if let Some(v) = req.header(h) {
            out.extend_from_slice(name);
            out.extend_from_slice(v.as_bytes());
            // Without the letters "tag" anywhere there is no tag parameter (the usual
            // REGISTER): no need to parse the value.
            let needs_tag = h == HeaderName::To
                && reply.code > 100
                && (!memchr::memchr2_iter(b't', b'T', v.as_bytes()).any(|i| {
                    v.as_bytes()[i..]
                        .get(1..3)
                        .is_some_and(|ag| ag.eq_ignore_ascii_case(b"ag"))
                }) || NameAddr::parse(v)
                    .map(|na| na.tag().is_none())
                    .unwrap_or(true));
            if needs_tag {
                out.extend_from_slice(b";tag=");
                out.extend_from_slice(to_tag.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    for (name, h) in [
        (&b"Call-ID: "[..], HeaderName::CallId),
        (&b"CSeq: "[..], HeaderName::CSeq),
    ] {
        if let Some(v) = req.header(h) {
            out.extend_from_slice(name);
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    for (name, value) in &reply.headers {
        push_clean(out, name);
        out.extend_from_slice(b": ");
        push_clean(out, value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Server: sipreg\r\nContent-Length: 0\r\n\r\n");
}

/// Answers a request that could not be parsed with `code` and `reason`, when its Via, From,
/// To, Call-ID and CSeq can still be read; false when they cannot (the message is dropped).
pub fn encode_salvaged(
    raw: &[u8],
    src: SocketAddr,
    code: u16,
    reason: &str,
    out: &mut Vec<u8>,
) -> bool {
    if raw.len() >= 4 && raw[..4].eq_ignore_ascii_case(b"SIP/") {
        return false; // a response is never answered
    }
    let head_len = super::message::head_end(raw).map_or(raw.len(), |(h, _)| h);
    let head = String::from_utf8_lossy(&raw[..head_len]);
    let mut text = String::from("SALVAGE sip:invalid SIP/2.0\r\n");
    let mut keep = false;
    let mut seen = Vec::new();
    for line in head.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if keep {
                text.push_str(line);
                text.push_str("\r\n");
            }
            continue;
        }
        let name = HeaderName::parse(line.split(':').next().unwrap_or("").trim());
        keep = matches!(
            name,
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        ) && (name == HeaderName::Via || !seen.contains(&name));
        if keep {
            seen.push(name);
            text.push_str(&scan::without_controls(line));
            text.push_str("\r\n");
        }
    }
    text.push_str("\r\n");
    let Ok(msg) = Message::parse(text.as_bytes()) else {
        return false;
    };
    let Some(top_via) = super::request::top_via(&msg) else {
        return false;
    };
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&text, &mut h);
    let tag = format!("{:016x}", std::hash::Hasher::finish(&h));
    encode(
        &msg,
        &top_via,
        src,
        &Reply::with_reason(code, reason.to_owned()),
        &tag,
        out,
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(via: &str, to: &str) -> Message {
        let text = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\nFrom: <sip:a@example.com>;tag=f\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: 7 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).unwrap()
    }

    fn text(m: &Message, src: &str, reply: &Reply) -> String {
        let mut out = Vec::new();
        let top = super::super::request::top_via(m).unwrap();
        encode(m, &top, src.parse().unwrap(), reply, "t1", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rport_and_received_filled_in() {
        let m = reg(
            "SIP/2.0/UDP 10.0.0.9:5060;rport;branch=z9hG4bK1",
            "<sip:a@example.com>",
        );
        let t = text(
            &m,
            "192.0.2.1:40000",
            &Reply::new(200).header("Expires", "60"),
        );
        assert!(t.starts_with("SIP/2.0 200 OK\r\n"));
        assert!(t.contains("Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1;received=192.0.2.1;rport=40000\r\nVia: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\n"), "{t}");
        assert!(t.contains("To: <sip:a@example.com>;tag=t1\r\n"));
        assert!(t.contains("CSeq: 7 REGISTER\r\nExpires: 60\r\n"));
        assert!(t.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[test]
    fn salvages_a_bad_request_line() {
        let raw = b"INVITE  sip:user@example.com  SIP/2.0\r\nVia: SIP/2.0/UDP h1.example.com;branch=z9hG4bKk\r\nTo: sip:user@example.com\r\nFrom: sip:c@example.net;tag=8814\r\nCall-ID: x1\r\nCSeq: 1 INVITE\r\n\r\n";
        let mut out = Vec::new();
        assert!(encode_salvaged(
            raw,
            "192.0.2.1:5060".parse().unwrap(),
            400,
            "Malformed Request-Line",
            &mut out
        ));
        let t = String::from_utf8(out).unwrap();
        assert!(t.starts_with("SIP/2.0 400 Malformed Request-Line\r\nVia: SIP/2.0/UDP h1.example.com;branch=z9hG4bKk;received=192.0.2.1\r\n"), "{t}");
        assert!(t.contains("CSeq: 1 INVITE\r\n"), "{t}");
        let mut none = Vec::new();
        assert!(!encode_salvaged(
            b"garbage\r\n\r\n",
            "192.0.2.1:5060".parse().unwrap(),
            400,
            "x",
            &mut none
        ));
        assert!(none.is_empty());
    }

    #[test]
    fn same_host_without_rport_is_left_alone_and_tag_kept() {
        let m = reg(
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            "<sip:a@example.com>;tag=x",
        );
        let t = text(
            &m,
            "192.0.2.1:5060",
            &Reply::with_reason(400, "Bad\r\nthing"),
        );
        assert!(t.starts_with("SIP/2.0 400 Badthing\r\n"));
        assert!(t.contains("Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"));
        assert!(t.contains("To: <sip:a@example.com>;tag=x\r\n"));
    }

    #[test]
    fn to_tag_added_only_where_to_has_none() {
        for (to, expected) in [
            (
                "\"Tag\" <sip:tatiana@example.com>",
                "\"Tag\" <sip:tatiana@example.com>;tag=t1",
            ),
            ("<sip:a@example.com>;TAG=Up", "<sip:a@example.com>;TAG=Up"),
            (
                "<sip:a@example.com;tag=inuri>",
                "<sip:a@example.com;tag=inuri>;tag=t1",
            ),
        ] {
            let m = reg("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1", to);
            let t = text(&m, "192.0.2.1:5060", &Reply::new(200));
            assert!(t.contains(&format!("To: {expected}\r\n")), "{to}: {t}");
        }
    }
}
