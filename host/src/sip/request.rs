//! Checks every request must pass before any hook sees it (RFC 3261 sections 8.1.1, 8.2.2
//! and 20), and what to answer when it does not.

use super::header::HeaderName;
use super::message::Message;
use super::name_addr::NameAddr;
use super::uri::{SipUri, UriError};
use super::via::Via;

/// A request that fails the checks: the status and reason phrase to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub reason: String,
}

fn refuse<T>(code: u16, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        code,
        reason: reason.into(),
    })
}

/// What the checks found, parsed once for everything that handles the request after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked<'m> {
    pub cseq: u32,
    pub max_forwards: Option<u8>,
    /// The Expires header, saturated to u32.
    pub expires: Option<u32>,
    pub request_uri: SipUri<'m>,
    pub top_via: Via<'m>,
    pub to: NameAddr<'m>,
    /// The To URI, when it is a SIP or SIPS URI.
    pub to_uri: Option<SipUri<'m>>,
}

/// Whether the top Via can be read, so that a response can be sent at all.
pub fn top_via(msg: &Message) -> Option<Via<'_>> {
    let first = msg.header(HeaderName::Via)?;
    let element = super::params::split_outside_quotes(first, b',').next()?;
    Via::parse(element).ok()
}

type UriField<'a> = (NameAddr<'a>, Option<SipUri<'a>>);

fn check_uri_field<'a>(msg: &'a Message, h: HeaderName) -> Result<UriField<'a>, Refusal> {
    let name = h.as_str();
    let Some(value) = msg.header(h) else {
        return refuse(400, format!("Missing {name} header"));
    };
    let addr = NameAddr::parse(value).or_else(|e| refuse(400, format!("Malformed {name}: {e}")))?;
    match SipUri::parse(addr.uri) {
        Ok(u) => Ok((addr, Some(u))),
        Err(UriError::UnsupportedScheme(_)) => Ok((addr, None)),
        Err(e) => refuse(400, format!("Malformed {name} URI: {e}")),
    }
}

/// Checks a request.
///
/// # Errors
/// A [`Refusal`] with the status RFC 3261 asks for: 400 for malformed fields, 416 for a
/// Request-URI scheme other than sip/sips.
pub fn check<'m>(msg: &'m Message, top_via: Via<'m>) -> Result<Checked<'m>, Refusal> {
    let Some(method) = msg.method() else {
        return refuse(400, "Not a request");
    };
    let uri = msg.request_uri().unwrap_or("");
    let request_uri = match SipUri::parse(uri) {
        Ok(u) if u.headers.is_some() => return refuse(400, "Request-URI must not carry headers"),
        Ok(u) => u,
        Err(UriError::UnsupportedScheme(s)) => {
            return refuse(416, format!("Unsupported URI Scheme {s}"));
        }
        Err(e) => return refuse(400, format!("Malformed Request-URI: {e}")),
    };
    for (i, value) in msg.headers_named(HeaderName::Via).enumerate() {
        for (j, element) in super::params::split_outside_quotes(value, b',').enumerate() {
            let via = if i == 0 && j == 0 {
                top_via
            } else {
                Via::parse(element).or_else(|e| refuse(400, format!("Malformed Via: {e}")))?
            };
            if via.version != "2.0" {
                return refuse(
                    505,
                    format!("Version Not Supported: SIP/{} in Via", via.version),
                );
            }
        }
    }
    check_uri_field(msg, HeaderName::From)?;
    let (to, to_uri) = check_uri_field(msg, HeaderName::To)?;
    match msg.header(HeaderName::CallId) {
        None => return refuse(400, "Missing Call-ID header"),
        Some(v) if v.is_empty() || v.contains([' ', '\t']) => {
            return refuse(400, "Malformed Call-ID");
        }
        Some(_) => {}
    }
    let Some(cseq_value) = msg.header(HeaderName::CSeq) else {
        return refuse(400, "Missing CSeq header");
    };
    let mut parts = cseq_value.split([' ', '\t']).filter(|s| !s.is_empty());
    let (num, cseq_method) = (parts.next().unwrap_or(""), parts.next());
    if parts.next().is_some() || num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return refuse(400, "Malformed CSeq");
    }
    let cseq = match num.parse::<u32>() {
        Ok(n) if n < 1 << 31 => n,
        _ => return refuse(400, "CSeq number out of range"),
    };
    if cseq_method != Some(method.as_str()) {
        return refuse(400, "CSeq method does not match the Request-Line");
    }
    let max_forwards = match msg.header(HeaderName::MaxForwards) {
        None => None,
        Some(v) => match v.parse::<u8>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return refuse(400, "Malformed Max-Forwards"),
        },
    };
    let expires = match msg.header(HeaderName::Expires) {
        None => None,
        Some(v) => Some(super::contact::saturating_u32(v).ok_or_else(|| Refusal {
            code: 400,
            reason: "Malformed Expires".into(),
        })?),
    };
    if let Some(d) = msg.header(HeaderName::Date)
        && httpdate::parse_http_date(d).is_err()
    {
        return refuse(400, "Malformed Date");
    }
    Ok(Checked {
        cseq,
        max_forwards,
        expires,
        request_uri,
        top_via,
        to,
        to_uri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(extra: &str) -> Message {
        let t = format!(
            "OPTIONS sip:u@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Message::parse(t.as_bytes()).unwrap()
    }

    const OK: &str = "From: <sip:a@b>;tag=1\r\nTo: <sip:u@example.com>\r\nCall-ID: x\r\nCSeq: 5 OPTIONS\r\nMax-Forwards: 70\r\n";

    #[test]
    fn a_good_request() {
        let m = req(OK);
        let c = check(&m, top_via(&m).unwrap()).unwrap();
        assert_eq!(c.cseq, 5);
        assert_eq!(c.max_forwards, Some(70));
    }

    #[test]
    fn refusals_name_the_field() {
        let run = |extra: &str| {
            let m = req(extra);
            check(&m, top_via(&m).unwrap()).unwrap_err()
        };
        let r = run("From: <sip:a@b>;tag=1\r\nCSeq: 5 OPTIONS\r\n");
        assert_eq!((r.code, r.reason.as_str()), (400, "Missing To header"));
        let r = run(&OK.replace("5 OPTIONS", "5 INVITE"));
        assert_eq!(r.reason, "CSeq method does not match the Request-Line");
        let r = run(&OK.replace("5 OPTIONS", "36893488147419103232 OPTIONS"));
        assert_eq!(r.reason, "CSeq number out of range");
        let r = run(&OK.replace("Max-Forwards: 70", "Max-Forwards: 300"));
        assert_eq!(r.reason, "Malformed Max-Forwards");
    }

    #[test]
    fn unknown_scheme_is_416() {
        let t = format!(
            "OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n{OK}\r\n"
        );
        let m = Message::parse(t.as_bytes()).unwrap();
        assert_eq!(check(&m, top_via(&m).unwrap()).unwrap_err().code, 416);
    }
}
