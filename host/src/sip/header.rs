//! Header names: the ones the registrar reads, their compact forms (RFC 3261 section 7.3.3
//! and the later RFCs that define one), and whether a header may appear only once.

/// A header the registrar knows by name; everything else is [`HeaderName::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    Expires,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    Require,
    ProxyRequire,
    Supported,
    Authorization,
    ProxyAuthorization,
    UserAgent,
    Route,
    RecordRoute,
    Path,
    Date,
    Subject,
    Event,
    Other,
}

impl HeaderName {
    /// Resolves a header name as it stands in a message (case-insensitive, compact forms too).
    pub fn parse(name: &str) -> HeaderName {
        if name.len() == 1 {
            return match name.as_bytes()[0].to_ascii_lowercase() {
                b'v' => HeaderName::Via,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'i' => HeaderName::CallId,
                b'm' => HeaderName::Contact,
                b'l' => HeaderName::ContentLength,
                b'c' => HeaderName::ContentType,
                b'e' => HeaderName::ContentEncoding,
                b'k' => HeaderName::Supported,
                b's' => HeaderName::Subject,
                b'o' => HeaderName::Event,
                _ => HeaderName::Other,
            };
        }
        // Candidates by length first, so most names cost one or two comparisons.
        let candidates: &[HeaderName] = match name.len() {
            2 => &[HeaderName::To],
            3 => &[HeaderName::Via],
            4 => &[
                HeaderName::From,
                HeaderName::CSeq,
                HeaderName::Path,
                HeaderName::Date,
            ],
            5 => &[HeaderName::Route, HeaderName::Event],
            7 => &[
                HeaderName::CallId,
                HeaderName::Contact,
                HeaderName::Expires,
                HeaderName::Require,
                HeaderName::Subject,
            ],
            9 => &[HeaderName::Supported],
            10 => &[HeaderName::UserAgent],
            12 => &[
                HeaderName::MaxForwards,
                HeaderName::ContentType,
                HeaderName::RecordRoute,
            ],
            13 => &[HeaderName::Authorization, HeaderName::ProxyRequire],
            14 => &[HeaderName::ContentLength],
            16 => &[HeaderName::ContentEncoding],
            19 => &[HeaderName::ProxyAuthorization],
            _ => &[],
        };
        candidates
            .iter()
            .find(|h| h.as_str().eq_ignore_ascii_case(name))
            .copied()
            .unwrap_or(HeaderName::Other)
    }

    /// The canonical long name, as the registrar writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::Expires => "Expires",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Supported => "Supported",
            HeaderName::Authorization => "Authorization",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Path => "Path",
            HeaderName::Date => "Date",
            HeaderName::Subject => "Subject",
            HeaderName::Event => "Event",
            HeaderName::Other => "",
        }
    }

    /// Headers that RFC 3261 allows once per message; a second one makes the request malformed.
    pub fn is_single(self) -> bool {
        matches!(
            self,
            HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::Expires
        )
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName;

    #[test]
    fn compact_and_long_forms() {
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("I"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("m"), HeaderName::Contact);
        assert_eq!(HeaderName::parse("l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::parse("call-id"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("CSEQ"), HeaderName::CSeq);
        assert_eq!(HeaderName::parse("X-Foo"), HeaderName::Other);
        assert_eq!(HeaderName::parse("q"), HeaderName::Other);
        for h in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
            HeaderName::Contact,
            HeaderName::Expires,
            HeaderName::MaxForwards,
            HeaderName::ContentLength,
            HeaderName::ContentType,
            HeaderName::ContentEncoding,
            HeaderName::Require,
            HeaderName::ProxyRequire,
            HeaderName::Supported,
            HeaderName::Authorization,
            HeaderName::ProxyAuthorization,
            HeaderName::UserAgent,
            HeaderName::Route,
            HeaderName::RecordRoute,
            HeaderName::Path,
            HeaderName::Date,
            HeaderName::Subject,
            HeaderName::Event,
        ] {
            assert_eq!(HeaderName::parse(h.as_str()), h, "{}", h.as_str());
            assert_eq!(HeaderName::parse(&h.as_str().to_ascii_uppercase()), h);
        }
    }
}
