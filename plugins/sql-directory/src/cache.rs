//! Answers of the database kept for a while: a subscriber for `cache_ttl` seconds, a user
//! found missing for `negative_ttl` (0: not kept). Bounded: past its capacity, expired
//! entries go, then everything.

use crate::db::Subscriber;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Key = (String, String);

/// The cache.
#[derive(Debug)]
pub struct Cache {
    ttl: Duration,
    negative_ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Key, (Option<Subscriber>, Instant)>>,
}

impl Cache {
    pub fn new(ttl_s: u64, negative_ttl_s: u64, capacity: usize) -> Cache {
        Cache {
            ttl: Duration::from_secs(ttl_s),
            negative_ttl: Duration::from_secs(negative_ttl_s),
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(user: &str, domain: &str) -> Key {
        (user.to_owned(), domain.to_owned())
    }

    /// `Some(answer)` while one is kept.
    pub fn get(&self, user: &str, domain: &str) -> Option<Option<Subscriber>> {
        let entries = self.entries.lock().ok()?;
        let (found, until) = entries.get(&Cache::key(user, domain))?;
        (Instant::now() < *until).then(|| found.clone())
    }

    /// Keeps an answer.
    pub fn put(&self, user: &str, domain: &str, found: Option<Subscriber>) {
        let ttl = if found.is_some() {
            self.ttl
        } else {
            self.negative_ttl
        };
        if ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(Cache::key(user, domain), (found, now + ttl));
    }
}
