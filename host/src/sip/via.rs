//! The Via header: sent-protocol, sent-by and the parameters the registrar reads.

use super::params;
use super::scan;

/// The topmost Via value, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// The SIP version of the sent-protocol (`2.0`).
    pub version: &'a str,
    /// The transport token (`UDP`, `TCP`, ...), as written.
    pub transport: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
    /// The parameters with their leading `;`.
    pub params: &'a str,
    /// The whole value as written (what a response echoes).
    pub raw: &'a str,
}

impl<'a> Via<'a> {
    /// Parses one Via value (one element of a comma-separated list).
    ///
    /// # Errors
    /// A static text saying what is wrong.
    pub fn parse(raw: &'a str) -> Result<Self, &'static str> {
        let raw = scan::trim(raw);
        // sent-protocol = name SLASH version SLASH transport, with optional LWS around SLASH
        let mut rest = raw;
        let mut parts = [""; 3];
        for (i, part) in parts.iter_mut().enumerate() {
            let r = scan::trim_start(rest);
            let end = if i < 2 {
                memchr::memchr(b'/', r.as_bytes()).ok_or("malformed Via sent-protocol")?
            } else {
                memchr::memchr2(b' ', b'\t', r.as_bytes()).ok_or("Via has no sent-by")?
            };
            *part = scan::trim_end(scan::before(r, end));
            rest = if i < 2 {
                scan::after(r, end + 1)
            } else {
                scan::after(r, end)
            };
        }
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
        let version_ok =
            scan::split_once(parts[1], b'.').is_some_and(|(a, b)| digits(a) && digits(b));
        if !parts[0].eq_ignore_ascii_case("SIP") || !version_ok {
            return Err("malformed Via sent-protocol");
        }
        if parts[2].is_empty()
            || !parts[2]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("malformed Via transport");
        }
        let rest = scan::trim_start(rest);
        let (sent_by, params) = match scan::find(rest, b';') {
            Some(i) => (scan::trim_end(scan::before(rest, i)), scan::after(rest, i)),
            None => (scan::trim_end(rest), ""),
        };
        let (host, port) = split_host_port(sent_by).ok_or("malformed Via sent-by")?;
        // Every parameter has a name, and a value where it has an '='.
        let mut pieces = params::split_outside_quotes(params, b';');
        pieces.next(); // what stands before the first ';' (nothing)
        for piece in pieces {
            let (name, value) = match scan::split_once(piece, b'=') {
                Some((n, v)) => (scan::trim(n), Some(scan::trim(v))),
                None => (scan::trim(piece), None),
            };
            if name.is_empty() || value == Some("") {
                return Err("malformed Via parameter");
            }
        }
        Ok(Via {
            version: parts[1],
            transport: parts[2],
            host,
            port,
            params,
            raw,
        })
    }

    /// A parameter's value by name; `Some(None)` for a flag such as `rport`.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        params::get(self.params, name)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten()
    }
}

/// The IP address a host text names (IPv6 with or without brackets), if it is one.
pub fn host_ip(host: &str) -> Option<std::net::IpAddr> {
    host.trim_matches(['[', ']']).parse().ok()
}

/// Splits `host[:port]` (IPv6 in brackets) and checks both parts.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = scan::find(s, b']')?;
        let after = scan::after(s, end + 1);
        (scan::before(s, end + 1), after.strip_prefix(':'))
    } else {
        match scan::rfind(s, b':') {
            Some(c) => (scan::before(s, c), Some(scan::after(s, c + 1))),
            None => (s, None),
        }
    };
    let host_ok = if host.starts_with('[') {
        scan::between(host, 1, host.len() - 1)
            .parse::<std::net::Ipv6Addr>()
            .is_ok()
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    };
    if !host_ok {
        return None;
    }
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_and_spaced() {
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport").unwrap();
        assert_eq!(
            (v.transport, v.host, v.port),
            ("UDP", "10.0.0.1", Some(5060))
        );
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.param("rport"), Some(None));
        let w = Via::parse("SIP / 2.0 / TCP [2001:db8::9]:5061 ;branch=x").unwrap();
        assert_eq!(
            (w.transport, w.host, w.port),
            ("TCP", "[2001:db8::9]", Some(5061))
        );
    }

    #[test]
    fn refusals() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert_eq!(Via::parse("SIP/7.0/UDP host").unwrap().version, "7.0");
        assert!(Via::parse("SIP/x/UDP host").is_err());
        assert!(Via::parse("SIP/2.0/UDP host:port").is_err());
    }
}
