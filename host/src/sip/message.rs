//! One SIP message parsed from a datagram or a framed stream chunk: the start line, the
//! headers (unfolded, compact names resolved) and the body.
//!
//! The header section is kept as one string and headers as ranges into it, so a parse costs
//! one copy of the text and one small vector, whatever the number of headers.

use super::header::HeaderName;
use super::method::Method;
use std::fmt;
use std::ops::Range;

/// Why a message could not be parsed. The text goes out as the 400's reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The status to answer with: 505 for another SIP version, 400 otherwise.
    pub fn code(&self) -> u16 {
        if self.0.starts_with("Version Not Supported") {
            505
        } else {
            400
        }
    }
}

fn err<T>(why: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(why.into()))
}

/// A header of a parsed message: its resolved name and where name and value stand.
#[derive(Debug, Clone)]
struct HeaderEntry {
    name: HeaderName,
    raw_name: Range<u32>,
    value: Range<u32>,
}

/// What the start line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: Range<u32> },
    Response { code: u16 },
}

/// A parsed SIP message (request or response).
#[derive(Debug, Clone)]
pub struct Message {
    head: String,
    start: StartLine,
    headers: Vec<HeaderEntry>,
    body: Vec<u8>,
}

/// Where the header section ends: the offset of the blank line and the offset of the body.
/// The blank line is `\r\n` or a bare `\n` after the last header's line end.
pub fn head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &bytes[from..]).map(|i| from + i) {
        match bytes.get(i + 1) {
            Some(b'\n') => return Some((i, i + 2)),
            Some(b'\r') if bytes.get(i + 2) == Some(&b'\n') => return Some((i, i + 3)),
            _ => from = i + 1,
        }
    }
    None
}

/// Joins folded header lines (a line that starts with SP or HT continues the one before)
/// and turns every line end into a single `\n`.
fn unfold(head: &str) -> String {
    let mut out = String::with_capacity(head.len());
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !out.is_empty() && (line.starts_with(' ') || line.starts_with('\t')) {
            while out.ends_with([' ', '\t']) {
                out.pop();
            }
            out.push(' ');
            out.push_str(line.trim_start_matches([' ', '\t']));
        } else {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
    }
    out
}

/// Whether a header section has folded lines.
fn is_folded(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head).any(|i| matches!(head.get(i + 1), Some(b' ' | b'\t')))
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(super::chars::is_token)
}

