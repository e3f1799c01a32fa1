//! Bindings in Redis, under the rules every store follows ([`crate::store::rules`]), run on
//! the node. An AOR is a hash (field: registration id, value: the binding as JSON; field
//! `_v`: its version). AORs are spread over [`BUCKETS`] buckets by a CRC-32 of the AOR;
//! each bucket has its own expiry set, and every key of a bucket carries the bucket's hash
//! tag (`<prefix>:{b17}:aor:<aor>`, `<prefix>:{b17}:due`), so everything one AOR touches
//! lives in one Redis Cluster slot.
//!
//! An update reads the AOR (`HGETALL`), applies the REGISTER to it, and writes the result
//! back with `write.lua`, which checks that the version is still the one read (a
//! compare-and-swap; on a conflict the node reads and applies again). Redis's own expiry
//! removes an AOR once its last binding is past due plus [`GRACE_MS`]; within that time a
//! node's timer claims due bindings with `expire.lua`, which hands each to one node only,
//! so each expiry is reported once.

use super::Redis;
use crate::store::rules::{self, Effects};
use crate::store::{Applied, Binding, LocationStore, StoreError, Update, UpdateError};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// How long an AOR outlives its last binding's expiry in Redis: the time the nodes have to
/// claim and report it (with every node down longer, Redis drops it unreported).
pub const GRACE_MS: u64 = 3_600_000;

/// How many buckets the AORs are spread over (each one Redis Cluster slot).
pub const BUCKETS: u32 = 64;

/// The most bindings one expiry run claims per bucket.
const CLAIM: usize = 1000;

/// How often an update is computed again when other nodes keep writing the AOR (after a
/// conflict, each waits a random while, longer each time: 50 us to 6.4 ms at most).
const ATTEMPTS: u32 = 32;

/// The field of an AOR's hash that holds its version.
const VERSION: &str = "_v";

/// The location store in Redis.
pub struct RedisLocation {
    redis: Arc<Redis>,
    prefix: String,
    write: redis::Script,
    expire: redis::Script,
    remove: redis::Script,
    migrate: redis::Script,
}

impl std::fmt::Debug for RedisLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLocation")
            .field("redis", &self.redis)
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn decode(json: &str) -> Result<Binding, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError(format!("a binding in Redis: {e}: {json}")))
}

