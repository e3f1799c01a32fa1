//! Values between Rust and Lua: the hook's TOML `config`, `ctx.vars` and `sip.kv` values,
//! the binding arguments of `bind` and `expire` (`callers.lua` builds their tables), and
//! the binding tables of `sip.location`.

use crate::hooks::{ExpireEvent, ProposedBinding, Vars};
use crate::kv::KvValue;
use crate::store::Binding;
use mlua::{IntoLua, Lua, MultiValue, Table, Value};

/// A TOML value as Lua: tables stay tables, arrays become sequences, dates strings.
fn toml_value(lua: &Lua, v: &toml::Value) -> mlua::Result<Value> {
    Ok(match v {
        toml::Value::String(s) => Value::String(lua.create_string(s)?),
        toml::Value::Integer(i) => Value::Integer(*i),
        toml::Value::Float(f) => Value::Number(*f),
        toml::Value::Boolean(b) => Value::Boolean(*b),
        toml::Value::Datetime(d) => Value::String(lua.create_string(d.to_string())?),
        toml::Value::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, item) in a.iter().enumerate() {
                t.raw_set(i + 1, toml_value(lua, item)?)?;
            }
            Value::Table(t)
        }
        toml::Value::Table(t) => Value::Table(toml_table(lua, t)?),
    })
}

/// A TOML table as a Lua table.
pub(crate) fn toml_table(lua: &Lua, t: &toml::Table) -> mlua::Result<Table> {
    let out = lua.create_table_with_capacity(0, t.len())?;
    for (k, v) in t {
        out.raw_set(k.as_str(), toml_value(lua, v)?)?;
    }
    Ok(out)
}

/// A stored value as Lua.
pub(crate) fn kv_to_lua(lua: &Lua, v: &KvValue) -> mlua::Result<Value> {
    Ok(match v {
        KvValue::Bool(b) => Value::Boolean(*b),
        KvValue::Int(i) => Value::Integer(*i),
        KvValue::Num(n) => Value::Number(*n),
        KvValue::Str(s) => Value::String(lua.create_string(s)?),
    })
}

/// A Lua value that can be stored (string, number, boolean).
pub(crate) fn lua_to_kv(v: &Value) -> Option<KvValue> {
    match v {
        Value::Boolean(b) => Some(KvValue::Bool(*b)),
        Value::Integer(i) => Some(KvValue::Int(*i)),
        Value::Number(n) => Some(KvValue::Num(*n)),
        Value::String(s) => Some(KvValue::Str(s.to_string_lossy())),
        _ => None,
    }
}

/// `ctx.vars` for a call.
pub(crate) fn vars_table(lua: &Lua, vars: &Vars) -> mlua::Result<Table> {
    let values = vars.snapshot();
    let t = lua.create_table_with_capacity(0, values.len())?;
    for (k, v) in &values {
        t.raw_set(k.as_str(), kv_to_lua(lua, v)?)?;
    }
    Ok(t)
}

/// Writes `ctx.vars` back after a call.
///
/// # Errors
/// A key that is no string, or a value that cannot be kept.
pub(crate) fn store_vars(t: &Table, vars: &Vars) -> mlua::Result<()> {
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Value::String(k) = k else {
            return Err(mlua::Error::runtime(format!(
                "ctx.vars: keys must be strings, not {}",
                k.type_name()
            )));
        };
        let k = k.to_string_lossy();
        let Some(v) = lua_to_kv(&v) else {
            return Err(mlua::Error::runtime(format!(
                "ctx.vars.{k}: a {} cannot be kept; use strings, numbers and booleans",
                v.type_name()
            )));
        };
        out.push((k, v));
    }
    if !(out.is_empty() && vars.is_empty()) {
        vars.replace(out);
    }
    Ok(())
}

/// q in thousandths as Lua's number (0.5).
fn q_value(q: Option<u16>) -> Value {
    q.map_or(Value::Nil, |q| Value::Number(f64::from(q) / 1000.0))
}

