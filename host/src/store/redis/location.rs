//! Bindings in Redis. An AOR is a hash (`<prefix>:aor:<aor>`, field: registration id,
//! value: the binding as JSON); `<prefix>:due` orders every binding by expiry time. An
//! update runs `update.lua` on the server: RFC 3261 section 10.3 step 7, `max_contacts`,
//! upsert and prune, atomic per AOR whatever the number of nodes. Redis's own expiry
//! removes an AOR once its last binding is past due plus [`GRACE_MS`]; within that time a
//! node's timer claims due bindings with `expire.lua`, which hands each to one node only,
//! so each expiry is reported once.

use super::Redis;
use crate::store::{
    Applied, Binding, Event, ExpireReason, LocationStore, StoreError, Update, UpdateError,
};
use std::sync::Arc;
use uuid::Uuid;

/// How long an AOR outlives its last binding's expiry in Redis: the time the nodes have to
/// claim and report it (with every node down longer, Redis drops it unreported).
pub const GRACE_MS: u64 = 3_600_000;

/// The most bindings one expiry run claims.
const CLAIM: usize = 1000;

/// The location store in Redis.
pub struct RedisLocation {
    redis: Arc<Redis>,
    aor_prefix: String,
    due: String,
    update: redis::Script,
    expire: redis::Script,
    remove: redis::Script,
}

impl std::fmt::Debug for RedisLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLocation")
            .field("redis", &self.redis)
            .field("aor_prefix", &self.aor_prefix)
            .finish()
    }
}

fn decode(json: &str) -> Result<Binding, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError(format!("a binding in Redis: {e}: {json}")))
}

/// `s` with Redis's glob characters escaped, to match it literally in SCAN.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

impl RedisLocation {
    /// The store under `prefix` (`<prefix>:aor:...`, `<prefix>:due`).
    pub fn new(redis: Arc<Redis>, prefix: &str) -> RedisLocation {
        RedisLocation {
            redis,
            aor_prefix: format!("{prefix}:aor:"),
            due: format!("{prefix}:due"),
            update: redis::Script::new(include_str!("update.lua")),
            expire: redis::Script::new(include_str!("expire.lua")),
            remove: redis::Script::new(include_str!("remove.lua")),
        }
    }

    fn key(&self, aor: &str) -> String {
        format!("{}{aor}", self.aor_prefix)
    }

    fn applied(reply: &redis::Value) -> Result<Applied, UpdateError> {
        let bad = |what: &str| {
            tracing::error!(target: "sipreg::store", reply = ?reply, "unexpected answer of update.lua: {what}");
            UpdateError::Unavailable
        };
        let redis::Value::Array(parts) = reply else {
            return Err(bad("not a list"));
        };
        let text = |v: &redis::Value| -> Option<String> { redis::from_redis_value_ref(v).ok() };
        match parts.first().and_then(text).as_deref() {
            Some("too_many") => return Err(UpdateError::TooManyContacts),
            Some("out_of_order") => return Err(UpdateError::OutOfOrder),
            Some("ok") => {}
            _ => return Err(bad("no status")),
        }
        let list = |i: usize| -> Result<Vec<String>, UpdateError> {
            parts
                .get(i)
                .and_then(|v| redis::from_redis_value_ref::<Vec<String>>(v).ok())
                .ok_or_else(|| bad("no list"))
        };
        let decoded = |json: &str| decode(json).map_err(|e| bad(&e.0));
        let bindings = list(1)?
            .iter()
            .map(|j| decoded(j))
            .collect::<Result<Vec<_>, _>>()?;
        let raw = list(2)?;
        let mut events = Vec::with_capacity(raw.len() / 2);
        for pair in raw.chunks_exact(2) {
            let b = decoded(&pair[1])?;
            events.push(match pair[0].as_str() {
                "added" => Event::Added(b),
                "refreshed" => Event::Refreshed(b),
                "evicted" => Event::Removed(b, ExpireReason::Evicted),
                _ => Event::Removed(b, ExpireReason::Unregistered),
            });
        }
        Ok(Applied {
            bindings,
            events,
            durable: None,
        })
    }
}

