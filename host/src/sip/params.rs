//! `;name=value` parameter lists, as they follow a URI or a header value.
//!
//! Header parameters may carry quoted strings (`+sip.instance="<urn:uuid:...>"`), so the
//! splitter skips `;` inside quotes; URI parameters never contain quotes, so the same code
//! serves both.

/// One parameter, borrowed from the message text; `value` keeps its quotes, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
}

impl<'a> Param<'a> {
    /// The value without surrounding quotes (escapes are left as they are).
    pub fn unquoted(&self) -> Option<&'a str> {
        self.value.map(unquote)
    }
}

/// Strips one pair of surrounding double quotes.
pub fn unquote(v: &str) -> &str {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        super::scan::between(v, 1, v.len() - 1)
    } else {
        v
    }
}

/// Iterates over `;a=b;c` (a leading `;` is optional).
pub fn iter(text: &str) -> ParamIter<'_> {
    ParamIter { text, pos: 0 }
}

/// The iterator of [`iter`]: one pass over the bytes, quoted values skipped as a whole.
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = Param<'a>;

    fn next(&mut self) -> Option<Param<'a>> {
        let b = self.text.as_bytes();
        let mut i = self.pos;
        loop {
            while i < b.len() && matches!(b[i], b';' | b' ' | b'\t') {
                i += 1;
            }
            if i >= b.len() {
                self.pos = i;
                return None;
            }
            let start = i;
            while i < b.len() && b[i] != b'=' && b[i] != b';' {
                i += 1;
            }
            let name = super::scan::trim_end(super::scan::between(self.text, start, i));
            let value = if i < b.len() && b[i] == b'=' {
                i += 1;
                let vstart = i;
                let mut in_quotes = false;
                while i < b.len() {
                    match b[i] {
                        b'\\' if in_quotes => i += 1,
                        b'"' => in_quotes = !in_quotes,
                        b';' if !in_quotes => break,
                        _ => {}
                    }
                    i += 1;
                }
                Some(super::scan::trim(super::scan::between(
                    self.text,
                    vstart,
                    i.min(b.len()),
                )))
            } else {
                None
            };
            if name.is_empty() && value.is_none() {
                continue;
            }
            self.pos = i;
            return Some(Param { name, value });
        }
    }
}

/// The first parameter called `name` (case-insensitive): `Some(None)` when it has no value.
pub fn get<'a>(text: &'a str, name: &str) -> Option<Option<&'a str>> {
    iter(text)
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value)
}

/// Splits on `sep` where it stands outside double quotes and angle brackets.
pub fn split_outside_quotes(text: &str, sep: u8) -> SplitOutside<'_> {
    let (mut quoted, mut separated) = (false, false);
    for &b in text.as_bytes() {
        quoted |= b == b'"' || b == b'<';
        separated |= b == sep;
    }
    SplitOutside {
        text,
        pos: 0,
        done: false,
        plain: !quoted,
        whole: !separated,
        sep,
    }
}

/// The bytes the scan stops at, besides the separator: what opens or closes a part where
/// the separator does not count.
const STOPS: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t
};

/// The first `sep` at or after `start` outside quotes and angle brackets. A quoted
/// string is crossed in one jump to its closing quote (past escaped characters).
fn split_point(bytes: &[u8], start: usize, sep: u8) -> Option<usize> {
    let mut angle = 0u32;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        if b == sep {
            if angle == 0 {
                return Some(i);
            }
        } else if STOPS[usize::from(b)] {
            match b {
                b'"' => loop {
                    i += 1;
                    let rest = bytes.get(i..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(k) if rest[k] == b'\\' => i += k + 1,
                        Some(k) => {
                            i += k;
                            break;
                        }
                        None => return None,
                    }
                },
                b'<' => angle += 1,
                _ => angle = angle.saturating_sub(1),
            }
        }
        i += 1;
    }
    None
}

/// The iterator of [`split_outside_quotes`]. Text without the separator (the common case:
/// one Contact, one Via) is one piece at once; text without quotes or angle brackets is
/// split without tracking them.
#[derive(Debug, Clone)]
pub struct SplitOutside<'a> {
    text: &'a str,
    pos: usize,
    done: bool,
    plain: bool,
    whole: bool,
    sep: u8,
}

impl<'a> Iterator for SplitOutside<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let end = if self.whole {
            None
        } else if self.plain {
            // Header values are short: a plain loop beats memchr's set-up here.
            bytes[start..]
                .iter()
                .position(|&b| b == self.sep)
                .map(|i| start + i)
        } else {
            split_point(bytes, start, self.sep)
        };
        match end {
            Some(e) => {
                self.pos = e + 1;
                Some(super::scan::between(self.text, start, e))
            }
            None => {
                self.done = true;
                Some(super::scan::after(self.text, start.min(self.text.len())))
            }
        }
    }
}

/// Whether the quotes in `text` balance (an escaped quote does not count).
pub fn quotes_balanced(text: &str) -> bool {
    let mut in_quotes = false;
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' if in_quotes => {
                bytes.next();
            }
            b'"' => in_quotes = !in_quotes,
            _ => {}
        }
    }
    !in_quotes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_keep_semicolons_and_quotes() {
        let text = r#";+sip.instance="<urn:uuid:a;b>";reg-id=1;lr;expires=60"#;
        let all: Vec<_> = iter(text).collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].name, "+sip.instance");
        assert_eq!(all[0].value, Some(r#""<urn:uuid:a;b>""#));
        assert_eq!(all[0].unquoted(), Some("<urn:uuid:a;b>"));
        assert_eq!(get(text, "LR"), Some(None));
        assert_eq!(get(text, "expires"), Some(Some("60")));
        assert_eq!(get(text, "q"), None);
    }

    #[test]
    fn split_respects_quotes_and_brackets() {
        let parts: Vec<_> =
            split_outside_quotes(r#""a, b" <sip:x@y;p=1,2>, <sip:z@w>"#, b',').collect();
        assert_eq!(parts, vec![r#""a, b" <sip:x@y;p=1,2>"#, " <sip:z@w>"]);
    }

    #[test]
    fn balance() {
        assert!(quotes_balanced(r#""a \" b""#));
        assert!(!quotes_balanced(r#""a b"#));
    }
}
