//! The Rust functions behind the `sip` table (the registry in `api.rs` names them, with
//! their phases and documentation): the request's headers and contacts, `sip.kv`,
//! `sip.location`, `sip.read_file`, the log lines, and the global `print`.

use super::context::{CallData, ScriptName};
use super::convert;
use crate::sip::contact::{self, Contacts};
use crate::sip::name_addr::NameAddr;
use crate::sip::uri::SipUri;
use crate::sip::{HeaderName, Message};
use crate::store::Stores;
use mlua::{Function, IntoLuaMulti, Lua, MultiValue, Table, Value};
use std::sync::Arc;

pub(super) fn err(msg: impl std::fmt::Display) -> mlua::Error {
    mlua::Error::runtime(msg)
}

pub(super) fn with_msg<R>(
    lua: &Lua,
    f: impl FnOnce(&Message) -> mlua::Result<R>,
) -> mlua::Result<R> {
    let call = lua
        .app_data_ref::<CallData>()
        .ok_or_else(|| err("no request in this call"))?;
    let msg = call
        .msg
        .as_ref()
        .ok_or_else(|| err("no request in this call"))?;
    f(msg)
}

/// The time of the running call: the request's, else the server's clock.
pub(super) fn now_ms(lua: &Lua) -> u64 {
    if let Some(t) = lua.app_data_ref::<CallData>().and_then(|c| c.now_ms) {
        return t;
    }
    lua.app_data_ref::<Stores>().map_or(0, |s| s.clock.now_ms())
}

pub(super) fn ret(lua: &Lua, v: impl IntoLuaMulti) -> mlua::Result<MultiValue> {
    v.into_lua_multi(lua)
}

pub(super) fn name_addr_table(lua: &Lua, value: Option<&str>) -> mlua::Result<Value> {
    let Some(value) = value else {
        return Ok(Value::Nil);
    };
    let t = lua.create_table_with_capacity(0, 6)?;
    match NameAddr::parse(value) {
        Ok(na) => {
            t.raw_set("uri", na.uri)?;
            t.raw_set("display_name", na.display.map(crate::sip::params::unquote))?;
            t.raw_set("tag", na.tag())?;
            if let Ok(u) = SipUri::parse(na.uri) {
                t.raw_set("user", u.user)?;
                t.raw_set("host", u.host)?;
                t.raw_set("port", u.port)?;
            }
        }
        Err(_) => t.raw_set("uri", value)?,
    }
    Ok(Value::Table(t))
}

/// `sip.from()`, `sip.to()`: a name-addr header as a table.
pub(super) fn header_table(lua: &Lua, h: HeaderName) -> mlua::Result<MultiValue> {
    with_msg(lua, |m| ret(lua, name_addr_table(lua, m.header(h))?))
}

pub(super) fn params_table(lua: &Lua, params: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for p in crate::sip::params::iter(params) {
        match p.unquoted() {
            Some(v) => t.raw_set(p.name.to_ascii_lowercase(), v)?,
            None => t.raw_set(p.name.to_ascii_lowercase(), true)?,
        }
    }
    Ok(t)
}

pub(super) fn contacts(lua: &Lua, _: MultiValue) -> mlua::Result<MultiValue> {
    with_msg(lua, |m| match contact::parse(m) {
        Ok(Contacts::None) => ret(lua, lua.create_table()?),
        Ok(Contacts::Wildcard) => {
            let one = lua.create_table()?;
            one.raw_set("uri", "*")?;
            one.raw_set("wildcard", true)?;
            ret(lua, lua.create_sequence_from([one])?)
        }
        Ok(Contacts::List(list)) => {
            let out = lua.create_table_with_capacity(list.len(), 0)?;
            for (i, c) in list.iter().enumerate() {
                let t = lua.create_table_with_capacity(0, 6)?;
                t.raw_set("uri", c.addr.uri)?;
                t.raw_set(
                    "display_name",
                    c.addr.display.map(crate::sip::params::unquote),
                )?;
                t.raw_set("expires", c.expires)?;
                t.raw_set("q", c.q.map(|q| f64::from(q) / 1000.0))?;
                t.raw_set("params", params_table(lua, c.addr.params)?)?;
                t.raw_set("raw", c.raw)?;
                out.raw_set(i + 1, t)?;
            }
            ret(lua, out)
        }
        Err(why) => ret(lua, (Value::Nil, why)),
    })
}

pub(super) fn shared(lua: &Lua) -> mlua::Result<Stores> {
    lua.app_data_ref::<Stores>()
        .map(|s| s.clone())
        .ok_or_else(|| err("no shared store"))
}

pub(super) fn kv_get(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (key,): (String,) = lua.unpack_multi(args)?;
    let value = shared(lua)?
        .kv
        .get(&key, now_ms(lua))
        .map_err(|e| err(format!("sip.kv.get: {e}")))?;
    match value {
        Some(v) => ret(lua, convert::kv_to_lua(lua, &v)?),
        None => ret(lua, Value::Nil),
    }
}

