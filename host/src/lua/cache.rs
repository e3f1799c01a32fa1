//! `sip.cache`: a script's own cache in the server's memory (every state of the script
//! shares it; other scripts and other nodes do not see it), for answers of outside
//! services: each entry lives its TTL, a `false` stored for a negative answer ("no such
//! user") lives its own (shorter) one. At most so many entries; a full cache drops what
//! expired, then what expires soonest. A reload empties it.

use super::convert;
use super::functions::{now_ms, ret};
use crate::kv::KvValue;
use mlua::{Lua, MultiValue, Value};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// The longest key, in bytes.
const MAX_KEY: usize = 1024;
/// The largest value (a string), in bytes.
const MAX_VALUE: usize = 64 << 10;

/// One script's cache (Lua app data, as `Arc<Cache>`).
#[derive(Debug)]
pub(crate) struct Cache {
    entries: Mutex<HashMap<String, (KvValue, u64)>>,
    capacity: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value of `key` at `now_ms`, unless it expired.
    pub fn get(&self, key: &str, now_ms: u64) -> Option<KvValue> {
        let mut entries = self.entries.lock();
        match entries.get(key) {
            Some((v, until)) if *until > now_ms => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` under `key` until `until_ms`; a full cache makes room first.
    pub fn set(&self, key: &str, value: KvValue, until_ms: u64, now_ms: u64) {
        let mut entries = self.entries.lock();
        if self.capacity == 0 {
            return;
        }
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.retain(|_, (_, until)| *until > now_ms);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, (_, until))| *until)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(key.to_owned(), (value, until_ms));
    }

    pub fn delete(&self, key: &str) -> bool {
        self.entries.lock().remove(key).is_some()
    }

    /// Empties the cache (a reload).
    pub fn clear(&self) {
        self.entries.lock().clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

fn err(message: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(message.into())
}

fn cache(lua: &Lua) -> mlua::Result<Arc<Cache>> {
    lua.app_data_ref::<Arc<Cache>>()
        .map(|c| Arc::clone(&c))
        .ok_or_else(|| err("sip.cache: this state has no cache"))
}

fn key(k: String) -> mlua::Result<String> {
    if k.len() > MAX_KEY {
        return Err(err(format!("sip.cache: a key is at most {MAX_KEY} bytes")));
    }
    Ok(k)
}

/// `sip.cache.get(key) -> value | nil`.
pub(super) fn get(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (k,): (String,) = lua.unpack_multi(args)?;
    match cache(lua)?.get(&key(k)?, now_ms(lua)) {
        Some(v) => ret(lua, convert::kv_to_lua(lua, &v)?),
        None => ret(lua, Value::Nil),
    }
}

/// `sip.cache.set(key, value, ttl)`: `nil` deletes.
pub(super) fn set(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let (k, value, ttl): (String, Value, Option<f64>) = lua.unpack_multi(args)?;
    let k = key(k)?;
    let c = cache(lua)?;
    if value.is_nil() {
        c.delete(&k);
        return ret(lua, ());
    }
    let Some(ttl) = ttl.filter(|t| t.is_finite() && *t > 0.0) else {
        return Err(err("sip.cache.set: ttl must be a number of seconds > 0"));
    };
    let v = convert::lua_to_kv(&value).ok_or_else(|| {
        err(format!(
            "sip.cache.set: a {} cannot be cached; use strings, numbers and booleans",
            value.type_name()
        ))
    })?;
    if let KvValue::Str(s) = &v
        && s.len() > MAX_VALUE
    {
        return Err(err(format!(
            "sip.cache.set: a value is at most {MAX_VALUE} bytes"
        )));
    }
    let now = now_ms(lua);
    let until = now.saturating_add((ttl * 1000.0).min(u64::MAX as f64 / 2.0) as u64);
    c.set(&k, v, until, now);
    ret(lua, ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_a_full_cache_drops_the_soonest() {
        let c = Cache::new(2);
        c.set("a", KvValue::Str("1".into()), 1_000, 0);
        c.set("b", KvValue::Bool(false), 500, 0);
        assert_eq!(c.get("a", 999), Some(KvValue::Str("1".into())));
        assert_eq!(c.get("b", 499), Some(KvValue::Bool(false)));
        assert_eq!(c.get("b", 500), None);
        c.set("b", KvValue::Bool(false), 2_000, 600);
        c.set("c", KvValue::Int(3), 3_000, 700);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a", 700), None, "the soonest to expire made room");
        assert_eq!(c.get("c", 700), Some(KvValue::Int(3)));
        c.clear();
        assert_eq!(c.len(), 0);
    }
}
