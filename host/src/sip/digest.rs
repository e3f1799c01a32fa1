//! Digest authentication on the wire (RFC 7616, RFC 8760 for SIP): the credentials in
//! Authorization / Proxy-Authorization and the challenge in WWW-Authenticate /
//! Proxy-Authenticate, with the RFC's algorithm names (`SHA-256`, not rsip's `SHA256`).

use super::params::{split_outside_quotes, unquote};
use std::fmt::{self, Write};

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
    /// SHA-512/256 (RFC 7616, RFC 8760 for SIP).
    Sha512_256,
}

impl Algorithm {
    /// The token as RFC 7616 writes it.
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha512_256 => "SHA-512-256",
        }
    }

    fn code(self) -> u8 {
        match self {
            Algorithm::Md5 => 1,
            Algorithm::Sha256 => 2,
            Algorithm::Sha512_256 => 3,
        }
    }

    /// A list of up to three algorithms in one byte, in order (what a nonce remembers of
    /// the challenge it came with): two bits each, 0 for none.
    pub fn pack(algorithms: &[Algorithm]) -> u8 {
        algorithms
            .iter()
            .take(3)
            .enumerate()
            .fold(0, |b, (i, a)| b | a.code() << (2 * i))
    }

    /// The list [`Algorithm::pack`] packed; `None` for an empty one.
    pub fn unpack(packed: u8) -> Option<Vec<Algorithm>> {
        let mut out = Vec::with_capacity(3);
        for i in 0..3 {
            out.push(match packed >> (2 * i) & 3 {
                0 => break,
                1 => Algorithm::Md5,
                2 => Algorithm::Sha256,
                _ => Algorithm::Sha512_256,
            });
        }
        (!out.is_empty() && packed >> 6 == 0).then_some(out)
    }

    /// Reads a token (case-insensitive, as RFC 7616 section 3.3 asks).
    pub fn from_token(t: &str) -> Option<Algorithm> {
        if t.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if t.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else if t.eq_ignore_ascii_case("SHA-512-256") {
            Some(Algorithm::Sha512_256)
        } else {
            None
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// The parameters of a `Digest` credentials value, unquoted, borrowed from the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: Option<&'a str>,
    pub realm: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub uri: Option<&'a str>,
    pub response: Option<&'a str>,
    /// The algorithm token as sent; absent means MD5.
    pub algorithm: Option<&'a str>,
    pub cnonce: Option<&'a str>,
    pub opaque: Option<&'a str>,
    pub qop: Option<&'a str>,
    pub nc: Option<&'a str>,
}

/// Why credentials could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsError {
    /// Another scheme than Digest (RFC 4475 regaut01): the request is challenged.
    OtherScheme,
    /// Digest, but not readable.
    Malformed(&'static str),
}

/// Reads an Authorization or Proxy-Authorization value.
///
/// # Errors
/// [`CredentialsError`] when the scheme is not Digest or the parameters are malformed.
pub fn parse_credentials(value: &str) -> Result<Credentials<'_>, CredentialsError> {
    let value = super::scan::trim(value);
    let (scheme, rest) = match value.find([' ', '\t']) {
        Some(i) => (
            super::scan::before(value, i),
            super::scan::after(value, i + 1),
        ),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(CredentialsError::OtherScheme);
    }
    let mut c = Credentials::default();
    for item in split_outside_quotes(rest, b',') {
        let item = super::scan::trim(item);
        if item.is_empty() {
            continue;
        }
        let eq = super::scan::find(item, b'=').ok_or(CredentialsError::Malformed(
            "digest parameter without value",
        ))?;
        let name = super::scan::trim(super::scan::before(item, eq));
        let raw = super::scan::trim(super::scan::after(item, eq + 1));
        if raw.starts_with('"') != raw.ends_with('"') || raw == "\"" {
            return Err(CredentialsError::Malformed(
                "unbalanced quotes in digest parameter",
            ));
        }
        let v = unquote(raw);
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        let slot = if is("username") {
            &mut c.username
        } else if is("realm") {
            &mut c.realm
        } else if is("nonce") {
            &mut c.nonce
        } else if is("uri") {
            &mut c.uri
        } else if is("response") {
            &mut c.response
        } else if is("algorithm") {
            &mut c.algorithm
        } else if is("cnonce") {
            &mut c.cnonce
        } else if is("opaque") {
            &mut c.opaque
        } else if is("qop") {
            &mut c.qop
        } else if is("nc") {
            &mut c.nc
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(CredentialsError::Malformed("repeated digest parameter"));
        }
        *slot = Some(v);
    }
    Ok(c)
}

/// Writes one challenge value (without the header name).
pub fn write_challenge(
    out: &mut String,
    realm: &str,
    nonce: &str,
    algorithm: Algorithm,
    stale: bool,
) {
    let _ = write!(
        out,
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
        algorithm.token()
    );
    if stale {
        out.push_str(", stale=true");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_algorithms_packs_into_a_byte_in_order() {
        use Algorithm::{Md5, Sha256, Sha512_256};
        for list in [
            vec![Md5],
            vec![Sha256, Md5],
            vec![Md5, Sha256],
            vec![Sha512_256, Sha256, Md5],
        ] {
            assert_eq!(Algorithm::unpack(Algorithm::pack(&list)), Some(list));
        }
        assert_eq!(Algorithm::unpack(0), None);
        assert_eq!(
            Algorithm::unpack(0b0100_0001),
            None,
            "bits past three entries"
        );
    }

    #[test]
    fn reads_sipp_style_credentials() {
        let v = r#"Digest username="user0000",realm="127.0.0.1",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:5071",nonce="abc",response="0123",algorithm=MD5"#;
        let c = parse_credentials(v).unwrap();
        assert_eq!(c.username, Some("user0000"));
        assert_eq!(c.qop, Some("auth"));
        assert_eq!(c.nc, Some("00000001"));
        assert_eq!(c.uri, Some("sip:127.0.0.1:5071"));
        assert_eq!(
            Algorithm::from_token(c.algorithm.unwrap()),
            Some(Algorithm::Md5)
        );
    }

    #[test]
    fn other_scheme_and_malformed() {
        assert_eq!(
            parse_credentials("NoOneKnowsThisScheme opaque-data=here"),
            Err(CredentialsError::OtherScheme)
        );
        assert!(matches!(
            parse_credentials(r#"Digest username="a", username="b""#),
            Err(CredentialsError::Malformed(_))
        ));
        assert!(matches!(
            parse_credentials(r#"Digest username="a"#),
            Err(CredentialsError::Malformed(_))
        ));
    }

    #[test]
    fn challenge_uses_rfc_token() {
        let mut s = String::new();
        write_challenge(&mut s, "example.com", "n1", Algorithm::Sha256, true);
        assert_eq!(
            s,
            r#"Digest realm="example.com", nonce="n1", algorithm=SHA-256, qop="auth", stale=true"#
        );
        assert_eq!(Algorithm::from_token("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::from_token("SHA256"), None);
    }
}
