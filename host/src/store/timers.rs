//! The expiry index of one location shard: which binding falls due when, without a scan of
//! all bindings.
//!
//! Entries are kept in buckets by the second they fall due in, and cancelled lazily: a
//! refresh or a removal leaves the old entry where it is (a refreshed binding has a new
//! timer id, so its old entry no longer matches it). Arming touches only the newest
//! bucket, which every REGISTER of the moment shares and which therefore stays in the
//! cache; finding and unlinking the old entry, a cache miss deep in an ordered index, is
//! never done. Cancelled entries are dropped when their second comes, and the index is
//! rebuilt from the live bindings when they outnumber them, so it never holds more than
//! about twice the bindings.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Below this many cancelled entries a shard is never rebuilt.
const REBUILD_FLOOR: usize = 4096;

/// One entry: the binding's timer id, and its AOR.
pub(super) type Entry = (u64, Arc<str>);

/// The expiry index of one shard.
#[derive(Debug, Default)]
pub(super) struct Timers {
    buckets: BTreeMap<u64, Vec<Entry>>,
    next: u64,
    /// Entries whose binding is live.
    live: usize,
    /// Entries left behind by a refresh or a removal.
    cancelled: usize,
}

impl Timers {
    /// Arms a new timer at `at_ms` for a binding of `aor`; returns its id.
    pub(super) fn arm(&mut self, aor: &Arc<str>, at_ms: u64) -> u64 {
        self.next += 1;
        self.insert(self.next, aor, at_ms);
        self.next
    }

    fn insert(&mut self, id: u64, aor: &Arc<str>, at_ms: u64) {
        self.live += 1;
        self.buckets
            .entry(at_ms / 1000)
            .or_default()
            .push((id, aor.clone()));
    }

    /// The timer of a binding that was refreshed or removed will not fire for it.
    pub(super) fn cancel(&mut self) {
        self.live -= 1;
        self.cancelled += 1;
    }

    /// How many bindings have a timer.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// Whether so many entries are cancelled that the index should be rebuilt.
    pub(super) fn wants_rebuild(&self) -> bool {
        self.cancelled > REBUILD_FLOOR && self.cancelled > self.live
    }

    /// Replaces the index with the timers of the live bindings, `(aor, timer id, at_ms)`.
    pub(super) fn rebuild<'a>(&mut self, live: impl Iterator<Item = (&'a Arc<str>, u64, u64)>) {
        self.buckets.clear();
        self.live = 0;
        self.cancelled = 0;
        for (aor, id, at_ms) in live {
            self.insert(id, aor, at_ms);
        }
    }

    /// Takes the entries of the earliest second that has begun at `now_ms`, if any: they
    /// may be due, cancelled, or due later in that second (give those back with
    /// [`Timers::put_back`]).
    pub(super) fn take_begun(&mut self, now_ms: u64) -> Option<(u64, Vec<Entry>)> {
        let first = self.buckets.first_entry()?;
        if first.key().saturating_mul(1000) > now_ms {
            return None;
        }
        Some(first.remove_entry())
    }

    /// An entry taken by [`Timers::take_begun`] was cancelled.
    pub(super) fn drop_cancelled(&mut self) {
        self.cancelled -= 1;
    }

    /// An entry taken by [`Timers::take_begun`] fired: its binding is removed.
    pub(super) fn fired(&mut self) {
        self.live -= 1;
    }

    /// Returns the entries of a second that are not due yet.
    pub(super) fn put_back(&mut self, second: u64, entries: Vec<Entry>) {
        if !entries.is_empty() {
            self.buckets.insert(second, entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_by_second_and_counts() {
        let mut t = Timers::default();
        let a: Arc<str> = Arc::from("a@x");
        let first = t.arm(&a, 1_500);
        let second = t.arm(&a, 1_999);
        assert!(second > first);
        t.arm(&a, 2_000);
        assert_eq!(t.live(), 3);
        t.cancel();
        assert_eq!(t.live(), 2);
        assert!(t.take_begun(999).is_none(), "second 1 has not begun");
        let (sec, entries) = t.take_begun(1_000).unwrap();
        assert_eq!((sec, entries.len()), (1, 2));
        t.put_back(sec, entries);
        let (_, entries) = t.take_begun(1_999).unwrap();
        assert_eq!(entries.len(), 2, "given back whole");
        t.drop_cancelled();
        t.fired();
        assert!(t.take_begun(1_999).is_none());
        assert_eq!(t.take_begun(2_000).unwrap().1.len(), 1);
    }

    #[test]
    fn rebuilds_only_when_cancelled_outnumber_live() {
        let mut t = Timers::default();
        let a: Arc<str> = Arc::from("a@x");
        for _ in 0..REBUILD_FLOOR * 2 {
            t.arm(&a, 60_000);
            t.cancel();
        }
        t.arm(&a, 61_000);
        assert!(t.wants_rebuild());
        t.rebuild([(&a, 9, 61_000)].into_iter());
        assert!(!t.wants_rebuild());
        assert_eq!(t.live(), 1);
        assert!(
            t.take_begun(60_999).is_none(),
            "the cancelled second is gone"
        );
        assert_eq!(t.take_begun(61_000).unwrap().1, vec![(9, a)]);
    }
}