impl Message {
    /// Parses one whole message. For a datagram, bytes past the Content-Length are ignored
    /// (RFC 3261 section 18.3); fewer bytes than it announces make the message malformed.
    ///
    /// # Errors
    /// A [`ParseError`] saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let (head_len, body_start) = match head_end(bytes) {
            Some(v) => v,
            // A datagram may end right after the last header line.
            None => (bytes.len(), bytes.len()),
        };
        let raw = &bytes[..head_len];
        let skip = raw
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let raw = &raw[skip..];
        let head = std::str::from_utf8(raw).or_else(|_| err("Header section is not UTF-8"))?;
        let head = if is_folded(raw) {
            unfold(head)
        } else {
            head.to_owned()
        };
        let mut msg = Message {
            start: StartLine::Response { code: 0 },
            headers: Vec::with_capacity(16),
            body: Vec::new(),
            head,
        };
        msg.parse_lines()?;
        let rest = &bytes[body_start.min(bytes.len())..];
        let body_len = match msg.content_length()? {
            Some(n) if n > rest.len() => {
                return err("Content-Length is larger than the body");
            }
            Some(n) => n,
            None => rest.len(),
        };
        msg.body = rest[..body_len].to_vec();
        Ok(msg)
    }

    fn parse_lines(&mut self) -> Result<(), ParseError> {
        let head = self.head.as_str();
        let bytes = head.as_bytes();
        let first_end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
        self.start = parse_start_line(super::scan::before(head, first_end).trim_end_matches('\r'))?;
        let mut seen_single = 0u64;
        let mut offset = first_end + 1;
        while offset < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[offset..]).map_or(bytes.len(), |i| offset + i);
            let base = offset;
            let line = super::scan::between(head, offset, end).trim_end_matches('\r');
            offset = end + 1;
            if line.is_empty() {
                continue;
            }
            let Some(colon) = memchr::memchr(b':', line.as_bytes()) else {
                return err(format!("Header line without colon: {}", clip(line)));
            };
            let name = super::scan::trim(super::scan::before(line, colon));
            if !is_token(name) {
                return err(format!("Malformed header name: {}", clip(line)));
            }
            let value = super::scan::trim(super::scan::after(line, colon + 1));
            // RFC 3261 section 25.1: no control character but HTAB in a header (a NUL in
            // a Call-ID, a bare CR) unless escaped in a quoted string: refused before
            // anything reads the value.
            if super::scan::has_bare_control(value) {
                return err(format!("Control character in header {}", clip(name)));
            }
            let vstart = base + (value.as_ptr() as usize - line.as_ptr() as usize);
            let header = HeaderName::parse(name);
            if header.is_single() {
                let bit = 1u64 << (header as u32);
                if seen_single & bit != 0 {
                    return err(format!("More than one {} header", header.as_str()));
                }
                seen_single |= bit;
            }
            self.headers.push(HeaderEntry {
                name: header,
                raw_name: base as u32..(base + name.len()) as u32,
                value: vstart as u32..(vstart + value.len()) as u32,
            });
        }
        Ok(())
    }

    fn content_length(&self) -> Result<Option<usize>, ParseError> {
        match self.header(HeaderName::ContentLength) {
            None => Ok(None),
            Some(v) if !v.is_empty() && v.len() <= 9 && v.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(v.parse().unwrap_or(0)))
            }
            Some(_) => err("Malformed Content-Length"),
        }
    }

    /// The start line and headers (unfolded), each line ending in CRLF.
    pub fn head(&self) -> &str {
        &self.head
    }

    /// The start line.
    pub fn start(&self) -> &StartLine {
        &self.start
    }

    /// The method, for a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as written, for a request.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(super::scan::between(
                &self.head,
                uri.start as usize,
                uri.end as usize,
            )),
            StartLine::Response { .. } => None,
        }
    }

    /// The value of the first header with this name.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// The values of every header with this name, in order.
    pub fn headers_named(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| self.slice(&h.value))
    }

    /// The value of the first header called `name`, any header, compact forms included.
    pub fn header_by_name(&self, name: &str) -> Option<&str> {
        let known = HeaderName::parse(name);
        self.headers
            .iter()
            .find(|h| {
                if known == HeaderName::Other {
                    self.slice(&h.raw_name).eq_ignore_ascii_case(name)
                } else {
                    h.name == known
                }
            })
            .map(|h| self.slice(&h.value))
    }

    /// The values of every header called `name`, in order, compact forms included.
    pub fn headers_by_name<'m>(&'m self, name: &str) -> impl Iterator<Item = &'m str> + use<'m> {
        let wanted: Box<str> = name.into();
        let known = HeaderName::parse(name);
        self.headers
            .iter()
            .filter(move |h| {
                if known == HeaderName::Other {
                    self.slice(&h.raw_name).eq_ignore_ascii_case(&wanted)
                } else {
                    h.name == known
                }
            })
            .map(|h| self.slice(&h.value))
    }

    /// The elements of a comma-separated header (Route, Path, Via, ...), across every
    /// header of that name, in order, trimmed; empty elements skipped.
    pub fn elements(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.headers_named(name)
            .flat_map(|v| super::params::split_outside_quotes(v, b','))
            .map(super::scan::trim)
            .filter(|v| !v.is_empty())
    }

    /// Every header in order: resolved name, name as written, value.
    pub fn entries(&self) -> impl Iterator<Item = (HeaderName, &str, &str)> {
        self.headers
            .iter()
            .map(|h| (h.name, self.slice(&h.raw_name), self.slice(&h.value)))
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The start line as written.
    pub fn start_line(&self) -> &str {
        let end = memchr::memchr(b'\n', self.head.as_bytes()).unwrap_or(self.head.len());
        super::scan::before(&self.head, end).trim_end_matches('\r')
    }

    /// How many headers carry this name.
    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    fn slice(&self, r: &Range<u32>) -> &str {
        super::scan::between(&self.head, r.start as usize, r.end as usize)
    }
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => super::scan::before(s, i),
        None => s,
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    // Bytes, not text: a character of several bytes may stand where a slice would end.
    let starts_sip = |t: &str| t.len() >= 4 && t.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/");
    if starts_sip(line) {
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().unwrap_or("");
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return err("Unsupported SIP version in status line");
        }
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return err("Malformed status code");
        }
        let code: u16 = code.parse().unwrap_or(0);
        if !(100..700).contains(&code) {
            return err("Status code out of range");
        }
        return Ok(StartLine::Response { code });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return err("Malformed Request-Line");
    }
    if !is_token(parts[0]) {
        return err("Malformed method");
    }
    let version = parts[2];
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        if version.len() > 4 && starts_sip(version) {
            return Err(ParseError(format!("Version Not Supported: {version}")));
        }
        return err("Malformed SIP version");
    }
    let uri_start = parts[0].len() + 1;
    Ok(StartLine::Request {
        method: Method::parse(parts[0]),
        uri: uri_start as u32..(uri_start + parts[1].len()) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "REGISTER sip:example.com SIP/2.0\r\n\
        v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
        f: <sip:alice@example.com>;tag=1\r\n\
        t: <sip:alice@example.com>\r\n\
        i: abc@10.0.0.1\r\n\
        CSeq: 1\r\n REGISTER\r\n\
        m: <sip:alice@10.0.0.1>;expires=60,\r\n\t<sip:alice@10.0.0.2>\r\n\
        l: 0\r\n\r\n";

    #[test]
    fn compact_names_and_folding() {
        let m = Message::parse(REG.as_bytes()).unwrap();
        assert_eq!(m.method(), Some(&Method::Register));
        assert_eq!(m.request_uri(), Some("sip:example.com"));
        assert_eq!(m.header(HeaderName::CallId), Some("abc@10.0.0.1"));
        assert_eq!(m.header(HeaderName::CSeq), Some("1 REGISTER"));
        assert_eq!(
            m.header(HeaderName::Contact),
            Some("<sip:alice@10.0.0.1>;expires=60, <sip:alice@10.0.0.2>")
        );
        assert_eq!(m.header_by_name("content-length"), Some("0"));
        assert_eq!(m.header_by_name("Via"), m.header(HeaderName::Via));
    }

    #[test]
    fn content_length_rules() {
        let short = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc";
        assert!(Message::parse(short.as_bytes()).is_err());
        let long = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nabcdef";
        assert_eq!(Message::parse(long.as_bytes()).unwrap().body(), b"ab");
        let two = "OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n";
        assert!(Message::parse(two.as_bytes()).is_err());
    }

    #[test]
    fn start_lines() {
        assert!(Message::parse(b"INVITE  sip:a@b  SIP/2.0\r\n\r\n").is_err());
        assert!(Message::parse(b"INVITE sip:a@b SIP/2.0 \r\n\r\n").is_err());
        let e = Message::parse(b"OPTIONS sip:a@b SIP/7.0\r\n\r\n").unwrap_err();
        assert!(e.0.starts_with("Version Not Supported"));
        let r = Message::parse(b"SIP/2.0 200 OK\r\n\r\n").unwrap();
        assert_eq!(r.start(), &StartLine::Response { code: 200 });
        assert!(Message::parse(b"SIP/2.0 2000 OK\r\n\r\n").is_err());
    }
}
