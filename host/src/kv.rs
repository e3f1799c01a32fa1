//! A shared key-value store with expiry, for policy counters and flags (Lua's `sip.kv`,
//! the plugins' `kv_*`): the [`KvStore`] trait, and [`Kv`], the one in memory. With a
//! Redis location store the hooks get `store::redis::RedisKv` instead, shared by every node.
//!
//! [`Kv`]: one store per process, shared by every hook implementation and every Lua state. Keys
//! are spread over shards, each behind its own lock, and each shard keeps an ordered index
//! of expiry times, so `purge` (called by the server's timer) pops due keys from the front
//! and never scans the whole store. A key past its expiry reads as absent even before the
//! purge.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

const SHARDS: usize = 16;

/// How long a key lives, in seconds (`None`: until it is deleted).
pub type Ttl = Option<f64>;

/// The most keys the store holds; `set` of a new key beyond it is refused.
pub const MAX_KEYS: usize = 1_000_000;

/// A stored value: the plugin API's definition, the one scripts and plugins see.
pub use plugin_api::KvValue;

#[derive(Debug)]
struct Entry {
    value: KvValue,
    /// Milliseconds since the epoch; `u64::MAX` never expires.
    expires_at: u64,
    seq: u64,
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<String, Entry>,
    expiry: BTreeMap<(u64, u64), String>,
    seq: u64,
}

impl Shard {
    fn live(&self, key: &str, now_ms: u64) -> Option<&Entry> {
        self.map.get(key).filter(|e| e.expires_at > now_ms)
    }

    fn remove(&mut self, key: &str) -> Option<Entry> {
        let e = self.map.remove(key)?;
        if e.expires_at != u64::MAX {
            self.expiry.remove(&(e.expires_at, e.seq));
        }
        Some(e)
    }

    fn insert(&mut self, key: &str, value: KvValue, expires_at: u64) {
        self.remove(key);
        self.seq += 1;
        if expires_at != u64::MAX {
            self.expiry.insert((expires_at, self.seq), key.to_owned());
        }
        self.map.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at,
                seq: self.seq,
            },
        );
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("the store holds {MAX_KEYS} keys already")]
    Full,
    #[error("the value of \"{0}\" is not an integer")]
    NotInteger(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Over what one hook implementation may hold (`kv_quota.rs`).
    #[error("over quota: {0}")]
    Quota(String),
}

/// A key-value store with expiry.
pub trait KvStore: Send + Sync + std::fmt::Debug {
    /// The value of a live key.
    ///
    /// # Errors
    /// [`KvError::Unavailable`].
    fn get(&self, key: &str, now_ms: u64) -> Result<Option<KvValue>, KvError>;

    /// Sets a key, expiring after `ttl_s` seconds (never when `None`).
    ///
    /// # Errors
    /// [`KvError::Full`], [`KvError::Unavailable`].
    fn set(&self, key: &str, value: KvValue, ttl_s: Ttl, now_ms: u64) -> Result<(), KvError>;

    /// Adds `by` to an integer key and returns the new value. A missing or expired key
    /// starts at 0 and gets `ttl_s`; an existing key keeps its expiry (a fixed window).
    ///
    /// # Errors
    /// [`KvError::NotInteger`], [`KvError::Full`], [`KvError::Unavailable`].
    fn incr(&self, key: &str, by: i64, ttl_s: Ttl, now_ms: u64) -> Result<i64, KvError>;

    /// Removes a key; whether it was live.
    ///
    /// # Errors
    /// [`KvError::Unavailable`].
    fn delete(&self, key: &str, now_ms: u64) -> Result<bool, KvError>;

    /// Removes the keys whose time is up (the server's timer calls it); how many.
    fn purge(&self, now_ms: u64) -> usize;

    /// Writes refused as over quota (a store seen through a quota; else 0).
    fn refused(&self) -> u64 {
        0
    }
}

impl KvStore for Kv {
    fn get(&self, key: &str, now_ms: u64) -> Result<Option<KvValue>, KvError> {
        Ok(Kv::get(self, key, now_ms))
    }

    fn set(&self, key: &str, value: KvValue, ttl_s: Ttl, now_ms: u64) -> Result<(), KvError> {
        Kv::set(self, key, value, ttl_s, now_ms)
    }

    fn incr(&self, key: &str, by: i64, ttl_s: Ttl, now_ms: u64) -> Result<i64, KvError> {
        Kv::incr(self, key, by, ttl_s, now_ms)
    }

    fn delete(&self, key: &str, now_ms: u64) -> Result<bool, KvError> {
        Ok(Kv::delete(self, key, now_ms))
    }

    fn purge(&self, now_ms: u64) -> usize {
        Kv::purge(self, now_ms)
    }
}

/// The store.
#[derive(Debug)]
pub struct Kv {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    len: std::sync::atomic::AtomicUsize,
}

impl Default for Kv {
    fn default() -> Self {
        Kv::new()
    }
}

