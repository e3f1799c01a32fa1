//! The string functions a script could make run for ever inside C, where no VM hook
//! fires, replaced by bounded ones with Lua 5.4's behaviour: `find`, `match`, `gmatch`
//! and `gsub` match with `patterns.rs` (each step burns the call's instruction budget and
//! the deadline is watched), `rep` and `gsub` refuse a result larger than the state's
//! memory cap before building it, and `rep` of an empty string is empty at once (Lua's
//! loops `n` times to copy nothing).

use super::limits::Meter;
use super::patterns::{Cap, MatchError, Matcher, no_specials};
use mlua::{Lua, MultiValue, String as LuaString, Value};
use std::cell::Cell;

/// Installs the functions in the `string` table (also the strings' `__index`).
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let string: mlua::Table = lua.globals().get("string")?;
    string.set("find", lua.create_function(find)?)?;
    string.set("match", lua.create_function(match_)?)?;
    string.set("gmatch", lua.create_function(gmatch)?)?;
    string.set("gsub", lua.create_function(gsub)?)?;
    string.set("rep", lua.create_function(rep)?)?;
    Ok(())
}

/// `posrelatI` of lstrlib.c: a 1-based start position from a possibly negative one.
fn start_at(pos: i64, len: usize) -> usize {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    if pos > 0 {
        usize::try_from(pos).unwrap_or(usize::MAX)
    } else if pos == 0 || pos < -len_i {
        1
    } else {
        usize::try_from(len_i + pos + 1).unwrap_or(1)
    }
}

/// The largest string built in a state without a cap.
const UNCAPPED_MAX: usize = 256 << 20;

/// The largest string a function may build: the state's memory cap.
fn size_cap(lua: &Lua) -> usize {
    lua.app_data_ref::<Meter>().map_or(UNCAPPED_MAX, |m| {
        if m.memory == 0 {
            UNCAPPED_MAX
        } else {
            m.memory
        }
    })
}

/// A result over the cap: the memory limit is hit (the call ends, whatever `pcall`s).
fn too_large(lua: &Lua, what: &str) -> mlua::Error {
    if let Some(m) = lua.app_data_ref::<Meter>() {
        m.trip_memory();
    }
    mlua::Error::runtime(format!(
        "{what}: resulting string too large (the script's memory limit is {} MiB)",
        size_cap(lua) >> 20
    ))
}