fn encode(b: &Binding) -> String {
    serde_json::to_string(b).unwrap_or_default()
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

/// The bucket of an AOR: the same on every node and in every version.
pub fn bucket(aor: &str) -> u32 {
    crc32fast::hash(aor.as_bytes()) % BUCKETS
}

/// What an update changed beside the list: the bindings to write and to delete.
#[derive(Default)]
struct Written {
    written: HashSet<Uuid>,
    dropped: Vec<Uuid>,
}

impl Effects for Written {
    fn written(&mut self, b: &mut Binding, _existed: bool) {
        self.written.insert(b.registration_id);
    }

    fn dropped(&mut self, b: &Binding) {
        self.dropped.push(b.registration_id);
    }
}

/// An AOR as read: its bindings (those past their time included), least recently written
/// first, and its version.
struct Read {
    bindings: Vec<Binding>,
    version: String,
}

impl RedisLocation {
    /// The store under `prefix` (`<prefix>:{b<n>}:aor:...`, `<prefix>:{b<n>}:due`).
    pub fn new(redis: Arc<Redis>, prefix: &str) -> RedisLocation {
        RedisLocation {
            redis,
            prefix: prefix.to_owned(),
            write: redis::Script::new(include_str!("write.lua")),
            expire: redis::Script::new(include_str!("expire.lua")),
            remove: redis::Script::new(include_str!("remove.lua")),
            migrate: redis::Script::new(include_str!("migrate.lua")),
        }
    }

    /// Moves the AORs of the layout before buckets (`<prefix>:aor:<aor>` and one
    /// `<prefix>:due`, written by sipreg before AORs were bucketed) into their buckets,
    /// so that an upgrade loses no binding; how many bindings moved. Each AOR moves in one
    /// script; run at start, on any number of nodes at once.
    ///
    /// # Errors
    /// Redis cannot answer (what moved before stays moved).
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let old_prefix = format!("{}:aor:", self.prefix);
        let old_due = format!("{}:due", self.prefix);
        let pattern = format!("{}*", glob_escape(&old_prefix));
        let mut moved = 0;
        self.each_key(&pattern, |keys| {
            for old in keys {
                let aor = &old[old_prefix.len()..];
                let mut call = self.migrate.key(old);
                call.key(self.key(aor))
                    .key(self.due_key(aor))
                    .key(&old_due)
                    .arg(aor)
                    .arg(GRACE_MS);
                let n: usize = self.redis.run(|c| call.invoke(c))?;
                moved += n;
            }
            Ok(())
        })?;
        // What is left of the old expiry set names bindings Redis already dropped.
        self.redis
            .run(|c| redis::cmd("DEL").arg(&old_due).query::<()>(c))?;
        Ok(moved)
    }

    /// The prefix of the AOR keys of bucket `n`.
    fn aor_prefix(&self, n: u32) -> String {
        format!("{}:{{b{n}}}:aor:", self.prefix)
    }

    /// The key of an AOR's hash.
    pub fn key(&self, aor: &str) -> String {
        format!("{}{aor}", self.aor_prefix(bucket(aor)))
    }

    /// The expiry set of an AOR's bucket.
    pub fn due_key(&self, aor: &str) -> String {
        self.due(bucket(aor))
    }

    fn due(&self, n: u32) -> String {
        format!("{}:{{b{n}}}:due", self.prefix)
    }

    /// Calls `each` with every batch of the keys that match `pattern` (a `SCAN`: keys
    /// written meanwhile may or may not be seen), batches that are not empty.
    fn each_key(
        &self,
        pattern: &str,
        mut each: impl FnMut(&[String]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = self.redis.run(|c| {
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query(c)
            })?;
            if !keys.is_empty() {
                each(&keys)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// The AOR's fields, decoded (the version apart).
    fn decode_fields(fields: Vec<(String, String)>) -> Result<Read, StoreError> {
        let mut bindings = Vec::with_capacity(fields.len());
        let mut version = String::new();
        for (field, value) in fields {
            if field == VERSION {
                version = value;
            } else {
                bindings.push(decode(&value)?);
            }
        }
        bindings.sort_by(|a, b| {
            (a.refreshed_ms, a.registration_id).cmp(&(b.refreshed_ms, b.registration_id))
        });
        Ok(Read { bindings, version })
    }

    fn read(&self, key: &str) -> Result<Read, StoreError> {
        let fields: Vec<(String, String)> = self
            .redis
            .run(|c| redis::cmd("HGETALL").arg(key).query(c))?;
        Self::decode_fields(fields)
    }

    /// One attempt: read, apply, write back if nobody wrote meanwhile (`None`: somebody
    /// did).
    fn attempt(
        &self,
        aor: &str,
        key: &str,
        u: &Update<'_>,
    ) -> Result<Option<Applied>, UpdateError> {
        let Read {
            mut bindings,
            version,
        } = self.read(key).map_err(|_| UpdateError::Unavailable)?;
        let mut effects = Written::default();
        let outcome = rules::apply(&mut bindings, u, &mut effects)?;
        let applied = Applied {
            bindings,
            events: outcome.events,
            durable: None,
        };
        if effects.written.is_empty() && effects.dropped.is_empty() {
            return Ok(Some(applied)); // a retransmission, or nothing to do
        }
        let latest = applied.bindings.iter().map(|b| b.expires_at_ms).max();
        let mut call = self.write.key(key);
        call.key(self.due_key(aor))
            .arg(&version)
            .arg(aor)
            .arg(GRACE_MS)
            .arg(latest.unwrap_or(0))
            .arg(effects.written.len());
        for b in applied
            .bindings
            .iter()
            .filter(|b| effects.written.contains(&b.registration_id))
        {
            call.arg(b.registration_id.to_string())
                .arg(b.expires_at_ms)
                .arg(encode(b));
        }
        for id in &effects.dropped {
            call.arg(id.to_string());
        }
        let answer: String = self
            .redis
            .run(|c| call.invoke(c))
            .map_err(|_| UpdateError::Unavailable)?;
        Ok((answer == "ok").then_some(applied))
    }
}

impl LocationStore for RedisLocation {
    fn lookup(&self, aor: &str, now_ms: u64) -> Result<Vec<Binding>, StoreError> {
        let mut read = self.read(&self.key(aor))?;
        read.bindings.retain(|b| b.expires_at_ms > now_ms);
        Ok(read.bindings)
    }

    fn update(&self, aor: &str, u: &Update<'_>) -> Result<Applied, UpdateError> {
        let key = self.key(aor);
        for n in 0..ATTEMPTS {
            if let Some(applied) = self.attempt(aor, &key, u)? {
                return Ok(applied);
            }
            let most_us = 50u64 << n.min(7);
            std::thread::sleep(std::time::Duration::from_micros(rand::random_range(
                0..=most_us,
            )));
        }
        tracing::warn!(target: "sipreg::store", alias = aor, attempts = ATTEMPTS, "AOR written by other nodes at every attempt; REGISTER answered 503");
        Err(UpdateError::Unavailable)
    }

    fn remove(&self, aor: &str, registration_id: &Uuid) -> Result<Option<Binding>, StoreError> {
        let mut call = self.remove.key(self.key(aor));
        call.key(self.due_key(aor))
            .arg(aor)
            .arg(registration_id.to_string());
        let json: Option<String> = self.redis.run(|c| call.invoke(c))?;
        json.as_deref().map(decode).transpose()
    }

    fn expire_due(&self, now_ms: u64) -> Vec<(Arc<str>, Binding)> {
        let mut out = Vec::new();
        for n in 0..BUCKETS {
            let (due, prefix) = (self.due(n), self.aor_prefix(n));
            loop {
                let mut call = self.expire.key(&due);
                call.arg(now_ms).arg(CLAIM).arg(&prefix);
                let claimed: Vec<String> = match self.redis.run(|c| call.invoke(c)) {
                    Ok(v) => v,
                    Err(_) => return out, // logged by the pool; the next tick claims them
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
        }
        out
    }

    fn scan(&self, now_ms: u64, visit: &mut dyn FnMut(&str, &Binding)) -> Result<(), StoreError> {
        let pattern = format!("{}:{{b*}}:aor:*", glob_escape(&self.prefix));
        self.each_key(&pattern, |keys| {
            let values: Vec<Vec<(String, String)>> = self.redis.run(|c| {
                let mut pipe = redis::pipe();
                for k in keys {
                    pipe.cmd("HGETALL").arg(k);
                }
                pipe.query(c)
            })?;
            for (key, fields) in keys.iter().zip(values) {
                let Some((_, aor)) = key.split_once("}:aor:") else {
                    continue;
                };
                for b in Self::decode_fields(fields)?.bindings {
                    if b.expires_at_ms > now_ms {
                        visit(aor, &b);
                    }
                }
            }
            Ok(())
        })
    }

    fn count(&self) -> Result<usize, StoreError> {
        let counts: Vec<usize> = self.redis.run(|c| {
            let mut pipe = redis::pipe();
            for n in 0..BUCKETS {
                pipe.cmd("ZCARD").arg(self.due(n));
            }
            pipe.query(c)
        })?;
        Ok(counts.into_iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag of a key: what Redis Cluster hashes to choose its slot.
    fn tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        &key[open + 1..close]
    }

    #[test]
    fn every_key_of_an_aor_carries_its_buckets_hash_tag() {
        let redis =
            Arc::new(Redis::new("redis://127.0.0.1:1/", std::time::Duration::ZERO).unwrap());
        let store = RedisLocation::new(redis, "sipreg");
        let mut tags = HashSet::new();
        for i in 0..1000 {
            let aor = format!("user{i}@example.com");
            let (key, due) = (store.key(&aor), store.due_key(&aor));
            assert_eq!(tag(&key), tag(&due), "{key} and {due}");
            assert!(key.ends_with(&format!(":aor:{aor}")));
            tags.insert(tag(&key).to_owned());
        }
        assert_eq!(tags.len(), BUCKETS as usize, "1000 AORs fill every bucket");
        assert_eq!(bucket("alice@example.com"), bucket("alice@example.com"));
    }
}
