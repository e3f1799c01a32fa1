//! Which connections a connection-oriented transport takes (TCP today; TLS and WebSocket
//! go through the same door): at most so many in all, kept below the process's
//! descriptor limit so that the admin listener and the stores still get descriptors, and
//! at most so many from one source address. A refused connection is closed at once and
//! counted. Each admitted connection holds a [`Ticket`] that gives its place back when
//! the connection ends.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Descriptors kept for everything that is not a SIP connection (listeners, the admin
/// API and its clients, the store's files and Redis connections, the UDP sockets).
const RESERVED_DESCRIPTORS: usize = 128;

/// The process's limit of open descriptors (the soft `RLIMIT_NOFILE`), from
/// `/proc/self/limits`; 1024 when it cannot be read.
pub fn descriptor_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1024)
}

/// The default cap on connections: the descriptor limit less what is reserved.
pub fn default_max_connections() -> usize {
    descriptor_limit()
        .saturating_sub(RESERVED_DESCRIPTORS)
        .max(16)
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// As many connections are open as the server takes.
    Full,
    /// As many are open from this address as one address may have.
    PerSource,
}

/// The connections of one server.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_source: usize,
    open: AtomicUsize,
    by_source: Mutex<HashMap<IpAddr, usize>>,
    refused_full: AtomicU64,
    refused_per_source: AtomicU64,
}

/// An admitted connection's place; given back when dropped.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    source: Option<IpAddr>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(ip) = self.source {
            let mut by = self.admission.by_source.lock();
            if let Some(n) = by.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    by.remove(&ip);
                }
            }
        }
    }
}

impl Admission {
    /// At most `max_total` connections, `max_per_source` of them from one address.
    pub fn new(max_total: usize, max_per_source: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_total,
            max_per_source,
            open: AtomicUsize::new(0),
            by_source: Mutex::new(HashMap::new()),
            refused_full: AtomicU64::new(0),
            refused_per_source: AtomicU64::new(0),
        })
    }

    fn take_place(self: &Arc<Self>) -> Result<(), Refused> {
        let taken = self
            .open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_total).then_some(n + 1)
            });
        if taken.is_err() {
            self.refused_full.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        Ok(())
    }

    /// A connection accepted from `source`.
    ///
    /// # Errors
    /// Why it is refused (it is counted).
    pub fn admit(self: &Arc<Self>, source: IpAddr) -> Result<Ticket, Refused> {
        self.take_place()?;
        let mut by = self.by_source.lock();
        let n = by.entry(source).or_insert(0);
        if *n >= self.max_per_source {
            drop(by);
            self.open.fetch_sub(1, Ordering::Relaxed);
            self.refused_per_source.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::PerSource);
        }
        *n += 1;
        Ok(Ticket {
            admission: self.clone(),
            source: Some(source),
        })
    }

    /// A connection we open (to forward a request): counted in all, not per source.
    ///
    /// # Errors
    /// [`Refused::Full`].
    pub fn admit_outgoing(self: &Arc<Self>) -> Result<Ticket, Refused> {
        self.take_place()?;
        Ok(Ticket {
            admission: self.clone(),
            source: None,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused so far: because the server was full, because their source
    /// had its share.
    pub fn refused(&self) -> (u64, u64) {
        (
            self.refused_full.load(Ordering::Relaxed),
            self.refused_per_source.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_in_all_and_per_source_and_places_come_back() {
        let a = Admission::new(3, 2);
        let x: IpAddr = "192.0.2.1".parse().unwrap();
        let y: IpAddr = "192.0.2.2".parse().unwrap();
        let t1 = a.admit(x).unwrap();
        let _t2 = a.admit(x).unwrap();
        assert_eq!(a.admit(x).unwrap_err(), Refused::PerSource);
        let _t3 = a.admit(y).unwrap();
        assert_eq!(a.admit(y).unwrap_err(), Refused::Full);
        assert_eq!(a.admit_outgoing().unwrap_err(), Refused::Full);
        assert_eq!(a.open(), 3);
        drop(t1);
        assert_eq!(a.open(), 2);
        let _t4 = a.admit(x).unwrap();
        assert_eq!(a.refused(), (2, 1));
        assert!(descriptor_limit() >= 16);
    }
}