fn unquoted(s: Option<&str>) -> Option<&str> {
    s.map(crate::sip::params::unquote)
}

fn push(lua: &Lua, out: &mut MultiValue, v: impl IntoLua) -> mlua::Result<()> {
    out.push_back(v.into_lua(lua)?);
    Ok(())
}

/// The arguments `callers.bind` takes for one binding: contact, expires, q, instance,
/// reg_id, registration_id, new.
pub(crate) fn proposed(
    lua: &Lua,
    p: &ProposedBinding<'_>,
    out: &mut MultiValue,
) -> mlua::Result<()> {
    push(lua, out, p.contact)?;
    push(lua, out, p.expires)?;
    out.push_back(q_value(p.q));
    push(lua, out, unquoted(p.instance))?;
    push(lua, out, p.reg_id)?;
    push(lua, out, p.registration_id.to_string())?;
    push(lua, out, p.new)
}

/// Reads back what `bind` may change of one binding: `expires` and `q`.
///
/// # Errors
/// A value out of range.
pub(crate) fn read_back(expires: Value, q: Value) -> mlua::Result<(u32, Option<u16>)> {
    let expires = match expires {
        Value::Integer(n) if n >= 0 => u32::try_from(n).unwrap_or(u32::MAX),
        Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => n.min(f64::from(u32::MAX)) as u32,
        other => {
            return Err(mlua::Error::runtime(format!(
                "binding.expires must be a whole number of seconds >= 0, not {}",
                other
                    .to_string()
                    .unwrap_or_else(|_| other.type_name().into())
            )));
        }
    };
    let q = match q {
        Value::Nil => None,
        Value::Integer(n) if (0..=1).contains(&n) => Some(n as u16 * 1000),
        Value::Number(n) if (0.0..=1.0).contains(&n) => Some((n * 1000.0).round() as u16),
        other => {
            return Err(mlua::Error::runtime(format!(
                "binding.q must be nil or a number from 0 to 1, not {}",
                other
                    .to_string()
                    .unwrap_or_else(|_| other.type_name().into())
            )));
        }
    };
    Ok((expires, q))
}

/// The arguments `callers.expire` takes for the binding that went away.
pub(crate) fn expired(lua: &Lua, e: &ExpireEvent<'_>) -> mlua::Result<MultiValue> {
    let mut out = MultiValue::new();
    push(lua, &mut out, e.aor)?;
    push(lua, &mut out, e.contact)?;
    out.push_back(q_value(e.q));
    push(lua, &mut out, unquoted(e.instance))?;
    push(lua, &mut out, e.reg_id)?;
    push(lua, &mut out, e.registration_id.to_string())?;
    push(lua, &mut out, e.source.to_string())?;
    push(lua, &mut out, e.transport.as_str())?;
    push(lua, &mut out, e.natted)?;
    push(lua, &mut out, e.reason.token())?;
    push(lua, &mut out, e.reason.as_str())?;
    Ok(out)
}

/// A stored binding, for `sip.location`.
pub(crate) fn stored(lua: &Lua, aor: &str, b: &Binding, now_ms: u64) -> mlua::Result<Table> {
    let left = b.expires_at_ms.saturating_sub(now_ms).div_ceil(1000);
    let t = lua.create_table_with_capacity(0, 10)?;
    t.raw_set("aor", aor)?;
    t.raw_set("contact", &*b.contact)?;
    t.raw_set("expires", left)?;
    t.raw_set("q", q_value(b.q))?;
    t.raw_set("instance", unquoted(b.instance.as_deref()))?;
    t.raw_set("reg_id", b.reg_id.as_deref())?;
    t.raw_set("registration_id", b.registration_id.to_string())?;
    t.raw_set("source", b.source.to_string())?;
    t.raw_set("transport", b.transport.as_str())?;
    t.raw_set("natted", b.natted)?;
    Ok(t)
}
