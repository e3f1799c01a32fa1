//! The one clock: everything that reads the time (the transports stamping a request, the
//! history, the Date of a 200, the timer's expiry and qualify ticks, `sip.kv` and the
//! plugins' store calls outside a request) reads it from a [`Clock`] handed down by the
//! wiring point, so a test, or the policy test runner, can set and advance it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Milliseconds since the Unix epoch, read from the system.
fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The system's clock, or one that a test sets. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// The system's time.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `start_ms` until it is set or advanced.
    pub fn manual(start_ms: u64) -> Clock {
        Clock(Some(Arc::new(AtomicU64::new(start_ms))))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            None => system_ms(),
            Some(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Whether this clock is set by hand.
    pub fn is_manual(&self) -> bool {
        self.0.is_some()
    }

    /// Sets a manual clock (a system clock ignores it).
    pub fn set(&self, now_ms: u64) {
        if let Some(t) = &self.0 {
            t.store(now_ms, Ordering::Relaxed);
        }
    }

    /// Moves a manual clock on by `ms` (a system clock ignores it).
    pub fn advance(&self, ms: u64) {
        if let Some(t) = &self.0 {
            t.fetch_add(ms, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_is_shared_by_its_clones() {
        let c = Clock::manual(1_000);
        let copy = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(copy.now_ms(), 1_500);
        copy.set(7);
        assert_eq!(c.now_ms(), 7);
        let s = Clock::system();
        s.set(7);
        assert!(s.now_ms() > 1_700_000_000_000, "the system's time, not 7");
    }
}
