//! The Contact header of a REGISTER: `*`, or a list of addresses with parameters, split on
//! commas outside quotes and angle brackets, across any number of Contact headers.

use super::header::HeaderName;
use super::message::Message;
use super::name_addr::NameAddr;
use super::params::split_outside_quotes;
use super::uri::SipUri;

/// One contact of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact<'a> {
    /// The value as received (`<uri>;params`), stored and echoed byte for byte.
    pub raw: &'a str,
    pub addr: NameAddr<'a>,
    /// The contact URI, where it is a SIP or SIPS one.
    pub uri: Option<SipUri<'a>>,
    /// The `expires` parameter, saturated to u32.
    pub expires: Option<u32>,
    /// The `q` parameter in thousandths (0..=1000).
    pub q: Option<u16>,
}

impl Contact<'_> {
    /// The key under which RFC 3261 section 19.1.4 compares contact URIs (the URI as
    /// received for other schemes). Built on demand: a REGISTER that is challenged is
    /// read for its syntax only.
    pub fn key(&self) -> String {
        self.uri
            .map_or_else(|| self.addr.uri.to_owned(), |u| u.comparison_key())
    }

    /// The host of a SIP or SIPS contact URI.
    pub fn host(&self) -> Option<&str> {
        self.uri.map(|u| u.host)
    }
}

/// The Contact headers of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts<'a> {
    /// No Contact header: a query.
    None,
    /// `Contact: *`.
    Wildcard,
    List(Vec<Contact<'a>>),
}

/// Reads a decimal number, saturating at u32::MAX (RFC 4475 scalar02: huge values are not
/// an error for expiry).
pub fn saturating_u32(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u32>().unwrap_or(u32::MAX))
}

/// Reads a q-value (`0`, `0.5`, `1.000`) into thousandths.
pub fn parse_q(text: &str) -> Option<u16> {
    let (int, frac) = match super::scan::split_once(text, b'.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Writes thousandths as a q-value (`0.5`, `1`).
pub fn format_q(q: u16) -> String {
    if q >= 1000 {
        "1".to_owned()
    } else {
        let s = format!("0.{q:03}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Reads every Contact of a request.
///
/// # Errors
/// A text for the 400's reason phrase.
pub fn parse(msg: &Message) -> Result<Contacts<'_>, String> {
    let mut list = Vec::new();
    let mut wildcard = false;
    for value in msg.headers_named(HeaderName::Contact) {
        for item in split_outside_quotes(value, b',') {
            let raw = super::scan::trim(item);
            if raw == "*" {
                wildcard = true;
                continue;
            }
            if raw.is_empty() {
                return Err("Empty Contact".into());
            }
            let addr = NameAddr::parse(raw).map_err(|e| format!("Malformed Contact: {e}"))?;
            let uri = match SipUri::parse(addr.uri) {
                Ok(u) => Some(u),
                Err(super::uri::UriError::UnsupportedScheme(_)) => None,
                Err(e) => return Err(format!("Malformed Contact URI: {e}")),
            };
            let expires = match addr.param("expires") {
                None => None,
                Some(v) => Some(
                    v.and_then(saturating_u32)
                        .ok_or_else(|| "Malformed Contact expires parameter".to_owned())?,
                ),
            };
            let q = match addr.param("q") {
                None => None,
                Some(v) => Some(
                    v.and_then(parse_q)
                        .ok_or_else(|| "Malformed Contact q parameter".to_owned())?,
                ),
            };
            list.push(Contact {
                raw,
                addr,
                uri,
                expires,
                q,
            });
        }
    }
    match (wildcard, list.is_empty()) {
        (true, true) if msg.count(HeaderName::Contact) == 1 => Ok(Contacts::Wildcard),
        (true, _) => Err("Contact * must stand alone".into()),
        (false, true) if msg.count(HeaderName::Contact) == 0 => Ok(Contacts::None),
        (false, true) => Err("Empty Contact".into()),
        (false, false) => Ok(Contacts::List(list)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(contacts: &str) -> Message {
        let t = format!("REGISTER sip:e.com SIP/2.0\r\n{contacts}Content-Length: 0\r\n\r\n");
        Message::parse(t.as_bytes()).unwrap()
    }

    #[test]
    fn list_across_headers_with_quoted_params() {
        let m = msg(
            "Contact: <sip:a@10.0.0.1>;+sip.instance=\"<urn:uuid:1,2>\";reg-id=1;q=0.5, \"x, y\" <sip:b@10.0.0.2>;expires=30\r\nm: sip:c@10.0.0.3\r\n",
        );
        let Contacts::List(l) = parse(&m).unwrap() else {
            panic!("not a list")
        };
        assert_eq!(l.len(), 3);
        assert_eq!(
            l[0].raw,
            "<sip:a@10.0.0.1>;+sip.instance=\"<urn:uuid:1,2>\";reg-id=1;q=0.5"
        );
        assert_eq!(l[0].q, Some(500));
        assert_eq!(l[1].expires, Some(30));
        assert_eq!(l[2].key(), "sip:c@10.0.0.3");
        assert_eq!(l[2].host(), Some("10.0.0.3"));
    }

    #[test]
    fn wildcard_rules() {
        assert_eq!(parse(&msg("Contact: *\r\n")).unwrap(), Contacts::Wildcard);
        assert!(parse(&msg("Contact: *, <sip:a@b>\r\n")).is_err());
        assert!(parse(&msg("Contact: *\r\nContact: <sip:a@b>\r\n")).is_err());
        assert_eq!(parse(&msg("")).unwrap(), Contacts::None);
    }

    #[test]
    fn numbers() {
        assert_eq!(saturating_u32("280297596632815"), Some(u32::MAX));
        assert_eq!(saturating_u32("-1"), None);
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("0.05"), Some(50));
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(format_q(500), "0.5");
        assert_eq!(format_q(1000), "1");
        assert_eq!(format_q(0), "0");
        assert!(parse(&msg("Contact: <sip:a@b>;q=2\r\n")).is_err());
        assert!(parse(&msg("Contact: sip:a@b?Route=x\r\n")).is_err());
    }
}
