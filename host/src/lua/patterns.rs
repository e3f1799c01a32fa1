//! Lua 5.4 patterns (the reference manual, section 6.4.1), matched with fuel.
//!
//! Lua's own matcher (`lstrlib.c`) runs inside one C function, where the instruction hook
//! never fires: `string.find(("a"):rep(30000), ".-.-.-.-.-.-b")` backtracks for hours and
//! no budget can stop it. This matcher is the same algorithm, step for step (the same
//! matches, the same captures, the same error messages), but every step burns one unit of
//! fuel, and an empty tank or a passed deadline ends the match with an error instead of a
//! result. `strings.rs` gives it to scripts as `string.find`, `match`, `gmatch` and `gsub`,
//! with the fuel taken from the call's instruction budget.

use std::time::Instant;

/// The most captures a pattern may have (`LUA_MAXCAPTURES`).
pub const MAX_CAPTURES: usize = 32;
/// The deepest recursion of the matcher (`MAXCCALLS`): "pattern too complex" beyond it.
const MAX_DEPTH: usize = 200;
/// Steps between two looks at the clock.
const CLOCK_EVERY: u64 = 1 << 14;

/// Why a match ended without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchError {
    /// The pattern is malformed or uses a capture wrongly: Lua's message.
    Pattern(String),
    /// The fuel ran out.
    Fuel,
    /// The deadline passed.
    Deadline,
}

type Res<T> = Result<T, MatchError>;

