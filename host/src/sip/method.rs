//! Request methods. Method names are case-sensitive (RFC 3261 section 7.1); the known ones
//! map to rsip's method set only when spelled exactly (rsip's own parser ignores case).

use std::fmt;

/// The methods sipreg answers itself (the Allow of its 200 to OPTIONS, 405 and 501).
pub const ALLOW: &str = "REGISTER, OPTIONS";

/// The methods with names, spelled as RFC 3261 and its extensions write them.
const KNOWN: &[(&str, rsip::Method)] = &[
    ("INVITE", rsip::Method::Invite),
    ("ACK", rsip::Method::Ack),
    ("BYE", rsip::Method::Bye),
    ("CANCEL", rsip::Method::Cancel),
    ("INFO", rsip::Method::Info),
    ("MESSAGE", rsip::Method::Message),
    ("NOTIFY", rsip::Method::Notify),
    ("PRACK", rsip::Method::PRack),
    ("PUBLISH", rsip::Method::Publish),
    ("REFER", rsip::Method::Refer),
    ("SUBSCRIBE", rsip::Method::Subscribe),
    ("UPDATE", rsip::Method::Update),
];

/// A request method: REGISTER, OPTIONS, another one that rsip knows, or any other token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Register,
    Options,
    Known(rsip::Method),
    Other(String),
}

impl Method {
    /// Resolves a method token.
    pub fn parse(token: &str) -> Method {
        match token {
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            _ => KNOWN.iter().find(|(name, _)| *name == token).map_or_else(
                || Method::Other(token.to_owned()),
                |(_, m)| Method::Known(*m),
            ),
        }
    }

    /// The method name as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Known(m) => KNOWN
                .iter()
                .find(|(_, k)| k == m)
                .map_or("", |(name, _)| name),
            Method::Other(s) => s,
        }
    }

    /// Whether this is ACK, which is never answered.
    pub fn is_ack(&self) -> bool {
        matches!(self, Method::Known(rsip::Method::Ack))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn case_sensitive() {
        assert_eq!(Method::parse("REGISTER"), Method::Register);
        assert_eq!(Method::parse("INVITE"), Method::Known(rsip::Method::Invite));
        assert_eq!(Method::parse("invite"), Method::Other("invite".into()));
        assert!(Method::parse("ACK").is_ack());
        assert_eq!(Method::parse("NEWMETHOD").to_string(), "NEWMETHOD");
        for name in [
            "INVITE",
            "ACK",
            "BYE",
            "CANCEL",
            "PRACK",
            "SUBSCRIBE",
            "UPDATE",
        ] {
            assert_eq!(Method::parse(name).as_str(), name);
        }
    }
}
