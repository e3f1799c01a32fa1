//! Byte-level scanning for the ASCII structure of SIP: the searches and trims the parser
//! does hundreds of times per message, without the set-up of `str`'s char patterns or the
//! Unicode tables of `str::trim`.

/// The first position of `b` in `s`.
pub fn find(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// The last position of `b` in `s`.
pub fn rfind(s: &str, b: u8) -> Option<usize> {
    s.bytes().rposition(|c| c == b)
}

/// `s` split around the first `b`.
pub fn split_once(s: &str, b: u8) -> Option<(&str, &str)> {
    find(s, b).map(|i| (&s[..i], &s[i + 1..]))
}

fn is_lws(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

/// `s` without leading spaces and tabs.
pub fn trim_start(s: &str) -> &str {
    let start = s.bytes().position(|b| !is_lws(&b)).unwrap_or(s.len());
    &s[start..]
}

/// `s` without trailing spaces and tabs.
pub fn trim_end(s: &str) -> &str {
    let end = s.bytes().rposition(|b| !is_lws(&b)).map_or(0, |i| i + 1);
    &s[..end]
}

/// `s` without spaces and tabs at either end (SIP's linear white space once unfolded).
pub fn trim(s: &str) -> &str {
    trim_end(trim_start(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_structure() {
        assert_eq!(trim(" \t a b \t"), "a b");
        assert_eq!(trim("   "), "");
        assert_eq!(trim(""), "");
        assert_eq!(trim_start("  x "), "x ");
        assert_eq!(trim_end("  x "), "  x");
        assert_eq!(find("a;b;c", b';'), Some(1));
        assert_eq!(rfind("a;b;c", b';'), Some(3));
        assert_eq!(split_once("k=v=w", b'='), Some(("k", "v=w")));
        assert_eq!(split_once("k", b'='), None);
    }
}
