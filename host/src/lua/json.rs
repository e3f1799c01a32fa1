//! `sip.json.encode` and `sip.json.decode`: JSON (RFC 8259) to and from Lua values, for
//! scripts that speak to HTTP services. Each value converted charges one unit of the
//! call's instruction budget (a huge document costs what a loop over it would), nesting
//! is limited, and what cannot be JSON (a function, a NaN, a cycle, a string that is not
//! UTF-8) is an error naming where it is.

use super::functions::ret;
use super::limits::Meter;
use mlua::{Lua, MultiValue, Table, Value};
use serde_json::Value as Json;

/// The deepest nesting either way (a table inside a table ... 64 deep).
const MAX_DEPTH: usize = 64;

fn err(message: String) -> mlua::Error {
    mlua::Error::RuntimeError(message)
}

fn charge(lua: &Lua) -> mlua::Result<()> {
    match lua.app_data_ref::<Meter>() {
        Some(m) => m.charge(1),
        None => Ok(()),
    }
}

/// `sip.json.encode(value) -> string`.
pub(super) fn encode(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let value = args.into_iter().next().unwrap_or(Value::Nil);
    let json = to_json(lua, &value, 0, "value")?;
    let text = serde_json::to_string(&json).map_err(|e| err(format!("json.encode: {e}")))?;
    ret(lua, text)
}

/// `sip.json.decode(text) -> value`.
pub(super) fn decode(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (text,): (mlua::String,) = lua.unpack_multi(args)?;
    let json: Json =
        serde_json::from_slice(&text.as_bytes()).map_err(|e| err(format!("json.decode: {e}")))?;
    let value = to_lua(lua, &json, 0)?;
    ret(lua, value)
}

/// Whether a table is a sequence 1..n with nothing else (an empty table is not: it
/// encodes as `{}`).
fn sequence_len(t: &Table) -> mlua::Result<Option<usize>> {
    let n = t.raw_len();
    if n == 0 {
        return Ok(None);
    }
    let mut keys = 0usize;
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        keys += 1;
        match k {
            Value::Integer(i) if i >= 1 && (i as usize) <= n => {}
            _ => return Ok(None),
        }
    }
    Ok((keys == n).then_some(n))
}

fn to_json(lua: &Lua, v: &Value, depth: usize, at: &str) -> mlua::Result<Json> {
    charge(lua)?;
    if depth > MAX_DEPTH {
        return Err(err(format!(
            "json.encode: {at} is nested deeper than {MAX_DEPTH} (a table that holds itself?)"
        )));
    }
    Ok(match v {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map(Json::Number)
            .ok_or_else(|| err(format!("json.encode: {at} is {n}, which JSON cannot hold")))?,
        Value::String(s) => Json::String(
            s.to_str()
                .map_err(|_| err(format!("json.encode: {at} is not UTF-8 text")))?
                .to_string(),
        ),
        Value::Table(t) => match sequence_len(t)? {
            Some(n) => {
                let mut items = Vec::with_capacity(n);
                for i in 1..=n {
                    let item: Value = t.raw_get(i)?;
                    items.push(to_json(lua, &item, depth + 1, &format!("{at}[{i}]"))?);
                }
                Json::Array(items)
            }
            None => {
                let mut map = serde_json::Map::new();
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, item) = pair?;
                    let key = match &k {
                        Value::String(s) => s
                            .to_str()
                            .map_err(|_| err(format!("json.encode: a key of {at} is not UTF-8")))?
                            .to_string(),
                        Value::Integer(i) => i.to_string(),
                        other => {
                            return Err(err(format!(
                                "json.encode: {at} has a {} key; JSON keys are strings",
                                other.type_name()
                            )));
                        }
                    };
                    let item = to_json(lua, &item, depth + 1, &format!("{at}.{key}"))?;
                    map.insert(key, item);
                }
                Json::Object(map)
            }
        },
        other => {
            return Err(err(format!(
                "json.encode: {at} is a {}, which JSON cannot hold",
                other.type_name()
            )));
        }
    })
}

fn to_lua(lua: &Lua, v: &Json, depth: usize) -> mlua::Result<Value> {
    charge(lua)?;
    if depth > MAX_DEPTH {
        return Err(err(format!("json.decode: nested deeper than {MAX_DEPTH}")));
    }
    Ok(match v {
        // JSON's null is nil: a key whose value is null is absent from the table.
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item, depth + 1)?)?;
            }
            Value::Table(t)
        }
        Json::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, item) in map {
                t.raw_set(k.as_str(), to_lua(lua, item, depth + 1)?)?;
            }
            Value::Table(t)
        }
    })
}
