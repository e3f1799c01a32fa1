//! Where bindings live (`[store] type`): `memory` (gone with the process; for tests),
//! `embedded` (the default: memory in front of a write-ahead log and a redb file, every 200
//! after its change is on disk) or `redis` (shared by several nodes). The registrar, the
//! proxy, qualify and the hook APIs see them through one trait, [`LocationStore`].

mod binding;
mod checkpoint;
mod durable;
pub mod embedded;
pub mod location;
pub mod redis;
pub mod repair;
pub mod rules;
mod timers;
mod wal;

pub use binding::{Applied, Binding, Change, Event, ExpireReason, Update, UpdateError};
pub use durable::Durable;
pub use location::Location;

use crate::clock::Clock;
use crate::config::{Config, StoreKind};
use crate::kv::{Kv, KvStore};
use crate::sip::Reply;
use std::sync::Arc;
use uuid::Uuid;

/// The stores of one server, shared by the core and every hook implementation (Lua's
/// `sip.kv` and `sip.location`, the plugins' host table), and the clock they keep time by.
#[derive(Debug, Clone)]
pub struct Stores {
    pub location: Arc<dyn LocationStore>,
    pub kv: Arc<dyn KvStore>,
    pub clock: Clock,
}

impl Stores {
    /// Empty stores in memory, on `clock`.
    pub fn memory(clock: Clock) -> Stores {
        Stores {
            location: Arc::new(Location::new()),
            kv: Arc::new(Kv::new()),
            clock,
        }
    }
}

/// The reason phrase of [`unavailable`].
pub const UNAVAILABLE: &str = "Location store unavailable";

/// The answer to a request that needed the store when it could not answer: 503 with
/// Retry-After, never a 200 for what was not stored nor a 480 for an AOR that may be
/// registered (the registrar's and the proxy's, built here once).
pub fn unavailable() -> Reply {
    Reply::with_reason(503, UNAVAILABLE).header("Retry-After", "5")
}

/// The store cannot answer (a Redis that is down, a file that cannot be written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Opens the configured stores (loading the embedded one's file): the location store and
/// the hooks' key-value store (in Redis too with a Redis location store, else in memory).
///
/// # Errors
/// The store cannot be opened; the message names the file or server.
pub fn open(config: &Config, clock: Clock) -> Result<Stores, StoreError> {
    let started = std::time::Instant::now();
    let location: Arc<dyn LocationStore> = match config.store.kind {
        StoreKind::Memory => Arc::new(Location::new()),
        StoreKind::Embedded => {
            let path = config.base_dir.join(&config.store.path);
            let delay = std::time::Duration::from_millis(config.store.commit_delay_ms);
            let opened = embedded::open(&path, delay)?;
            tracing::info!(
                target: "sipreg::store",
                file = %path.display(),
                aors = opened.aors,
                bindings = opened.bindings,
                ms = started.elapsed().as_millis() as u64,
                "location store loaded"
            );
            Arc::new(opened.location)
        }
        StoreKind::Redis => {
            let url = config.store.url.as_deref().unwrap_or_default();
            let timeout = std::time::Duration::from_millis(config.store.timeout_ms);
            let redis = Arc::new(redis::Redis::new(url, timeout)?);
            match redis.ping() {
                Ok(()) => {
                    tracing::info!(target: "sipreg::store", url, prefix = %config.store.prefix, "location store in Redis");
                }
                // Served anyway: REGISTERs get 503 until Redis answers.
                Err(e) => {
                    tracing::error!(target: "sipreg::store", url, error = %e, "Redis unavailable at start");
                }
            }
            let prefix = &config.store.prefix;
            let location = redis::RedisLocation::new(redis.clone(), prefix);
            match location.migrate() {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(target: "sipreg::store", bindings = n, "bindings moved from the Redis layout before buckets");
                }
                // Redis is down, logged above: the next start moves them.
                Err(e) => {
                    tracing::warn!(target: "sipreg::store", error = %e, "bindings of the Redis layout before buckets not moved");
                }
            }
            return Ok(Stores {
                location: Arc::new(location),
                kv: Arc::new(redis::RedisKv::new(redis, prefix)),
                clock,
            });
        }
    };
    Ok(Stores {
        location,
        kv: Arc::new(Kv::new()),
        clock,
    })
}

/// A location store.
pub trait LocationStore: Send + Sync + std::fmt::Debug {
    /// The live bindings of an AOR.
    ///
    /// # Errors
    /// The store cannot answer.
    fn lookup(&self, aor: &str, now_ms: u64) -> Result<Vec<Binding>, StoreError>;

    /// Applies a REGISTER's changes to an AOR, all or nothing (RFC 3261 section 10.3
    /// steps 7 and 8).
    ///
    /// # Errors
    /// [`UpdateError`]; the AOR is then unchanged.
    fn update(&self, aor: &str, u: &Update<'_>) -> Result<Applied, UpdateError>;

    /// Removes one binding of an AOR by its registration id.
    ///
    /// # Errors
    /// The store cannot answer.
    fn remove(&self, aor: &str, registration_id: &Uuid) -> Result<Option<Binding>, StoreError>;

    /// Calls `visit` with every live binding and its AOR (the admin API's listing: a walk
    /// over the whole store).
    ///
    /// # Errors
    /// The store cannot answer.
    fn scan(&self, now_ms: u64, visit: &mut dyn FnMut(&str, &Binding)) -> Result<(), StoreError>;

    /// Removes the bindings whose time is up and returns them with their AOR, each once (of
    /// several nodes sharing a store, one gets it).
    fn expire_due(&self, now_ms: u64) -> Vec<(Arc<str>, Binding)>;

    /// Waits until every change made so far is stored (at shutdown); false if one failed.
    fn flush(&self) -> bool {
        true
    }

    /// How many bindings are stored (expired ones not yet removed included).
    ///
    /// # Errors
    /// The store cannot answer.
    fn count(&self) -> Result<usize, StoreError>;
}

impl LocationStore for Location {
    fn lookup(&self, aor: &str, now_ms: u64) -> Result<Vec<Binding>, StoreError> {
        Ok(Location::lookup(self, aor, now_ms))
    }

    fn update(&self, aor: &str, u: &Update<'_>) -> Result<Applied, UpdateError> {
        Location::update(self, aor, u)
    }

    fn remove(&self, aor: &str, registration_id: &Uuid) -> Result<Option<Binding>, StoreError> {
        Ok(Location::remove(self, aor, registration_id))
    }

    fn expire_due(&self, now_ms: u64) -> Vec<(Arc<str>, Binding)> {
        Location::expire_due(self, now_ms)
    }

    fn scan(&self, now_ms: u64, visit: &mut dyn FnMut(&str, &Binding)) -> Result<(), StoreError> {
        Location::scan(self, now_ms, visit);
        Ok(())
    }

    fn count(&self) -> Result<usize, StoreError> {
        Ok(Location::len(self))
    }

    fn flush(&self) -> bool {
        Location::flush(self)
    }
}
