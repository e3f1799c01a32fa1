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
    find(s, b).map(|i| (before(s, i), after(s, i + 1)))
}

fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Whether `b` may hold a control character (or a tab): a byte below 0x20 or 0x7f, tested
/// eight bytes at a time (the value of every header of every message goes through this).
fn may_hold_control(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below n (n <= 0x80) in x, or a byte equal to 0x7f.
    let word = |x: u64| {
        let below = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let y = x ^ (ONES * 0x7f);
        let del = y.wrapping_sub(ONES) & !y & HIGH;
        (below | del) != 0
    };
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        if word(u64::from_le_bytes([
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
        ])) {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&c| is_control(c) || c == b'\t')
}

/// Whether `s` holds a control character (anything below 0x20 but HTAB, and DEL) that is
/// not escaped inside a quoted string (RFC 3261 section 25.1: a quoted-pair may carry one,
/// as RFC 4475's `intmeth` does; nothing else may).
pub fn has_bare_control(s: &str) -> bool {
    let b = s.as_bytes();
    if !may_hold_control(b) {
        return false; // the common case: eight bytes at a time
    }
    let (mut quoted, mut i) = (false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1, // the escaped byte is skipped
            b'"' => quoted = !quoted,
            c if is_control(c) => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// `s` without its control characters (for the few headers of a 400 to a message that
/// had them: the reply must still parse).
pub fn without_controls(s: &str) -> String {
    s.chars()
        .filter(|&c| !(c.is_ascii() && is_control(c as u8)))
        .collect()
}

/// `s` before byte `i` ("" if `i` is not a character boundary within `s`: the parser
/// slices only at ASCII bytes it found, where that cannot happen, and never panics).
pub fn before(s: &str, i: usize) -> &str {
    s.get(..i).unwrap_or_default()
}

/// `s` from byte `i` on ("" if `i` is not a boundary within `s`).
pub fn after(s: &str, i: usize) -> &str {
    s.get(i..).unwrap_or_default()
}

/// `s` from byte `a` to byte `b` ("" if that is not a range of boundaries within `s`).
pub fn between(s: &str, a: usize, b: usize) -> &str {
    s.get(a..b).unwrap_or_default()
}

fn is_lws(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

/// `s` without leading spaces and tabs.
pub fn trim_start(s: &str) -> &str {
    let start = s.bytes().position(|b| !is_lws(&b)).unwrap_or(s.len());
    after(s, start)
}

/// `s` without trailing spaces and tabs.
pub fn trim_end(s: &str) -> &str {
    let end = s.bytes().rposition(|b| !is_lws(&b)).map_or(0, |i| i + 1);
    before(s, end)
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

    #[test]
    fn control_characters_count_unless_escaped_in_quotes() {
        assert!(!has_bare_control("a\tb <sip:x@y>"));
        assert!(has_bare_control("cid\u{0}x"));
        assert!(has_bare_control("a\rb"));
        assert!(has_bare_control("a\u{7f}"));
        // RFC 4475 intmeth: quoted-pairs carrying BEL, NUL and DEL
        assert!(!has_bare_control(
            "\"BEL:\\\u{7} NUL:\\\u{0} DEL:\\\u{7f}\" <sip:x@y>"
        ));
        // escaped outside quotes is no escape; an unescaped one inside quotes counts
        assert!(has_bare_control("a\\\u{0}"));
        assert!(has_bare_control("\"a\u{1}\""));
        assert_eq!(without_controls("ci\u{0}d\u{1}\t"), "cid\t");
        // the fast path, at every position of a word and its tail
        for i in 0..21 {
            for c in ['\u{0}', '\u{1f}', '\u{7f}', '\r'] {
                let mut t: Vec<char> = "abcdefghijklmnopqrstu".chars().collect();
                t[i] = c;
                let t: String = t.into_iter().collect();
                assert!(has_bare_control(&t), "{t:?}");
            }
        }
        assert!(!has_bare_control(
            "caf\u{e9} \u{20ac}\u{1f4a9} ~ <sip:a@b>;tag=1 x y z"
        ));
    }
}
