//! Character classes of RFC 3261's grammar as lookup tables (one load per byte on the
//! parsing hot path instead of a search through a list of allowed characters).

const fn table(extra: &[u8], alnum: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = alnum && b.is_ascii_alphanumeric();
        i += 1;
    }
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
}

const TOKEN: [bool; 256] = table(b"-.!%*_+`'~", true);
const HOST: [bool; 256] = table(b"-.", true);

/// `token` (RFC 3261 section 25.1).
pub fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// A character of a host name or IPv4 address.
pub fn is_host(b: u8) -> bool {
    HOST[b as usize]
}

/// `unreserved` plus the given characters, for the escaped parts of a URI.
const fn escaped_table(extra: &[u8]) -> [bool; 256] {
    let mut t = table(extra, true);
    let marks = b"-_.!~*'()%";
    let mut i = 0;
    while i < marks.len() {
        t[marks[i] as usize] = true;
        i += 1;
    }
    t
}

/// Characters of a URI's user part (`%` included; escapes are checked separately).
pub const URI_USER: [bool; 256] = escaped_table(b"&=+$,;?/");
/// Characters of a URI's password.
pub const URI_PASSWORD: [bool; 256] = escaped_table(b"&=+$,");
/// Characters of a URI's parameters, with their `;` and `=`.
pub const URI_PARAMS: [bool; 256] = escaped_table(b";=[]/:&+$");
/// Characters of a URI's headers after `?`.
pub const URI_HEADERS: [bool; 256] = escaped_table(b"[]/?:+$&=");
