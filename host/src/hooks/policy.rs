//! The checks every hook implementation's answers go through (Lua decisions, plugin
//! answers): a refusal's code, reason and extra headers, and credentials.

use super::Credentials;
use crate::auth::Secret;
use crate::sip::HeaderName;
use crate::sip::digest::Algorithm;

/// A hook refuses or redirects: 300 to 699; 2xx answers are the registrar's.
///
/// # Errors
/// A message for another code.
pub fn code(code: i64) -> Result<u16, String> {
    if (300..=699).contains(&code) {
        Ok(code as u16)
    } else {
        Err(format!(
            "code {code} is not a final refusal or redirection (300 to 699)"
        ))
    }
}

/// A reason phrase: 1 to 200 printable characters.
///
/// # Errors
/// A message for another text.
pub fn reason(reason: &str) -> Result<(), String> {
    if reason.is_empty() || reason.len() > 200 || reason.chars().any(char::is_control) {
        Err("the reason must be 1 to 200 printable characters".into())
    } else {
        Ok(())
    }
}

/// Headers the registrar writes itself, or that belong to the authentication and the
/// registration procedure: no hook adds or overrides them.
/// (Besides those `HeaderName` names.)
const RESERVED: &[&str] = &[
    "Min-Expires",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Authentication-Info",
];

/// An extra header of a refusal or redirection (`code`): a token name, none the
/// registrar writes itself (Via, From, To, Call-ID, CSeq, Content-Length, the
/// authentication's, Path, Min-Expires, Require, Supported, Expires, Date; Contact except
/// in a 3xx, where it names the targets), and a value without CR, LF or NUL.
///
/// # Errors
/// A message naming the header.
pub fn header(code: u16, name: &str, value: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        return Err(format!("\"{name}\" is not a header name"));
    }
    let reserved = match HeaderName::parse(name) {
        HeaderName::Via
        | HeaderName::From
        | HeaderName::To
        | HeaderName::CallId
        | HeaderName::CSeq
        | HeaderName::ContentLength
        | HeaderName::Path
        | HeaderName::Require
        | HeaderName::Supported
        | HeaderName::Expires
        | HeaderName::Date => true,
        HeaderName::Contact => !(300..400).contains(&code),
        _ => RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)),
    };
    if reserved {
        return Err(format!("{name} is written by the registrar, not by a hook"));
    }
    if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(format!("the value of {name} holds CR, LF or NUL"));
    }
    Ok(())
}

/// Credentials for the digest check: a user name and a password, or HA1 in hex (32
/// digits for MD5, 64 for SHA-256).
///
/// # Errors
/// A message for an empty user name or a malformed HA1.
pub fn credentials(username: String, secret: String, is_ha1: bool) -> Result<Credentials, String> {
    if username.is_empty() {
        return Err("username must be a non-empty string".into());
    }
    let secret = if is_ha1 {
        let algorithm = match secret.len() {
            32 => Algorithm::Md5,
            64 => Algorithm::Sha256,
            _ => return Err("ha1 must be 32 (MD5) or 64 (SHA-256) hex digits".into()),
        };
        if !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("ha1 must be hex digits".into());
        }
        Secret::Ha1 {
            algorithm,
            hex: secret.to_ascii_lowercase(),
        }
    } else {
        Secret::Password(secret)
    };
    Ok(Credentials { username, secret })
}

/// The algorithms of a challenge a hook chose (`"MD5"`, `"SHA-256"`, `"SHA-512-256"`, in
/// the order to offer them).
///
/// # Errors
/// A message for an empty list, an unknown name or one named twice.
pub fn algorithms<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<Algorithm>, String> {
    let mut out = Vec::new();
    for name in names {
        let Some(a) = Algorithm::from_token(name) else {
            return Err(format!(
                "challenges with the unknown digest algorithm {name:?} (MD5, SHA-256 or SHA-512-256)"
            ));
        };
        if out.contains(&a) {
            return Err(format!("challenges with {a} twice"));
        }
        out.push(a);
    }
    if out.is_empty() {
        return Err("challenges with no algorithm".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{algorithms, header};

    #[test]
    fn challenge_algorithms_are_known_once_each() {
        use crate::sip::digest::Algorithm;
        assert_eq!(
            algorithms(["md5", "SHA-256"]),
            Ok(vec![Algorithm::Md5, Algorithm::Sha256])
        );
        assert!(algorithms(["SHA-1"]).unwrap_err().contains("\"SHA-1\""));
        assert!(algorithms(["MD5", "MD5"]).unwrap_err().contains("twice"));
        assert!(algorithms([]).is_err());
    }

    #[test]
    fn reserved_headers_and_line_breaks_are_refused() {
        assert!(header(403, "X-Reason", "locked out").is_ok());
        assert!(header(503, "Retry-After", "60").is_ok());
        assert!(header(302, "Contact", "<sip:bob@192.0.2.1>").is_ok());
        for name in [
            "Via",
            "v",
            "call-id",
            "Content-Length",
            "l",
            "Contact",
            "m",
            "WWW-Authenticate",
            "proxy-authenticate",
            "Authentication-Info",
            "Path",
            "Min-Expires",
            "Require",
            "Supported",
            "k",
            "Expires",
            "Date",
        ] {
            let e = header(403, name, "x").unwrap_err();
            assert!(e.contains("written by the registrar"), "{name}: {e}");
        }
        for bad in ["a\rb", "a\nb", "a\0b"] {
            assert!(
                header(403, "X-Note", bad)
                    .unwrap_err()
                    .contains("CR, LF or NUL")
            );
        }
        assert!(
            header(403, "Bad Name", "x")
                .unwrap_err()
                .contains("not a header name")
        );
    }
}
