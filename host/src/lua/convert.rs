//! Values between Rust and Lua: the hook's TOML `config`, `ctx.vars` and `sip.kv` values,
//! and the binding tables of `bind`, `expire` and `sip.location`.

use crate::config::Transport;
use crate::hooks::{ExpireEvent, ProposedBinding, Vars};
use crate::kv::KvValue;
use crate::registrar::location::Binding;
use mlua::{Lua, Table, Value};
use std::net::SocketAddr;

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
pub(crate) fn vars_table(lua: &Lua, vars: Option<&Vars>) -> mlua::Result<Table> {
    let Some(vars) = vars.filter(|v| !v.is_empty()) else {
        return lua.create_table();
    };
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

struct Common<'a> {
    aor: &'a str,
    contact: &'a str,
    q: Option<u16>,
    instance: Option<&'a str>,
    reg_id: Option<&'a str>,
    registration_id: &'a uuid::Uuid,
    source: SocketAddr,
    transport: Transport,
}

fn binding_table(lua: &Lua, c: &Common<'_>, expires: u32) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 12)?;
    t.raw_set("aor", c.aor)?;
    t.raw_set("contact", c.contact)?;
    t.raw_set("expires", expires)?;
    t.raw_set("q", q_value(c.q))?;
    t.raw_set("instance", unquoted(c.instance))?;
    t.raw_set("reg_id", c.reg_id)?;
    t.raw_set("registration_id", c.registration_id.to_string())?;
    t.raw_set("source", c.source.to_string())?;
    t.raw_set("transport", c.transport.as_str())?;
    Ok(t)
}

/// One binding `bind` is asked about.
pub(crate) fn proposed(
    lua: &Lua,
    aor: &str,
    p: &ProposedBinding<'_>,
    source: SocketAddr,
    transport: Transport,
) -> mlua::Result<Table> {
    let t = binding_table(
        lua,
        &Common {
            aor,
            contact: p.contact,
            q: p.q,
            instance: p.instance,
            reg_id: p.reg_id,
            registration_id: &p.registration_id,
            source,
            transport,
        },
        p.expires,
    )?;
    t.raw_set("new", p.new)?;
    Ok(t)
}

/// Reads back what `bind` may change: `expires` and `q`.
///
/// # Errors
/// A value out of range.
pub(crate) fn read_back(t: &Table) -> mlua::Result<(u32, Option<u16>)> {
    let expires: Value = t.raw_get("expires")?;
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
    let q: Value = t.raw_get("q")?;
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

/// The binding an `expire` call is about.
pub(crate) fn expired(lua: &Lua, e: &ExpireEvent<'_>) -> mlua::Result<Table> {
    let t = binding_table(
        lua,
        &Common {
            aor: e.aor,
            contact: e.contact,
            q: e.q,
            instance: e.instance,
            reg_id: e.reg_id,
            registration_id: e.registration_id,
            source: e.source,
            transport: e.transport,
        },
        0,
    )?;
    t.raw_set("natted", e.natted)?;
    t.raw_set("reason", e.reason.token())?;
    t.raw_set("reason_text", e.reason.as_str())?;
    Ok(t)
}

/// A stored binding, for `sip.location`.
pub(crate) fn stored(lua: &Lua, aor: &str, b: &Binding, now_ms: u64) -> mlua::Result<Table> {
    let left = b.expires_at_ms.saturating_sub(now_ms).div_ceil(1000);
    let t = binding_table(
        lua,
        &Common {
            aor,
            contact: &b.contact,
            q: b.q,
            instance: b.instance.as_deref(),
            reg_id: b.reg_id.as_deref(),
            registration_id: &b.registration_id,
            source: b.source,
            transport: b.transport,
        },
        u32::try_from(left).unwrap_or(u32::MAX),
    )?;
    t.raw_set("natted", b.natted)?;
    Ok(t)
}