fn bad<T>(message: impl Into<String>) -> Res<T> {
    Err(MatchError::Pattern(message.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Len {
    Unfinished,
    Position,
    Bytes(usize),
}

#[derive(Debug, Clone, Copy)]
struct Capture {
    init: usize,
    len: Len,
}

/// A capture's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap<'s> {
    Str(&'s [u8]),
    /// A position capture `()`: a 1-based index.
    Pos(usize),
}

/// The matcher of one subject and one pattern (`MatchState`).
#[derive(Debug)]
pub struct Matcher<'s> {
    src: &'s [u8],
    pat: &'s [u8],
    level: usize,
    depth: usize,
    caps: [Capture; MAX_CAPTURES],
    fuel: u64,
    spent: u64,
    deadline: Option<Instant>,
}

/// Lua's `isspace` in the C locale (Rust's ASCII whitespace leaves out `\v`).
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t'..=b'\r')
}

fn match_class(c: u8, class: u8) -> bool {
    let res = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => is_space(c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        // Deprecated, and still in Lua 5.4.
        b'z' => c == 0,
        _ => return class == c,
    };
    if class.is_ascii_uppercase() {
        !res
    } else {
        res
    }
}

/// Whether a pattern has none of the special characters: `string.find` then searches
/// for it as plain text.
pub fn no_specials(pat: &[u8]) -> bool {
    !pat.iter().any(|c| b"^$*+?.([%-".contains(c))
}

impl<'s> Matcher<'s> {
    /// A matcher with this much fuel; the deadline, if any, is looked at now and then.
    pub fn new(src: &'s [u8], pat: &'s [u8], fuel: u64, deadline: Option<Instant>) -> Self {
        Matcher {
            src,
            pat,
            level: 0,
            depth: MAX_DEPTH,
            caps: [Capture {
                init: 0,
                len: Len::Unfinished,
            }; MAX_CAPTURES],
            fuel,
            spent: 0,
            deadline,
        }
    }

    /// The subject from `s` to `e`.
    pub fn src_slice(&self, s: usize, e: usize) -> &'s [u8] {
        &self.src[s..e]
    }

    /// The fuel burnt so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// Sets the fuel (to what a replacement function left of the budget, say).
    pub fn set_fuel(&mut self, fuel: u64) {
        self.fuel = fuel;
    }

    /// Tries the pattern from `p` at subject offset `s` only: the end of the match.
    pub fn try_at(&mut self, s: usize, p: usize) -> Res<Option<usize>> {
        self.level = 0;
        self.depth = MAX_DEPTH;
        self.do_match(s, p)
    }

    /// The first match at or after `s` (only at `s` when anchored): its start and end.
    pub fn search(&mut self, mut s: usize, p: usize, anchor: bool) -> Res<Option<(usize, usize)>> {
        loop {
            if let Some(e) = self.try_at(s, p)? {
                return Ok(Some((s, e)));
            }
            s += 1;
            if anchor || s > self.src.len() {
                return Ok(None);
            }
        }
    }

    /// The number of values a match gives (`push_captures`): its captures, else the whole
    /// match when `whole` (find gives none).
    pub fn count(&self, whole: bool) -> usize {
        if self.level == 0 && whole {
            1
        } else {
            self.level
        }
    }

    /// Capture `i` of the match `s..e` (`get_onecapture`): the whole match for capture 0
    /// of a pattern without captures.
    pub fn capture(&self, i: usize, s: usize, e: usize) -> Res<Cap<'s>> {
        if i >= self.level {
            if i != 0 {
                return bad(format!("invalid capture index %{}", i + 1));
            }
            return Ok(Cap::Str(&self.src[s..e]));
        }
        let c = self.caps[i];
        match c.len {
            Len::Unfinished => bad("unfinished capture"),
            Len::Position => Ok(Cap::Pos(c.init + 1)),
            Len::Bytes(n) => Ok(Cap::Str(&self.src[c.init..c.init + n])),
        }
    }

    fn tick(&mut self) -> Res<()> {
        if self.fuel == 0 {
            return Err(MatchError::Fuel);
        }
        self.fuel -= 1;
        self.spent += 1;
        if self.spent.is_multiple_of(CLOCK_EVERY)
            && self.deadline.is_some_and(|d| Instant::now() >= d)
        {
            return Err(MatchError::Deadline);
        }
        Ok(())
    }

    fn p(&self, i: usize) -> u8 {
        self.pat.get(i).copied().unwrap_or(0)
    }

    fn class_end(&self, mut p: usize) -> Res<usize> {
        let c = self.pat[p];
        p += 1;
        if c == b'%' {
            if p >= self.pat.len() {
                return bad("malformed pattern (ends with '%')");
            }
            return Ok(p + 1);
        }
        if c == b'[' {
            if self.p(p) == b'^' {
                p += 1;
            }
            loop {
                if p >= self.pat.len() {
                    return bad("malformed pattern (missing ']')");
                }
                let c = self.pat[p];
                p += 1;
                if c == b'%' && p < self.pat.len() {
                    p += 1;
                }
                if self.p(p) == b']' {
                    break;
                }
            }
            return Ok(p + 1);
        }
        Ok(p)
    }

    /// Whether `c` is in the class `[...]` that starts at `p` and ends at `ec` (its `]`).
    fn bracket_class(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut sig = true;
        if self.p(p + 1) == b'^' {
            sig = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return !sig;
            }
            if self.pat[p] == b'%' {
                p += 1;
                if match_class(c, self.p(p)) {
                    return sig;
                }
            } else if self.p(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if self.pat[p - 2] <= c && c <= self.pat[p] {
                    return sig;
                }
            } else if self.pat[p] == c {
                return sig;
            }
        }
    }

    fn single_match(&self, s: usize, p: usize, ep: usize) -> bool {
        let Some(&c) = self.src.get(s) else {
            return false;
        };
        match self.pat[p] {
            b'.' => true,
            b'%' => match_class(c, self.p(p + 1)),
            b'[' => self.bracket_class(c, p, ep - 1),
            pc => pc == c,
        }
    }

    fn do_match(&mut self, s: usize, p: usize) -> Res<Option<usize>> {
        if self.depth == 0 {
            return bad("pattern too complex");
        }
        self.depth -= 1;
        let r = self.match_here(s, p);
        self.depth += 1;
        r
    }

    fn match_here(&mut self, mut s: usize, mut p: usize) -> Res<Option<usize>> {
        loop {
            self.tick()?;
            if p >= self.pat.len() {
                return Ok(Some(s));
            }
            match (self.pat[p], self.p(p + 1)) {
                (b'(', b')') => return self.start_capture(s, p + 2, Len::Position),
                (b'(', _) => return self.start_capture(s, p + 1, Len::Unfinished),
                (b')', _) => return self.end_capture(s, p + 1),
                (b'$', _) if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                (b'%', b'b') => match self.balance(s, p + 2)? {
                    Some(next) => {
                        s = next;
                        p += 4;
                    }
                    None => return Ok(None),
                },
                (b'%', b'f') => {
                    p += 2;
                    if self.p(p) != b'[' {
                        return bad("missing '[' after '%f' in pattern");
                    }
                    let ep = self.class_end(p)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    let current = self.src.get(s).copied().unwrap_or(0);
                    if self.bracket_class(previous, p, ep - 1)
                        || !self.bracket_class(current, p, ep - 1)
                    {
                        return Ok(None);
                    }
                    p = ep;
                }
                (b'%', d) if d.is_ascii_digit() => match self.match_capture(s, d)? {
                    Some(next) => {
                        s = next;
                        p += 2;
                    }
                    None => return Ok(None),
                },
                _ => {
                    let ep = self.class_end(p)?;
                    let quantifier = self.p(ep);
                    if !self.single_match(s, p, ep) {
                        if matches!(quantifier, b'*' | b'?' | b'-') {
                            p = ep + 1;
                            continue;
                        }
                        return Ok(None);
                    }
                    match quantifier {
                        b'?' => {
                            if let Some(e) = self.do_match(s + 1, ep + 1)? {
                                return Ok(Some(e));
                            }
                            p = ep + 1;
                        }
                        b'+' => return self.max_expand(s + 1, p, ep),
                        b'*' => return self.max_expand(s, p, ep),
                        b'-' => return self.min_expand(s, p, ep),
                        _ => {
                            s += 1;
                            p = ep;
                        }
                    }
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Res<Option<usize>> {
        let mut i = 0;
        while self.single_match(s + i, p, ep) {
            self.tick()?;
            i += 1;
        }
        loop {
            if let Some(e) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(e));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Res<Option<usize>> {
        loop {
            if let Some(e) = self.do_match(s, ep + 1)? {
                return Ok(Some(e));
            }
            if !self.single_match(s, p, ep) {
                return Ok(None);
            }
            s += 1;
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, len: Len) -> Res<Option<usize>> {
        if self.level >= MAX_CAPTURES {
            return bad("too many captures");
        }
        self.caps[self.level] = Capture { init: s, len };
        self.level += 1;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.level -= 1;
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Res<Option<usize>> {
        let Some(l) = (0..self.level)
            .rev()
            .find(|&l| self.caps[l].len == Len::Unfinished)
        else {
            return bad("invalid pattern capture");
        };
        self.caps[l].len = Len::Bytes(s - self.caps[l].init);
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.caps[l].len = Len::Unfinished;
        }
        Ok(r)
    }

    fn balance(&mut self, s: usize, p: usize) -> Res<Option<usize>> {
        if p + 1 >= self.pat.len() {
            return bad("malformed pattern (missing arguments to '%b')");
        }
        if self.src.get(s) != Some(&self.pat[p]) {
            return Ok(None);
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        let mut depth = 1;
        for i in s + 1..self.src.len() {
            self.tick()?;
            let c = self.src[i];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        Ok(None)
    }

    fn match_capture(&mut self, s: usize, digit: u8) -> Res<Option<usize>> {
        let l = usize::from(digit).wrapping_sub(usize::from(b'1'));
        if l >= self.level || self.caps[l].len == Len::Unfinished {
            return bad(format!(
                "invalid capture index %{}",
                i32::from(digit) - i32::from(b'0')
            ));
        }
        let Capture { init, len } = self.caps[l];
        let Len::Bytes(n) = len else {
            return Ok(None);
        };
        let end = s + n;
        Ok((end <= self.src.len() && self.src[init..init + n] == self.src[s..end]).then_some(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `string.find`-like: (start, end) 1-based and the captures as text.
    fn find(src: &str, pat: &str) -> Res<Option<(usize, usize, Vec<String>)>> {
        let (anchor, p) = match pat.strip_prefix('^') {
            Some(_) => (true, 1),
            None => (false, 0),
        };
        let mut m = Matcher::new(src.as_bytes(), pat.as_bytes(), 10_000_000, None);
        let Some((s, e)) = m.search(0, p, anchor)? else {
            return Ok(None);
        };
        let caps = (0..m.count(false))
            .map(|i| match m.capture(i, s, e).unwrap() {
                Cap::Str(b) => String::from_utf8_lossy(b).into_owned(),
                Cap::Pos(n) => format!("@{n}"),
            })
            .collect();
        Ok(Some((s + 1, e, caps)))
    }

    fn hit(src: &str, pat: &str) -> (usize, usize, Vec<String>) {
        find(src, pat)
            .unwrap()
            .unwrap_or_else(|| panic!("{pat:?} finds nothing in {src:?}"))
    }

    #[test]
    fn what_lua_finds() {
        // Expected values are Lua 5.4's own (checked against the vendored interpreter in
        // strings.rs's tests as well).
        assert_eq!(hit("hello world", "o w"), (5, 7, vec![]));
        assert_eq!(hit("hello", "l+"), (3, 4, vec![]));
        assert_eq!(hit("hello", "^h(.-)o$"), (1, 5, vec!["ell".into()]));
        assert_eq!(
            hit("key = value", "(%w+)%s*=%s*(%w+)"),
            (1, 11, vec!["key".into(), "value".into()])
        );
        assert_eq!(
            hit("THE (quick) fox", "%((%a+)%)"),
            (5, 11, vec!["quick".into()])
        );
        assert_eq!(hit("f(a(b)c)d", "%b()"), (2, 8, vec![]));
        assert_eq!(hit("THE (quick) fox", "%f[%a]%a+%f[%A]"), (1, 3, vec![]));
        assert_eq!(
            hit("abcabc", "()b()"),
            (2, 2, vec!["@2".into(), "@3".into()])
        );
        assert_eq!(hit("xyzzy", "(z)%1"), (3, 4, vec!["z".into()]));
        assert_eq!(hit("a]b", "[]]"), (2, 2, vec![]));
        assert_eq!(hit("a-b", "[a%-]+"), (1, 2, vec![]));
        assert_eq!(hit("0x1F!", "[^%x!]"), (2, 2, vec![]));
        assert_eq!(hit("tab\there", "%s"), (4, 4, vec![]));
        assert_eq!(hit("v\x0bx", "%s"), (2, 2, vec![]));
        assert_eq!(hit("aaa", "a-"), (1, 0, vec![]));
        assert_eq!(hit("aaab", "a-b"), (1, 4, vec![]));
        assert_eq!(hit("", ""), (1, 0, vec![]));
        assert_eq!(hit("abc", "$"), (4, 3, vec![]));
        assert_eq!(hit("a$b", "$b"), (2, 3, vec![]));
        assert_eq!(
            hit("sip:alice@example.com", "^sips?:([^@]+)@(.+)$"),
            (1, 21, vec!["alice".into(), "example.com".into()])
        );
        assert_eq!(find("abc", "^b").unwrap(), None);
        assert_eq!(find("abc", "d?e").unwrap(), None);
    }

    #[test]
    fn lua_messages_for_bad_patterns() {
        let err = |pat: &str| match find("abc", pat) {
            Err(MatchError::Pattern(m)) => m,
            other => panic!("{pat:?}: {other:?}"),
        };
        assert_eq!(err("%"), "malformed pattern (ends with '%')");
        assert_eq!(err("[a"), "malformed pattern (missing ']')");
        assert_eq!(err("%f"), "missing '[' after '%f' in pattern");
        assert_eq!(err("a)"), "invalid pattern capture");
        assert_eq!(err("%1"), "invalid capture index %1");
        assert_eq!(err("%b"), "malformed pattern (missing arguments to '%b')");
        assert_eq!(err(&"(".repeat(33)), "too many captures");
        let deep = "a".repeat(300);
        let optional = deep.replace('a', "a?");
        let mut m = Matcher::new(deep.as_bytes(), optional.as_bytes(), u64::MAX, None);
        assert_eq!(m.try_at(0, 0), bad("pattern too complex"));
    }

    #[test]
    fn backtracking_runs_out_of_fuel_instead_of_for_ever() {
        let src = "a".repeat(30_000);
        let mut m = Matcher::new(src.as_bytes(), b".-.-.-.-.-.-b", 1_000_000, None);
        assert_eq!(m.search(0, 0, false), Err(MatchError::Fuel));
        assert_eq!(m.spent(), 1_000_000);
        let past = Instant::now();
        let mut m = Matcher::new(src.as_bytes(), b".-.-.-.-.-.-b", u64::MAX, Some(past));
        assert_eq!(m.search(0, 0, false), Err(MatchError::Deadline));
    }
}
