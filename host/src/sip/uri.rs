//! SIP and SIPS URIs (RFC 3261 section 19.1), parsed strictly and borrowed from the text.
//!
//! Written by hand because rsip's URI parser takes `sip:exa mple.com` for a host, loses the
//! user part of RFC 4475's unusual (and valid) URIs and refuses IPv6 references.

use super::chars;
use std::fmt::{self, Write};

/// The URI schemes a registrar serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
}

/// Why a URI was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriError {
    /// A scheme other than sip/sips (RFC 3261 answers 416).
    UnsupportedScheme(String),
    /// Not a URI at all; the text says what is wrong.
    Malformed(&'static str),
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UriError::UnsupportedScheme(s) => write!(f, "unsupported URI scheme '{s}'"),
            UriError::Malformed(why) => f.write_str(why),
        }
    }
}

/// A parsed `sip:` or `sips:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    pub scheme: Scheme,
    /// The user part, still escaped, without the password.
    pub user: Option<&'a str>,
    /// The host: a name, an IPv4 address or a bracketed IPv6 reference.
    pub host: &'a str,
    pub port: Option<u16>,
    /// The URI parameters, with their leading `;` (empty when there are none).
    pub params: &'a str,
    /// The URI headers after `?`, if any.
    pub headers: Option<&'a str>,
}

/// Whether every character is allowed by `class` and every `%` starts a valid escape.
fn valid_escaped(text: &str, class: &[bool; 256]) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !class[c as usize] {
            return false;
        }
        if c == b'%' {
            if i + 2 >= b.len() || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
            continue;
        }
        i += 1;
    }
    true
}

fn position(text: &str, pred: impl Fn(u8) -> bool) -> Option<usize> {
    text.bytes().position(pred)
}

fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.bytes().all(super::chars::is_host)
        && !h.starts_with('.')
        && !h.starts_with('-')
}

fn valid_ipv6_ref(h: &str) -> bool {
    h.len() > 2
        && h.starts_with('[')
        && h.ends_with(']')
        && super::scan::between(h, 1, h.len() - 1)
            .parse::<std::net::Ipv6Addr>()
            .is_ok()
}

impl<'a> SipUri<'a> {
    /// Parses a whole URI.
    ///
    /// # Errors
    /// [`UriError::UnsupportedScheme`] for another scheme, [`UriError::Malformed`] otherwise.
    pub fn parse(text: &'a str) -> Result<Self, UriError> {
        let colon =
            position(text, |c| c == b':').ok_or(UriError::Malformed("URI has no scheme"))?;
        let scheme_text = super::scan::before(text, colon);
        let scheme = if scheme_text.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_text.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if !scheme_text.is_empty()
            && scheme_text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(UriError::UnsupportedScheme(scheme_text.to_owned()));
        } else {
            return Err(UriError::Malformed("URI scheme is not valid"));
        };
        let rest = super::scan::after(text, colon + 1);
        let mut at = None;
        for (i, c) in rest.bytes().enumerate() {
            if c <= b' ' || c == 0x7f || c == b'<' || c == b'>' || c == b'"' {
                return Err(UriError::Malformed(
                    "URI contains a character that must be escaped",
                ));
            }
            if c == b'@' && at.is_none() {
                at = Some(i);
            }
        }
        let (userinfo, hostpart) = match at {
            Some(at) => (
                Some(super::scan::before(rest, at)),
                super::scan::after(rest, at + 1),
            ),
            None => (None, rest),
        };
        let user = match userinfo {
            Some(ui) => {
                let (user, password) = match position(ui, |c| c == b':') {
                    Some(c) => (
                        super::scan::before(ui, c),
                        Some(super::scan::after(ui, c + 1)),
                    ),
                    None => (ui, None),
                };
                if user.is_empty() || !valid_escaped(user, &chars::URI_USER) {
                    return Err(UriError::Malformed("URI user part is not valid"));
                }
                if let Some(pw) = password
                    && !valid_escaped(pw, &chars::URI_PASSWORD)
                {
                    return Err(UriError::Malformed("URI password is not valid"));
                }
                Some(user)
            }
            None => None,
        };
        let (hostport, params_and_headers) = match position(hostpart, |c| c == b';' || c == b'?') {
            Some(i) => (
                super::scan::before(hostpart, i),
                super::scan::after(hostpart, i),
            ),
            None => (hostpart, ""),
        };
        let (host, port_text) = if hostport.starts_with('[') {
            let end = position(hostport, |c| c == b']')
                .ok_or(UriError::Malformed("URI IPv6 reference is not closed"))?;
            let after = super::scan::after(hostport, end + 1);
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(UriError::Malformed("URI host is not valid")),
            };
            (super::scan::before(hostport, end + 1), port)
        } else {
            match hostport.bytes().rposition(|c| c == b':') {
                Some(c) => (
                    super::scan::before(hostport, c),
                    Some(super::scan::after(hostport, c + 1)),
                ),
                None => (hostport, None),
            }
        };
        if !(valid_hostname(host) || valid_ipv6_ref(host)) {
            return Err(UriError::Malformed("URI host is not valid"));
        }
        let port = match port_text {
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(
                    p.parse::<u16>()
                        .map_err(|_| UriError::Malformed("URI port is not valid"))?,
                )
            }
            Some(_) => return Err(UriError::Malformed("URI port is not valid")),
            None => None,
        };
        let (params, headers) = match position(params_and_headers, |c| c == b'?') {
            Some(q) => (
                super::scan::before(params_and_headers, q),
                Some(super::scan::after(params_and_headers, q + 1)),
            ),
            None => (params_and_headers, None),
        };
        if !valid_escaped(params, &chars::URI_PARAMS) {
            return Err(UriError::Malformed("URI parameters are not valid"));
        }
        if let Some(h) = headers
            && !valid_escaped(h, &chars::URI_HEADERS)
        {
            return Err(UriError::Malformed("URI headers are not valid"));
        }
        Ok(SipUri {
            scheme,
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// A URI parameter by name (case-insensitive); `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        super::params::get(self.params, name)
    }

    /// The address-of-record key `user@host` (user unescaped, host lower-cased; no port,
    /// no parameters), or the host alone for a URI without user.
    pub fn aor(&self) -> String {
        let mut s = String::with_capacity(self.host.len() + self.user.map_or(0, |u| u.len() + 1));
        if let Some(u) = self.user {
            push_unescaped(&mut s, u);
            s.push('@');
        }
        push_lower(&mut s, self.host);
        s
    }

    /// A key under which two URIs that RFC 3261 section 19.1.4 calls equal are equal, for the
    /// parts a registrar compares: scheme, user, host, port, and the transport, user, method,
    /// ttl and maddr parameters.
    pub fn comparison_key(&self) -> String {
        let mut key = String::with_capacity(self.host.len() + self.user.map_or(0, str::len) + 24);
        key.push_str(match self.scheme {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
        });
        if let Some(u) = self.user {
            push_unescaped(&mut key, u);
            key.push('@');
        }
        push_lower(&mut key, self.host);
        if let Some(p) = self.port {
            let _ = write!(key, ":{p}");
        }
        if self.params.is_empty() {
            return key;
        }
        // One pass over the parameters; they are written in a fixed order.
        const COMPARED: [&str; 5] = ["transport", "user", "method", "ttl", "maddr"];
        let mut found: [Option<Option<&str>>; 5] = [None; 5];
        for p in super::params::iter(self.params) {
            if let Some(i) = COMPARED.iter().position(|n| n.eq_ignore_ascii_case(p.name))
                && found[i].is_none()
            {
                found[i] = Some(p.value);
            }
        }
        for (name, value) in COMPARED.iter().zip(found) {
            if let Some(v) = value {
                key.push(';');
                key.push_str(name);
                if let Some(v) = v {
                    key.push('=');
                    push_lower(&mut key, v);
                }
            }
        }
        key
    }
}

