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

/// An extra header of a refusal: a token name, not one the registrar writes itself, and
/// a value without line breaks.
///
/// # Errors
/// A message naming the header.
pub fn header(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        return Err(format!("\"{name}\" is not a header name"));
    }
    if matches!(
        HeaderName::parse(name),
        HeaderName::Via
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CallId
            | HeaderName::CSeq
            | HeaderName::ContentLength
    ) {
        return Err(format!("{name} is written by the registrar, not by a hook"));
    }
    if value.chars().any(|c| c == '\r' || c == '\n') {
        return Err(format!("the value of {name} holds a line break"));
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
