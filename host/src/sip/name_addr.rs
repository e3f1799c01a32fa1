//! `name-addr` / `addr-spec` values with header parameters: From, To, Contact, Route.

use super::params;
use super::scan;

/// A `[display-name] <uri>;params` or `uri;params` value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written (quotes kept), if any.
    pub display: Option<&'a str>,
    /// The URI text, without angle brackets.
    pub uri: &'a str,
    /// The header parameters with their leading `;` (empty when there are none).
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    /// Parses one value.
    ///
    /// # Errors
    /// A static text saying what is wrong.
    pub fn parse(text: &'a str) -> Result<Self, &'static str> {
        let text = scan::trim(text);
        if text.is_empty() {
            return Err("empty address");
        }
        if !params::quotes_balanced(text) {
            return Err("unbalanced quotes");
        }
        if let Some(lt) = find_unquoted(text, b'<') {
            let display = scan::trim(scan::before(text, lt));
            let gt = scan::find(scan::after(text, lt), b'>').ok_or("unclosed '<'")? + lt;
            let uri = scan::between(text, lt + 1, gt);
            if uri.starts_with([' ', '\t']) || uri.ends_with([' ', '\t']) {
                return Err("whitespace inside angle brackets");
            }
            let rest = scan::trim_start(scan::after(text, gt + 1));
            if !(rest.is_empty() || rest.starts_with(';')) {
                return Err("text after '>'");
            }
            if !display.is_empty() && !display.starts_with('"') && !display_is_tokens(display) {
                return Err("display name must be quoted");
            }
            Ok(NameAddr {
                display: (!display.is_empty()).then_some(display),
                uri,
                params: rest,
            })
        } else {
            // addr-spec: the header parameters start at the first ';' after the host, but a
            // ';' may also stand in the user part, before the '@'.
            let after_user = scan::find(text, b'@').map_or(0, |at| at + 1);
            let semi = scan::find(scan::after(text, after_user), b';').map(|i| i + after_user);
            let (uri, rest) = match semi {
                Some(i) => (scan::trim_end(scan::before(text, i)), scan::after(text, i)),
                None => (text, ""),
            };
            // RFC 3261 section 20: a URI with headers or a comma must be in angle brackets.
            if uri.contains([' ', '\t', '"', '?', ',']) {
                return Err("address needs angle brackets");
            }
            Ok(NameAddr {
                display: None,
                uri,
                params: rest,
            })
        }
    }

    /// A header parameter by name (case-insensitive); `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        params::get(self.params, name)
    }

    /// The `tag` parameter, if any.
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten()
    }
}

fn find_unquoted(text: &str, needle: u8) -> Option<usize> {
    let mut in_quotes = false;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            c if c == needle && !in_quotes => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn display_is_tokens(display: &str) -> bool {
    display
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .all(|w| {
            w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a = NameAddr::parse(r#""Bell, Alexander" <sip:a.g.bell@example.com>;tag=43"#).unwrap();
        assert_eq!(a.display, Some(r#""Bell, Alexander""#));
        assert_eq!(a.uri, "sip:a.g.bell@example.com");
        assert_eq!(a.tag(), Some("43"));
        let b = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert_eq!(b.uri, "sip:+19725552222@gw1.example.net");
        assert_eq!(b.param("unknownparam"), Some(None));
        let spaced =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(spaced.uri, "sip:vivekg@chair-dnrc.example.com");
        assert_eq!(spaced.tag(), Some("1918181833n"));
        let c = NameAddr::parse("soft 2<sip:11@192.168.16.40>").unwrap();
        assert_eq!(c.display, Some("soft 2"));
    }

    #[test]
    fn refusals() {
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("Bell, Alexander <sip:a@b>").is_err());
        assert!(NameAddr::parse("< sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("").is_err());
    }
}