fn deadline(now_ms: u64, ttl_s: Ttl) -> u64 {
    match ttl_s {
        Some(t) if t.is_finite() && t > 0.0 => now_ms.saturating_add((t * 1000.0) as u64),
        Some(_) => now_ms, // zero or negative: already expired
        None => u64::MAX,
    }
}

impl Kv {
    /// An empty store.
    pub fn new() -> Kv {
        Kv {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            len: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    fn count(&self, before: usize, after: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        if after > before {
            self.len.fetch_add(after - before, Relaxed);
        } else {
            self.len.fetch_sub(before - after, Relaxed);
        }
    }

    /// The value of a live key.
    pub fn get(&self, key: &str, now_ms: u64) -> Option<KvValue> {
        self.shard(key)
            .lock()
            .live(key, now_ms)
            .map(|e| e.value.clone())
    }

    /// Sets a key, expiring after `ttl_s` seconds (never when `None`).
    ///
    /// # Errors
    /// [`KvError::Full`] for a new key when the store holds [`MAX_KEYS`].
    pub fn set(&self, key: &str, value: KvValue, ttl_s: Ttl, now_ms: u64) -> Result<(), KvError> {
        let mut s = self.shard(key).lock();
        let before = s.map.len();
        if !s.map.contains_key(key) && self.len() >= MAX_KEYS {
            return Err(KvError::Full);
        }
        s.insert(key, value, deadline(now_ms, ttl_s));
        let after = s.map.len();
        drop(s);
        self.count(before, after);
        Ok(())
    }

    /// Adds `by` to an integer key and returns the new value. A missing or expired key
    /// starts at 0 and gets `ttl_s`; an existing key keeps its expiry (a fixed window).
    ///
    /// # Errors
    /// [`KvError::NotInteger`] when the key holds another type, [`KvError::Full`].
    pub fn incr(&self, key: &str, by: i64, ttl_s: Ttl, now_ms: u64) -> Result<i64, KvError> {
        let mut s = self.shard(key).lock();
        let before = s.map.len();
        if let Some(e) = s.map.get_mut(key).filter(|e| e.expires_at > now_ms) {
            let KvValue::Int(n) = &mut e.value else {
                return Err(KvError::NotInteger(key.to_owned()));
            };
            *n = n.saturating_add(by);
            return Ok(*n);
        }
        if !s.map.contains_key(key) && self.len() >= MAX_KEYS {
            return Err(KvError::Full);
        }
        s.insert(key, KvValue::Int(by), deadline(now_ms, ttl_s));
        let after = s.map.len();
        drop(s);
        self.count(before, after);
        Ok(by)
    }

    /// Removes a key; whether it was live.
    pub fn delete(&self, key: &str, now_ms: u64) -> bool {
        let mut s = self.shard(key).lock();
        let before = s.map.len();
        let was = s.remove(key).is_some_and(|e| e.expires_at > now_ms);
        let after = s.map.len();
        drop(s);
        self.count(before, after);
        was
    }

    /// Keys held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.len.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the keys whose time is up; how many.
    pub fn purge(&self, now_ms: u64) -> usize {
        let mut n = 0;
        for shard in &self.shards {
            let mut s = shard.lock();
            while let Some(entry) = s.expiry.first_entry() {
                if entry.key().0 > now_ms {
                    break;
                }
                let key = entry.remove();
                s.map.remove(&key);
                n += 1;
            }
        }
        self.len.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_expire_purge() {
        let kv = Kv::new();
        kv.set("a", KvValue::Str("x".into()), Some(1.0), 1000)
            .unwrap();
        kv.set("b", KvValue::Bool(true), None, 1000).unwrap();
        assert_eq!(kv.get("a", 1999), Some(KvValue::Str("x".into())));
        assert_eq!(kv.get("a", 2000), None);
        assert_eq!(kv.len(), 2);
        assert_eq!(kv.purge(2000), 1);
        assert_eq!(kv.len(), 1);
        assert_eq!(kv.get("b", u64::MAX - 1), Some(KvValue::Bool(true)));
        assert!(kv.delete("b", 0));
        assert!(kv.is_empty());
    }

    #[test]
    fn incr_is_a_fixed_window() {
        let kv = Kv::new();
        assert_eq!(kv.incr("n", 1, Some(10.0), 0), Ok(1));
        assert_eq!(kv.incr("n", 2, Some(10.0), 9_000), Ok(3));
        assert_eq!(kv.incr("n", 1, Some(10.0), 10_000), Ok(1));
        kv.set("s", KvValue::Str("x".into()), None, 0).unwrap();
        assert_eq!(
            kv.incr("s", 1, None, 0),
            Err(KvError::NotInteger("s".into()))
        );
        // a re-set key leaves no stale index entry behind
        kv.set("n", KvValue::Int(5), Some(100.0), 10_000).unwrap();
        assert_eq!(kv.purge(20_000), 0);
        assert_eq!(kv.get("n", 20_000), Some(KvValue::Int(5)));
    }
}