impl LocationStore for RedisLocation {
    fn lookup(&self, aor: &str, now_ms: u64) -> Result<Vec<Binding>, StoreError> {
        let key = self.key(aor);
        let values: Vec<String> = self.redis.run(|c| redis::cmd("HVALS").arg(&key).query(c))?;
        let mut out = Vec::with_capacity(values.len());
        for v in &values {
            let b = decode(v)?;
            if b.expires_at_ms > now_ms {
                out.push(b);
            }
        }
        out.sort_by_key(|b| b.refreshed_ms);
        Ok(out)
    }

    fn update(&self, aor: &str, u: &Update<'_>) -> Result<Applied, UpdateError> {
        let mut call = self.update.key(self.key(aor));
        call.key(&self.due)
            .arg(u.now_ms)
            .arg(u.max_contacts)
            .arg(flag(u.remove_all))
            .arg(u.call_id)
            .arg(u.cseq)
            .arg(u.branch.to_string())
            .arg(u.source.to_string())
            .arg(u.transport.via_token().to_ascii_lowercase())
            .arg(u.path.unwrap_or(""))
            .arg(GRACE_MS)
            .arg(aor);
        for c in &u.changes {
            call.arg(c.contact)
                .arg(c.key)
                .arg(c.expires)
                .arg(c.q.map(|q| q.to_string()).unwrap_or_default())
                .arg(c.instance.unwrap_or(""))
                .arg(c.reg_id.unwrap_or(""))
                .arg(flag(c.natted))
                .arg(c.registration_id.to_string());
        }
        let reply: redis::Value = self
            .redis
            .run(|c| call.invoke(c))
            .map_err(|_| UpdateError::Unavailable)?;
        Self::applied(&reply)
    }

    fn remove(&self, aor: &str, registration_id: &Uuid) -> Result<Option<Binding>, StoreError> {
        let mut call = self.remove.key(self.key(aor));
        call.key(&self.due)
            .arg(aor)
            .arg(registration_id.to_string());
        let json: Option<String> = self.redis.run(|c| call.invoke(c))?;
        json.as_deref().map(decode).transpose()
    }

    fn expire_due(&self, now_ms: u64) -> Vec<(Arc<str>, Binding)> {
        let mut out = Vec::new();
        loop {
            let mut call = self.expire.key(&self.due);
            call.arg(now_ms).arg(CLAIM).arg(&self.aor_prefix);
            let claimed: Vec<String> = match self.redis.run(|c| call.invoke(c)) {
                Ok(v) => v,
                Err(_) => break, // logged by the pool; the next tick claims them
            };
            for pair in claimed.chunks_exact(2) {
                match decode(&pair[1]) {
                    Ok(b) => out.push((Arc::from(pair[0].as_str()), b)),
                    Err(e) => {
                        tracing::error!(target: "sipreg::store", error = %e, "expired binding unreadable")
                    }
                }
            }
            if claimed.len() < CLAIM * 2 {
                break;
            }
        }
        out
    }

    fn scan(&self, now_ms: u64, visit: &mut dyn FnMut(&str, &Binding)) -> Result<(), StoreError> {
        let pattern = format!("{}*", glob_escape(&self.aor_prefix));
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = self.redis.run(|c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query(c)
            })?;
            if !keys.is_empty() {
                let values: Vec<Vec<String>> = self.redis.run(|c| {
                    let mut pipe = redis::pipe();
                    for k in &keys {
                        pipe.cmd("HVALS").arg(k);
                    }
                    pipe.query(c)
                })?;
                for (key, list) in keys.iter().zip(&values) {
                    let aor = &key[self.aor_prefix.len()..];
                    for json in list {
                        let b = decode(json)?;
                        if b.expires_at_ms > now_ms {
                            visit(aor, &b);
                        }
                    }
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    fn count(&self) -> Result<usize, StoreError> {
        self.redis
            .run(|c| redis::cmd("ZCARD").arg(&self.due).query(c))
    }
}
