//! The `redis` store: bindings (`location.rs`) and the hooks' key-value store (`kv.rs`,
//! `incr.lua`) in a Redis server that several nodes share. This file holds the connections: a small pool
//! of blocking connections with timeouts (a command slower than `[store] timeout_ms` fails,
//! and the request that needed it gets 503); a failed connection is dropped and the next
//! command opens a new one, so a node recovers by itself when Redis is back.

mod kv;
mod location;

pub use kv::RedisKv;
pub use location::RedisLocation;

use super::StoreError;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The most idle connections kept.
const IDLE: usize = 16;

/// Connections to one Redis server.
pub struct Redis {
    client: redis::Client,
    url: String,
    idle: Mutex<Vec<redis::Connection>>,
    timeout: Duration,
    /// Whether the last command failed (to log the change once, not every failure).
    down: AtomicBool,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.url)
            .field("down", &self.down.load(Ordering::Relaxed))
            .finish()
    }
}

impl Redis {
    /// A pool for `url` (nothing is connected yet).
    ///
    /// # Errors
    /// The URL is not a Redis URL.
    pub fn new(url: &str, timeout: Duration) -> Result<Redis, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError(format!("{url} is not a Redis URL: {e}")))?;
        Ok(Redis {
            client,
            url: url.to_owned(),
            idle: Mutex::new(Vec::new()),
            timeout,
            down: AtomicBool::new(false),
        })
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let c = self.client.get_connection_with_timeout(self.timeout)?;
        c.set_read_timeout(Some(self.timeout))?;
        c.set_write_timeout(Some(self.timeout))?;
        Ok(c)
    }

    /// Runs `f` on a connection.
    ///
    /// # Errors
    /// Redis cannot be reached, is too slow, or refused the command.
    pub fn run<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().pop();
        let result = match pooled {
            Some(c) => Ok(c),
            None => self.connect(),
        }
        .and_then(|mut c| f(&mut c).map(|v| (v, c)));
        match result {
            Ok((v, c)) => {
                let mut idle = self.idle.lock();
                if idle.len() < IDLE {
                    idle.push(c);
                }
                drop(idle);
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(target: "sipreg::store", url = %self.url, "Redis reachable again");
                }
                Ok(v)
            }
            Err(e) => {
                // The connection is dropped: after a timeout its replies may be out of step.
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::error!(target: "sipreg::store", url = %self.url, error = %e, "Redis unavailable; REGISTERs get 503 until it is back");
                }
                Err(StoreError(format!("Redis at {}: {e}", self.url)))
            }
        }
    }

    /// Whether a command can be run now (opens a connection if none is idle).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| redis::cmd("PING").query::<String>(c).map(|_| ()))
    }
}
