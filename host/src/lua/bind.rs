//! What a script's `bind` sets beside its decision: `ctx.limits`, this AOR's limits over
//! `[registrar]`'s (`max_contacts`, `min_expires`, `max_expires`, `evict`), and
//! `ctx.reply_headers`, headers for the 200 (`Service-Route`, `P-Associated-URI`, ...).

use crate::config::Evict;
use crate::hooks::AorPolicy;
use mlua::Value;

fn fail(message: String) -> mlua::Error {
    mlua::Error::runtime(message)
}

/// A whole number from 0 to `max`.
fn whole(key: &str, v: &Value, max: u64) -> mlua::Result<u64> {
    let n = match v {
        Value::Integer(n) => u64::try_from(*n).ok(),
        Value::Number(n) if n.fract() == 0.0 && *n >= 0.0 => Some(*n as u64),
        _ => None,
    };
    n.filter(|n| *n <= max).ok_or_else(|| {
        fail(format!(
            "ctx.limits.{key} must be a whole number from 0 to {max}, not {}",
            v.to_string().unwrap_or_else(|_| v.type_name().into())
        ))
    })
}

/// `ctx.limits` as the script left it (nil: none set).
///
/// # Errors
/// A value out of range, an unknown key or eviction.
pub(crate) fn limits(v: Value) -> mlua::Result<AorPolicy> {
    let t = match v {
        Value::Nil => return Ok(AorPolicy::default()),
        Value::Table(t) => t,
        other => {
            return Err(fail(format!(
                "ctx.limits must be a table, not {}",
                other.type_name()
            )));
        }
    };
    let mut p = AorPolicy::default();
    for pair in t.pairs::<Value, Value>() {
        let (key, value) = pair?;
        let key = match &key {
            Value::String(k) => k.to_string_lossy(),
            other => return Err(fail(format!("ctx.limits has a {} key", other.type_name()))),
        };
        let seconds = u64::from(u32::MAX);
        match key.as_str() {
            "max_contacts" => match whole(&key, &value, 10_000)? {
                0 => return Err(fail("ctx.limits.max_contacts must be at least 1".into())),
                n => p.max_contacts = Some(n as usize),
            },
            "min_expires" => p.min_expires = Some(whole(&key, &value, seconds)? as u32),
            "max_expires" => p.max_expires = Some(whole(&key, &value, seconds)? as u32),
            "evict" => {
                let name = value.to_string().unwrap_or_default();
                p.evict = Some(Evict::parse(&name).ok_or_else(|| {
                    fail(format!(
                        "ctx.limits.evict must be \"oldest\", \"lowest_q\" or \"refuse\", not \"{name}\""
                    ))
                })?);
            }
            other => {
                return Err(fail(format!(
                    "ctx.limits has `{other}`; expected max_contacts, min_expires, max_expires or evict"
                )));
            }
        }
    }
    Ok(p)
}

/// `ctx.reply_headers` as the script left it (nil: none).
///
/// # Errors
/// A header a hook may not add, or a value that is not text.
pub(crate) fn reply_headers(v: Value) -> mlua::Result<Vec<(String, String)>> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Table(t) => super::decision::header_table(&t, 200)
            .map_err(|e| fail(format!("ctx.reply_headers: {e}"))),
        other => Err(fail(format!(
            "ctx.reply_headers must be a table, not {}",
            other.type_name()
        ))),
    }
}
