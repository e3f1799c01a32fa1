//! The hooks' key-value store (`sip.kv`) in Redis, so that every node sees the same counters
//! and flags (a lockout counted on one node holds on the others). A key is
//! `<prefix>:kv:<key>`; an integer is stored as Redis's own integer text (so `INCRBY`
//! counts it), other values as `b:`, `n:` or `s:` text; expiry is Redis's.

use super::Redis;
use crate::kv::{KvError, KvStore, KvValue, Ttl};
use std::sync::Arc;

/// `sip.kv` in Redis.
pub struct RedisKv {
    redis: Arc<Redis>,
    prefix: String,
    incr: redis::Script,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn encode(v: &KvValue) -> String {
    match v {
        KvValue::Int(n) => n.to_string(),
        KvValue::Bool(b) => format!("b:{}", u8::from(*b)),
        KvValue::Num(n) => format!("n:{n}"),
        KvValue::Str(s) => format!("s:{s}"),
    }
}

fn decode(text: &str) -> Option<KvValue> {
    match text.split_once(':') {
        None => text.parse().ok().map(KvValue::Int),
        Some(("b", v)) => Some(KvValue::Bool(v == "1")),
        Some(("n", v)) => v.parse().ok().map(KvValue::Num),
        Some(("s", v)) => Some(KvValue::Str(v.to_owned())),
        Some(_) => None,
    }
}

/// Milliseconds of a ttl in seconds; `Some(0)` when it is up already.
fn ttl_ms(ttl_s: Ttl) -> Option<u64> {
    ttl_s.map(|t| {
        if t.is_finite() && t > 0.0 {
            ((t * 1000.0) as u64).max(1)
        } else {
            0
        }
    })
}

fn unavailable(e: crate::store::StoreError) -> KvError {
    KvError::Unavailable(e.0)
}

impl RedisKv {
    /// The store under `prefix` (`<prefix>:kv:...`).
    pub fn new(redis: Arc<Redis>, prefix: &str) -> RedisKv {
        RedisKv {
            redis,
            prefix: format!("{prefix}:kv:"),
            incr: redis::Script::new(include_str!("incr.lua")),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

impl KvStore for RedisKv {
    fn get(&self, key: &str, _now_ms: u64) -> Result<Option<KvValue>, KvError> {
        let k = self.key(key);
        let v: Option<String> = self
            .redis
            .run(|c| redis::cmd("GET").arg(&k).query(c))
            .map_err(unavailable)?;
        Ok(v.as_deref().and_then(decode))
    }

    fn set(&self, key: &str, value: KvValue, ttl_s: Ttl, now_ms: u64) -> Result<(), KvError> {
        let k = self.key(key);
        match ttl_ms(ttl_s) {
            Some(0) => self.delete(key, now_ms).map(|_| ()),
            Some(ms) => self
                .redis
                .run(|c| {
                    redis::cmd("SET")
                        .arg(&k)
                        .arg(encode(&value))
                        .arg("PX")
                        .arg(ms)
                        .query(c)
                })
                .map_err(unavailable),
            None => self
                .redis
                .run(|c| redis::cmd("SET").arg(&k).arg(encode(&value)).query(c))
                .map_err(unavailable),
        }
    }

    fn incr(&self, key: &str, by: i64, ttl_s: Ttl, _now_ms: u64) -> Result<i64, KvError> {
        let mut call = self.incr.key(self.key(key));
        call.arg(by).arg(ttl_ms(ttl_s).unwrap_or(0));
        let reply: redis::Value = self.redis.run(|c| call.invoke(c)).map_err(unavailable)?;
        match reply {
            redis::Value::Int(n) => Ok(n),
            _ => Err(KvError::NotInteger(key.to_owned())),
        }
    }

    fn delete(&self, key: &str, _now_ms: u64) -> Result<bool, KvError> {
        let k = self.key(key);
        let n: u64 = self
            .redis
            .run(|c| redis::cmd("DEL").arg(&k).query(c))
            .map_err(unavailable)?;
        Ok(n > 0)
    }

    /// Redis expires keys itself.
    fn purge(&self, _now_ms: u64) -> usize {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_type_through_their_text() {
        for v in [
            KvValue::Int(-42),
            KvValue::Bool(true),
            KvValue::Bool(false),
            KvValue::Num(2.5),
            KvValue::Str("a:b c".into()),
        ] {
            assert_eq!(decode(&encode(&v)), Some(v));
        }
        assert_eq!(ttl_ms(Some(0.0001)), Some(1));
        assert_eq!(ttl_ms(Some(-1.0)), Some(0));
        assert_eq!(ttl_ms(None), None);
    }
}