/// Runs one matcher operation with what is left of the call's budget, and counts what it
/// burnt; the budget or deadline running out ends the call as the VM hook would.
fn metered<T>(
    lua: &Lua,
    m: &mut Matcher<'_>,
    op: impl FnOnce(&mut Matcher<'_>) -> Result<T, MatchError>,
) -> mlua::Result<T> {
    let meter = lua.app_data_ref::<Meter>();
    let fuel = meter.as_ref().map_or(u64::MAX, |m| m.fuel());
    m.set_fuel(fuel);
    if let Some(meter) = &meter
        && std::time::Instant::now() >= meter.deadline()
    {
        return Err(meter.trip_time());
    }
    let before = m.spent();
    let r = op(m);
    let spent = m.spent() - before;
    match (r, &meter) {
        (Ok(v), meter) => {
            if let Some(meter) = meter {
                meter.burn(spent);
            }
            Ok(v)
        }
        (Err(MatchError::Pattern(message)), _) => Err(mlua::Error::runtime(message)),
        (Err(MatchError::Fuel), Some(meter)) => {
            meter.burn(spent);
            Err(meter.trip_budget())
        }
        (Err(MatchError::Deadline), Some(meter)) => Err(meter.trip_time()),
        (Err(_), None) => Err(mlua::Error::runtime("pattern matching stopped")),
    }
}

fn matcher<'s>(lua: &Lua, src: &'s [u8], pat: &'s [u8]) -> Matcher<'s> {
    let deadline = lua.app_data_ref::<Meter>().map(|m| m.deadline());
    Matcher::new(src, pat, 0, deadline)
}

fn cap_value(lua: &Lua, cap: Cap<'_>) -> mlua::Result<Value> {
    Ok(match cap {
        Cap::Str(b) => Value::String(lua.create_string(b)?),
        Cap::Pos(n) => Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
    })
}

/// The values of a match `s..e` (`push_captures`): its captures, or the whole match
/// when `whole` and it has none.
fn captures(
    lua: &Lua,
    m: &Matcher<'_>,
    s: usize,
    e: usize,
    whole: bool,
    out: &mut Vec<Value>,
) -> mlua::Result<()> {
    for i in 0..m.count(whole) {
        let cap = m.capture(i, s, e).map_err(pattern_error)?;
        out.push(cap_value(lua, cap)?);
    }
    Ok(())
}

fn pattern_error(e: MatchError) -> mlua::Error {
    match e {
        MatchError::Pattern(m) => mlua::Error::runtime(m),
        other => mlua::Error::runtime(format!("{other:?}")),
    }
}

fn find_aux(
    lua: &Lua,
    s: &LuaString,
    p: &LuaString,
    init: Option<i64>,
    plain: bool,
    find: bool,
) -> mlua::Result<MultiValue> {
    let src = s.as_bytes();
    let pat = p.as_bytes();
    let init = start_at(init.unwrap_or(1), src.len()) - 1;
    if init > src.len() {
        return Ok(MultiValue::from_iter([Value::Nil]));
    }
    if find && (plain || no_specials(&pat)) {
        return Ok(match memchr::memmem::find(&src[init..], &pat) {
            Some(i) => MultiValue::from_iter([
                Value::Integer((init + i + 1) as i64),
                Value::Integer((init + i + pat.len()) as i64),
            ]),
            None => MultiValue::from_iter([Value::Nil]),
        });
    }
    let (anchor, p0) = if pat.first() == Some(&b'^') {
        (true, 1)
    } else {
        (false, 0)
    };
    let mut m = matcher(lua, &src, &pat);
    let Some((s1, e)) = metered(lua, &mut m, |m| m.search(init, p0, anchor))? else {
        return Ok(MultiValue::from_iter([Value::Nil]));
    };
    let mut out = Vec::new();
    if find {
        out.push(Value::Integer((s1 + 1) as i64));
        out.push(Value::Integer(e as i64));
    }
    captures(lua, &m, s1, e, !find, &mut out)?;
    Ok(MultiValue::from_iter(out))
}

fn find(
    lua: &Lua,
    (s, p, init, plain): (LuaString, LuaString, Option<i64>, Value),
) -> mlua::Result<MultiValue> {
    find_aux(
        lua,
        &s,
        &p,
        init,
        plain.as_boolean().unwrap_or(!plain.is_nil()),
        true,
    )
}

fn match_(
    lua: &Lua,
    (s, p, init): (LuaString, LuaString, Option<i64>),
) -> mlua::Result<MultiValue> {
    find_aux(lua, &s, &p, init, false, false)
}

fn gmatch(
    lua: &Lua,
    (s, p, init): (LuaString, LuaString, Option<i64>),
) -> mlua::Result<mlua::Function> {
    let len = s.as_bytes().len();
    let init = start_at(init.unwrap_or(1), len) - 1;
    let pos = Cell::new(init.min(len + 1));
    let last: Cell<Option<usize>> = Cell::new(None);
    lua.create_function(move |lua, ()| {
        let src = s.as_bytes();
        let pat = p.as_bytes();
        let mut m = matcher(lua, &src, &pat);
        let mut at = pos.get();
        while at <= src.len() {
            let e = metered(lua, &mut m, |m| m.try_at(at, 0))?;
            if let Some(e) = e
                && Some(e) != last.get()
            {
                pos.set(e);
                last.set(Some(e));
                let mut out = Vec::new();
                captures(lua, &m, at, e, true, &mut out)?;
                return Ok(MultiValue::from_iter(out));
            }
            at += 1;
        }
        pos.set(at);
        Ok(MultiValue::from_iter([Value::Nil]))
    })
}

/// What `gsub` replaces a match with.
enum Replacement {
    Template(Vec<u8>),
    Table(mlua::Table),
    Function(mlua::Function),
}

/// Appends the template of a string replacement (`%0`..`%9`, `%%`).
fn add_template(
    template: &[u8],
    m: &Matcher<'_>,
    s: usize,
    e: usize,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    let mut i = 0;
    while i < template.len() {
        let c = template[i];
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        match template.get(i).copied() {
            Some(b'%') => out.push(b'%'),
            Some(b'0') => out.extend_from_slice(m.src_slice(s, e)),
            Some(d) if d.is_ascii_digit() => {
                match m
                    .capture(usize::from(d - b'1'), s, e)
                    .map_err(pattern_error)?
                {
                    Cap::Str(b) => out.extend_from_slice(b),
                    Cap::Pos(n) => out.extend_from_slice(n.to_string().as_bytes()),
                }
            }
            _ => {
                return Err(mlua::Error::runtime(
                    "invalid use of '%' in replacement string",
                ));
            }
        }
        i += 1;
    }
    Ok(())
}

/// Appends the replacement of the match `s..e`; false when it kept the match as it was
/// (a table or function that gave nil or false).
fn add_value(
    lua: &Lua,
    repl: &Replacement,
    m: &Matcher<'_>,
    s: usize,
    e: usize,
    out: &mut Vec<u8>,
) -> mlua::Result<bool> {
    let value = match repl {
        Replacement::Template(t) => {
            add_template(t, m, s, e, out)?;
            return Ok(true);
        }
        Replacement::Table(t) => {
            let key = cap_value(lua, m.capture(0, s, e).map_err(pattern_error)?)?;
            t.get::<Value>(key)?
        }
        Replacement::Function(f) => {
            let mut args = Vec::new();
            captures(lua, m, s, e, true, &mut args)?;
            f.call::<Value>(MultiValue::from_iter(args))?
        }
    };
    match value {
        Value::Nil | Value::Boolean(false) => {
            out.extend_from_slice(m.src_slice(s, e));
            Ok(false)
        }
        Value::String(_) | Value::Integer(_) | Value::Number(_) => {
            let text = lua
                .coerce_string(value)?
                .ok_or_else(|| mlua::Error::runtime("invalid replacement value"))?;
            out.extend_from_slice(&text.as_bytes());
            Ok(true)
        }
        other => Err(mlua::Error::runtime(format!(
            "invalid replacement value (a {})",
            other.type_name()
        ))),
    }
}

fn gsub(
    lua: &Lua,
    (s, p, repl, n): (LuaString, LuaString, Value, Option<i64>),
) -> mlua::Result<(Value, i64)> {
    let repl = match repl {
        Value::String(t) => Replacement::Template(t.as_bytes().to_vec()),
        v @ (Value::Integer(_) | Value::Number(_)) => Replacement::Template(
            lua.coerce_string(v)?
                .map(|t| t.as_bytes().to_vec())
                .unwrap_or_default(),
        ),
        Value::Table(t) => Replacement::Table(t),
        Value::Function(f) => Replacement::Function(f),
        other => {
            return Err(mlua::Error::runtime(format!(
                "bad argument #3 to 'gsub' (string/function/table expected, got {})",
                other.type_name()
            )));
        }
    };
    let cap = size_cap(lua);
    let src = s.as_bytes();
    let pat = p.as_bytes();
    let max = n.unwrap_or(i64::MAX);
    let (anchor, p0) = if pat.first() == Some(&b'^') {
        (true, 1)
    } else {
        (false, 0)
    };
    let mut m = matcher(lua, &src, &pat);
    let mut out = Vec::new();
    let (mut at, mut last, mut count, mut changed) = (0, None, 0i64, false);
    while count < max {
        let e = metered(lua, &mut m, |m| m.try_at(at, p0))?;
        match e {
            Some(e) if Some(e) != last => {
                count += 1;
                changed |= add_value(lua, &repl, &m, at, e, &mut out)?;
                at = e;
                last = Some(e);
            }
            _ if at < src.len() => {
                out.push(src[at]);
                at += 1;
            }
            _ => break,
        }
        if out.len() > cap {
            return Err(too_large(lua, "gsub"));
        }
        if anchor {
            break;
        }
    }
    if !changed {
        return Ok((Value::String(s.clone()), count));
    }
    if out.len() + (src.len() - at) > cap {
        return Err(too_large(lua, "gsub"));
    }
    out.extend_from_slice(&src[at..]);
    Ok((Value::String(lua.create_string(&out)?), count))
}

fn rep(lua: &Lua, (s, n, sep): (LuaString, i64, Option<LuaString>)) -> mlua::Result<LuaString> {
    let text = s.as_bytes();
    let sep = sep
        .as_ref()
        .map(|t| t.as_bytes().to_vec())
        .unwrap_or_default();
    if n <= 0 || text.len() + sep.len() == 0 {
        return lua.create_string("");
    }
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    let total = text
        .len()
        .checked_mul(n)
        .and_then(|t| sep.len().checked_mul(n - 1).and_then(|s| t.checked_add(s)));
    match total {
        Some(total) if total <= size_cap(lua) => {
            let out = if sep.is_empty() {
                text.repeat(n)
            } else {
                let mut unit = text.to_vec();
                unit.extend_from_slice(&sep);
                let mut out = unit.repeat(n - 1);
                out.extend_from_slice(&text);
                out
            };
            lua.create_string(&out)
        }
        _ => Err(too_large(lua, "rep")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> Lua {
        let lua = Lua::new();
        install(&lua).unwrap();
        lua
    }

    /// The same chunk through Lua's own string library and through ours: the same
    /// results, the same error messages.
    #[test]
    fn ours_answer_as_lua_does() {
        let theirs = Lua::new();
        let ours = state();
        let cases = [
            r#"return string.find("hello world", "o w")"#,
            r#"return string.find("hello world", "o", 6)"#,
            r#"return string.find("hello world", "o", -3)"#,
            r#"return string.find("hello", "l", 10)"#,
            r#"return string.find("a.b", ".", 1, true)"#,
            r#"return string.find("a+b", "+", 1, true)"#,
            r#"return string.find("abc", "")"#,
            r#"return string.find("abc", "", 4)"#,
            r#"return string.find("abc", "", 5)"#,
            r#"return string.find("key = value", "(%w+)%s*=%s*(%w+)")"#,
            r#"return string.match("key = value", "(%w+)%s*=%s*(%w+)")"#,
            r#"return string.match("hello", "()ll()")"#,
            r#"return string.match("  trim  ", "^%s*(.-)%s*$")"#,
            r#"return string.match("f(a(b)c)d", "%b()")"#,
            r#"return string.match("THE (quick) fox", "%f[%a]%a+", 5)"#,
            r#"return string.match(12345, "%d%d")"#,
            r#"return ("sip:alice@example.com"):match("^sips?:([^@]+)@(.+)$")"#,
            r#"return string.gsub("hello world", "o", "0")"#,
            r#"return string.gsub("hello world", "(o)", "[%1%1]", 1)"#,
            r#"return string.gsub("hello world", "%w+", "%0 %0")"#,
            r#"return string.gsub("abc", "", "-")"#,
            r#"return string.gsub("abc", "^", ">")"#,
            r#"return string.gsub("$name is $age", "%$(%w+)", {name = "Bob", age = 42})"#,
            r#"return string.gsub("$name is $x", "%$(%w+)", {name = "Bob"})"#,
            r#"return string.gsub("a b c", "%a", function(c) return c:upper() end)"#,
            r#"return string.gsub("a b c", "%a", function(c) return c == "b" and 2.5 end)"#,
            r#"return string.gsub("abc", "()", "%1")"#,
            r#"return string.gsub("100%", "%%", " percent")"#,
            r#"return string.gsub("abc", "b", 7)"#,
            r#"return string.gsub("abc", "x", "y")"#,
            r#"local t = {} for k, v in string.gmatch("a=1, b=2, c=3", "(%w+)=(%w+)") do t[#t+1] = k .. v end return table.concat(t, ";")"#,
            r#"local t = {} for w in string.gmatch("one two  three", "%a+") do t[#t+1] = w end return table.concat(t, ",")"#,
            r#"local t = {} for w in string.gmatch("abc", "") do t[#t+1] = "." end return #t"#,
            r#"local t = {} for w in string.gmatch("hello world", "%a+", 3) do t[#t+1] = w end return table.concat(t, ",")"#,
            r#"return string.find("abc", "b", -10)"#,
            r#"return string.find("a\0b", "\0")"#,
            r#"return string.find("a\0b", "%z")"#,
            r#"return string.find("THE (quick) fox", "%f[%A]")"#,
            r#"return string.match("hello", ".-(l+)(.*)")"#,
            r#"return string.match("2024-01-05", "(%d+)-(%d+)-(%d+)")"#,
            r#"return string.match("[[x]]", "%[(%b[])%]")"#,
            r#"return string.match("a,b;c", "[,;]", 3)"#,
            r#"return string.match("caps ABC", "%u+")"#,
            r#"return string.match("x = 0x1F", "0x(%x+)$")"#,
            r#"return string.match("sip:+4930@h;user=phone", "^sip:(%+?%d+)@")"#,
            r#"return string.gsub("abc", "%w", "%1")"#,
            r#"return string.gsub("hello", ".", {h = "H", o = false})"#,
            r#"return string.gsub("hello world", "(%w+) (%w+)", "%2 %1")"#,
            r#"return string.gsub("abc", ".", "x", 0)"#,
            r#"return string.gsub("abc", ".", "x", -1)"#,
            r#"local t = {} for w in ("^a^a"):gmatch("^a") do t[#t+1] = w end return table.concat(t, ",")"#,
            r#"return ("x"):rep(3)"#,
            r#"return string.rep("ab", 3)"#,
            r#"return string.rep("ab", 3, ", ")"#,
            r#"return string.rep("ab", 0)"#,
            r#"return string.rep("", 5, "x")"#,
            r#"return pcall(string.find, "abc", "%")"#,
            r#"return pcall(string.find, "abc", "[a")"#,
            r#"return pcall(string.gsub, "abc", "b", "%2")"#,
            r#"return pcall(string.gsub, "abc", "b", "%")"#,
            r#"return pcall(string.gsub, "abc", "b", function() return {} end)"#,
            r#"return pcall(string.match, "abc", "(()")"#,
        ];
        for case in cases {
            let want: Vec<String> = run(&theirs, case);
            let got: Vec<String> = run(&ours, case);
            assert_eq!(got, want, "{case}");
        }
    }

    fn run(lua: &Lua, chunk: &str) -> Vec<String> {
        let values: MultiValue = lua.load(chunk).set_name("=case").eval().unwrap();
        values
            .iter()
            .map(|v| match v {
                Value::String(s) => format!("{:?}", s.to_string_lossy()),
                // Ours also say where the script called (Lua's C functions cannot).
                Value::Error(e) => {
                    let message = super::super::error::describe(e);
                    format!("{:?}", message.trim_start_matches("case:1: "))
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn sizes_are_refused_before_building() {
        let lua = state();
        let err = lua
            .load(r#"return string.rep("x", 1e15)"#)
            .exec()
            .unwrap_err()
            .to_string();
        assert!(err.contains("resulting string too large"), "{err}");
        // Lua's own loops 1e15 times to copy nothing.
        let empty: String = lua.load(r#"return string.rep("", 1e15)"#).eval().unwrap();
        assert_eq!(empty, "");
    }
}
