//! What one hook implementation may put in the shared `sip.kv` store: at most so many
//! keys, so many bytes (keys and values), and so large a value. [`Quota`] wraps the store
//! for one implementation (a Lua script, a plugin); a write over its quota is refused
//! with [`KvError::Quota`] (the script's `sip.kv.set` raises it) and counted.
//! Keys of the server's own (the guard's counts, `auth/guard.rs`) are not writable at all.
//!
//! The quota counts what its implementation wrote and has not deleted, until its expiry:
//! the entries are kept here with their size and deadline, and those past their time are
//! forgotten before each write, as the store forgets them.

use crate::kv::{KvError, KvStore, KvValue, Ttl};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The limits of one implementation (`[[hooks]]` `kv_max_keys`, `kv_max_bytes`,
/// `kv_max_value_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub keys: usize,
    pub bytes: usize,
    pub value_bytes: usize,
}

#[derive(Debug, Default)]
struct Used {
    /// Each key written: its size and when it expires (`u64::MAX`: never).
    keys: HashMap<String, (usize, u64)>,
    by_deadline: BTreeSet<(u64, String)>,
    bytes: usize,
}

impl Used {
    fn forget(&mut self, key: &str) {
        if let Some((size, deadline)) = self.keys.remove(key) {
            self.bytes -= size;
            self.by_deadline.remove(&(deadline, key.to_owned()));
        }
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some((deadline, key)) = self.by_deadline.first().cloned() {
            if deadline > now_ms {
                break;
            }
            self.forget(&key);
        }
    }
}

/// The shared store as one implementation sees it.
#[derive(Debug)]
pub struct Quota {
    inner: Arc<dyn KvStore>,
    limits: Limits,
    used: Mutex<Used>,
    refused: AtomicU64,
}

fn size_of(key: &str, value: &KvValue) -> usize {
    key.len()
        + match value {
            KvValue::Str(s) => s.len(),
            _ => 8,
        }
}

fn deadline(now_ms: u64, ttl_s: Ttl) -> u64 {
    ttl_s.map_or(u64::MAX, |t| now_ms.saturating_add((t * 1000.0) as u64))
}

impl Quota {
    pub fn new(inner: Arc<dyn KvStore>, limits: Limits) -> Quota {
        Quota {
            inner,
            limits,
            used: Mutex::new(Used::default()),
            refused: AtomicU64::new(0),
        }
    }

    fn over(&self, why: String) -> KvError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        KvError::Quota(why)
    }

    /// Refuses a write to a key of the server's own (the guard's counts).
    fn writable(&self, key: &str) -> Result<(), KvError> {
        if key.starts_with(crate::auth::guard::PREFIX) {
            return Err(self.over(format!(
                "keys starting with \"{}\" are the server's",
                crate::auth::guard::PREFIX
            )));
        }
        Ok(())
    }

    /// Takes room for `key` of `size` bytes until `until`, or says why not.
    fn admit(&self, used: &mut Used, key: &str, size: usize, until: u64) -> Result<(), KvError> {
        self.writable(key)?;
        let l = self.limits;
        if size > l.value_bytes + key.len() {
            return Err(self.over(format!(
                "a value of {} bytes is over kv_max_value_bytes ({})",
                size - key.len(),
                l.value_bytes
            )));
        }
        let before = used.keys.get(key).map_or(0, |(s, _)| *s);
        if !used.keys.contains_key(key) && used.keys.len() >= l.keys {
            return Err(self.over(format!("the script holds kv_max_keys ({}) keys", l.keys)));
        }
        if used.bytes - before + size > l.bytes {
            return Err(self.over(format!(
                "the script holds {} bytes; kv_max_bytes is {}",
                used.bytes, l.bytes
            )));
        }
        used.forget(key);
        used.keys.insert(key.to_owned(), (size, until));
        used.by_deadline.insert((until, key.to_owned()));
        used.bytes += size;
        Ok(())
    }
}

impl KvStore for Quota {
    fn get(&self, key: &str, now_ms: u64) -> Result<Option<KvValue>, KvError> {
        self.inner.get(key, now_ms)
    }

    fn set(&self, key: &str, value: KvValue, ttl_s: Ttl, now_ms: u64) -> Result<(), KvError> {
        let mut used = self.used.lock();
        used.expire(now_ms);
        self.admit(
            &mut used,
            key,
            size_of(key, &value),
            deadline(now_ms, ttl_s),
        )?;
        self.inner.set(key, value, ttl_s, now_ms)
    }

    fn incr(&self, key: &str, by: i64, ttl_s: Ttl, now_ms: u64) -> Result<i64, KvError> {
        let mut used = self.used.lock();
        used.expire(now_ms);
        // An existing key keeps its expiry (a fixed window): keep the one counted.
        let until = used
            .keys
            .get(key)
            .map_or_else(|| deadline(now_ms, ttl_s), |(_, d)| *d);
        self.admit(&mut used, key, key.len() + 8, until)?;
        self.inner.incr(key, by, ttl_s, now_ms)
    }

    fn delete(&self, key: &str, now_ms: u64) -> Result<bool, KvError> {
        self.writable(key)?;
        self.used.lock().forget(key);
        self.inner.delete(key, now_ms)
    }

    fn purge(&self, now_ms: u64) -> usize {
        self.used.lock().expire(now_ms);
        self.inner.purge(now_ms)
    }

    fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Kv;

    fn quota(keys: usize, bytes: usize, value_bytes: usize) -> Quota {
        Quota::new(
            Arc::new(Kv::new()),
            Limits {
                keys,
                bytes,
                value_bytes,
            },
        )
    }

    #[test]
    fn the_guards_keys_are_out_of_reach() {
        let q = quota(10, 1000, 100);
        let key = format!("{}192.0.2.1|alice@example.com", crate::auth::guard::PREFIX);
        assert!(matches!(
            q.set(&key, KvValue::Int(0), None, 0),
            Err(KvError::Quota(_))
        ));
        assert!(matches!(q.incr(&key, -5, None, 0), Err(KvError::Quota(_))));
        assert!(matches!(q.delete(&key, 0), Err(KvError::Quota(_))));
        assert!(q.set("guard-free", KvValue::Int(0), None, 0).is_ok());
    }

    #[test]
    fn keys_bytes_and_value_size_are_capped_and_room_comes_back() {
        let q = quota(2, 80, 50);
        let big = KvValue::Str("x".repeat(51));
        assert!(matches!(q.set("a", big, None, 0), Err(KvError::Quota(_))));
        q.set("a", KvValue::Int(1), None, 0).unwrap();
        q.set("b", KvValue::Str("y".repeat(40)), Some(10.0), 0)
            .unwrap();
        assert!(
            matches!(q.set("c", KvValue::Int(1), None, 0), Err(KvError::Quota(_))),
            "a third key"
        );
        q.set("a", KvValue::Str("z".repeat(30)), None, 0).unwrap(); // a key rewritten is no new key
        assert!(
            matches!(
                q.set("a", KvValue::Str("z".repeat(50)), None, 0),
                Err(KvError::Quota(_))
            ),
            "bytes: 41 + 51 over 80"
        );
        // b expires at 10 s: its room comes back
        q.set("c", KvValue::Int(1), None, 10_000).unwrap();
        q.delete("c", 10_000).unwrap();
        q.incr("n", 1, None, 10_000).unwrap();
        assert_eq!(q.refused(), 3);
        assert_eq!(q.get("a", 0).unwrap(), Some(KvValue::Str("z".repeat(30))));
    }
}