fn push_lower(out: &mut String, text: &str) {
    let start = out.len();
    out.push_str(text);
    if let Some(added) = out.get_mut(start..) {
        added.make_ascii_lowercase();
    }
}

/// Appends `text` with `%XX` escapes resolved (so `%61lice` and `alice` compare equal).
fn push_unescaped(out: &mut String, text: &str) {
    if !text.contains('%') {
        out.push_str(text);
        return;
    }
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(super::scan::between(text, i + 1, i + 3), 16)
            && v.is_ascii()
        {
            out.push(v as char);
            i += 3;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_with_port() {
        let u = SipUri::parse("sip:alice@Example.COM:5070;transport=TCP").unwrap();
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.host, "Example.COM");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("transport"), Some(Some("TCP")));
        assert_eq!(u.aor(), "alice@example.com");
        let escaped = SipUri::parse("sip:%61lice@EXAMPLE.com").unwrap();
        assert_eq!(escaped.aor(), "alice@example.com");
        let r = SipUri::parse("sip:127.0.0.1:5071").unwrap();
        assert_eq!((r.user, r.host, r.port), (None, "127.0.0.1", Some(5071)));
    }

    #[test]
    fn unusual_valid_user_parts() {
        let u = SipUri::parse("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com").unwrap();
        assert_eq!(
            u.user,
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(u.host, "example.com");
        let e = SipUri::parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(e.user, Some("sips%3Auser%40example.com"));
    }

    #[test]
    fn ipv6_and_headers() {
        let u = SipUri::parse("sip:user@[2001:db8::10]:5070;lr?Subject=hi").unwrap();
        assert_eq!(u.host, "[2001:db8::10]");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.headers, Some("Subject=hi"));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            SipUri::parse("tel:+1234"),
            Err(UriError::UnsupportedScheme(_))
        ));
        assert!(SipUri::parse("sip:exa mple.com").is_err());
        assert!(SipUri::parse("sip:foo@").is_err());
        assert!(SipUri::parse("sip:foo@bar:99999").is_err());
        assert!(SipUri::parse("sip:a%zz@b").is_err());
        assert!(SipUri::parse("sip:<a>@b").is_err());
    }

    #[test]
    fn comparison_ignores_case_of_host_and_escapes_of_user() {
        let a = SipUri::parse("sip:%61lice@ATLANTA.com;transport=TCP;foo=bar").unwrap();
        let b = SipUri::parse("SIP:alice@atlanta.com;Transport=tcp").unwrap();
        assert_eq!(a.comparison_key(), b.comparison_key());
        let c = SipUri::parse("sip:alice@atlanta.com:5060").unwrap();
        assert_ne!(b.comparison_key(), c.comparison_key());
    }
}
