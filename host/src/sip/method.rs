//! Request methods. Method names are case-sensitive (RFC 3261 section 7.1), so a name is
//! matched to rsip's method set only when it is spelled exactly as rsip writes it.

use std::fmt;
use std::str::FromStr;

/// A request method: one that rsip knows, or any other token.
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
            _ => match rsip::Method::from_str(token) {
                Ok(m) if m.to_string() == token => Method::Known(m),
                _ => Method::Other(token.to_owned()),
            },
        }
    }

    /// Whether this is ACK, which is never answered.
    pub fn is_ack(&self) -> bool {
        matches!(self, Method::Known(rsip::Method::Ack))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Register => f.write_str("REGISTER"),
            Method::Options => f.write_str("OPTIONS"),
            Method::Known(m) => write!(f, "{m}"),
            Method::Other(s) => f.write_str(s),
        }
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
    }
}