pub(super) fn ttl(v: Option<f64>) -> mlua::Result<Option<f64>> {
    match v {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            Err(err("sip.kv: ttl must be a number of seconds > 0"))
        }
        other => Ok(other),
    }
}

pub(super) fn kv_set(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (key, value, t): (String, Value, Option<f64>) = lua.unpack_multi(args)?;
    if value.is_nil() {
        shared(lua)?
            .kv
            .delete(&key, now_ms(lua))
            .map_err(|e| err(format!("sip.kv.set: {e}")))?;
        return ret(lua, ());
    }
    let v = convert::lua_to_kv(&value).ok_or_else(|| {
        err(format!(
            "sip.kv.set: a {} cannot be stored; use strings, numbers and booleans",
            value.type_name()
        ))
    })?;
    shared(lua)?
        .kv
        .set(&key, v, ttl(t)?, now_ms(lua))
        .map_err(|e| err(format!("sip.kv.set: {e}")))?;
    ret(lua, ())
}

pub(super) fn kv_incr(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (key, by, t): (String, Option<i64>, Option<f64>) = lua.unpack_multi(args)?;
    let n = shared(lua)?
        .kv
        .incr(&key, by.unwrap_or(1), ttl(t)?, now_ms(lua))
        .map_err(|e| err(format!("sip.kv.incr: {e}")))?;
    ret(lua, n)
}

pub(super) fn kv_delete(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (key,): (String,) = lua.unpack_multi(args)?;
    let was = shared(lua)?
        .kv
        .delete(&key, now_ms(lua))
        .map_err(|e| err(format!("sip.kv.delete: {e}")))?;
    ret(lua, was)
}

pub(super) fn location(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (aor,): (String,) = lua.unpack_multi(args)?;
    let now = now_ms(lua);
    let bindings = shared(lua)?
        .location
        .lookup(&aor, now)
        .map_err(|e| mlua::Error::runtime(format!("sip.location: {e}")))?;
    let out = lua.create_table_with_capacity(bindings.len(), 0)?;
    for (i, b) in bindings.iter().enumerate() {
        out.raw_set(i + 1, convert::stored(lua, &aor, b, now)?)?;
    }
    ret(lua, out)
}

pub(super) fn read_file(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (path,): (String,) = lua.unpack_multi(args)?;
    let text = {
        let ctx = lua
            .app_data_ref::<super::files::LoadCtx>()
            .ok_or_else(|| err("sip.read_file: no script is loading"))?;
        ctx.readable(&path).and_then(|p| ctx.files.read(&p))
    };
    match text {
        Ok(t) => ret(lua, lua.create_string(t.as_bytes())?),
        Err(e) => ret(lua, (Value::Nil, e)),
    }
}

/// Writes a log line for the script: `message` and `fields` rendered `key="value"`.
pub(super) fn log_line(
    lua: &Lua,
    level: tracing::Level,
    args: MultiValue,
) -> mlua::Result<MultiValue> {
    let (message, fields): (String, Option<Table>) = lua.unpack_multi(args)?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(t) = fields {
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            let k = k.to_string()?;
            let v = match v {
                Value::String(s) => s.to_string_lossy(),
                other => other.to_string()?,
            };
            pairs.push((k, v));
        }
    }
    pairs.sort();
    let mut rendered = String::new();
    for (k, v) in &pairs {
        if !rendered.is_empty() {
            rendered.push(' ');
        }
        rendered.push_str(&format!("{k}=\"{}\"", v.replace('"', "\\\"")));
    }
    let script = lua
        .app_data_ref::<ScriptName>()
        .map(|s| s.0.clone())
        .unwrap_or_else(|| Arc::from(""));
    let hook = lua
        .app_data_ref::<CallData>()
        .map_or("load", |c| c.phase.name());
    let script = &*script;
    match level {
        tracing::Level::ERROR => {
            tracing::error!(target: "sipreg::script", script, hook, fields = %rendered, "{message}")
        }
        tracing::Level::WARN => {
            tracing::warn!(target: "sipreg::script", script, hook, fields = %rendered, "{message}")
        }
        tracing::Level::DEBUG => {
            tracing::debug!(target: "sipreg::script", script, hook, fields = %rendered, "{message}")
        }
        _ => {
            tracing::info!(target: "sipreg::script", script, hook, fields = %rendered, "{message}")
        }
    }
    ret(lua, ())
}

/// The global `print`: its arguments, tab-separated, as an info line of the script.
pub(super) fn print_function(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, args: MultiValue| {
        let text = args
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.to_string_lossy()),
                other => other.to_string(),
            })
            .collect::<mlua::Result<Vec<_>>>()?
            .join("\t");
        log_line(lua, tracing::Level::INFO, (text,).into_lua_multi(lua)?)?;
        Ok(())
    })
}
