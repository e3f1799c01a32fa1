//! The registration history: a bounded record of every binding added, refreshed and
//! deleted and every REGISTER refused, with time, alias, source, transport, outcome and
//! reason, newest kept (`[admin] history` entries). The admin API and `sipreg history`
//! read it.
//!
//! Entries go to several rings in turn, each behind its own lock, so recording takes no
//! lock shared by every request and the rings fill alike (`capacity` entries in all,
//! whatever the aliases); a global sequence number orders the entries of all rings when
//! they are read, and a listing says when it does not hold every matching entry.

use crate::config::Transport;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const RINGS: usize = 16;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Added,
    Refreshed,
    Deleted,
    Refused,
}

impl Outcome {
    /// The name the API and the CLI use.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Added => "added",
            Outcome::Refreshed => "refreshed",
            Outcome::Deleted => "deleted",
            Outcome::Refused => "refused",
        }
    }
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Increases with every entry recorded (the `after` of the next query).
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub outcome: Outcome,
    /// The address-of-record (empty when the request named none we could read).
    pub alias: Arc<str>,
    pub source: SocketAddr,
    pub transport: Transport,
    /// The status code answered (refusals), else none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<u16>,
    /// Why: "Alias not found", "Invalid credentials", "Registration expired", ...
    pub reason: Cow<'static, str>,
    /// The binding's contact (added, refreshed, deleted).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub contact: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub registration_id: Option<uuid::Uuid>,
}

/// What a query asks for.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    /// Only this alias (the AOR as stored: `user@host`, the host in lower case; a `sip:`
    /// prefix is ignored).
    pub alias: Option<&'a str>,
    pub outcome: Option<Outcome>,
    /// Only entries with a higher sequence number.
    pub after: Option<u64>,
    /// At most this many, the newest.
    pub limit: usize,
}

/// What a query found: the newest matching entries, oldest first, and whether there are
/// more (the limit cut the list, or the history dropped older entries that may have
/// matched).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub truncated: bool,
}

/// The history.
#[derive(Debug)]
pub struct History {
    rings: Box<[Mutex<VecDeque<Entry>>]>,
    per_ring: usize,
    seq: AtomicU64,
    /// The ring the next entry goes to (in turn).
    next: AtomicU64,
    /// The highest sequence number dropped to make room (0: none yet).
    dropped: AtomicU64,
}

/// The AOR without a `sip:`/`sips:` scheme, for comparing what an operator types with
/// what is stored.
fn bare(alias: &str) -> &str {
    alias
        .strip_prefix("sip:")
        .or_else(|| alias.strip_prefix("sips:"))
        .unwrap_or(alias)
}

impl History {
    /// A history keeping about `capacity` entries (0 records nothing).
    pub fn new(capacity: usize) -> History {
        History {
            rings: (0..RINGS).map(|_| Mutex::new(VecDeque::new())).collect(),
            per_ring: capacity.div_ceil(RINGS),
            seq: AtomicU64::new(0),
            next: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Records an entry (its `seq` is set here); the oldest of its ring goes when full.
    pub fn record(&self, mut entry: Entry) {
        if self.per_ring == 0 {
            return;
        }
        let i = (self.next.fetch_add(1, Ordering::Relaxed) % RINGS as u64) as usize;
        let mut ring = self.rings[i].lock();
        // Taken under the ring's lock: a ring's entries are in sequence order.
        entry.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        if ring.len() == self.per_ring
            && let Some(old) = ring.pop_front()
        {
            self.dropped.fetch_max(old.seq, Ordering::Relaxed);
        }
        ring.push_back(entry);
    }

    /// The newest entries that match, oldest first.
    pub fn query(&self, q: &Query<'_>) -> Listing {
        let matches = |e: &Entry| {
            q.alias.is_none_or(|a| bare(&e.alias) == bare(a))
                && q.outcome.is_none_or(|o| e.outcome == o)
                && q.after.is_none_or(|s| e.seq > s)
        };
        // Older entries that matched may be gone when anything after `after` was dropped.
        let mut truncated = self.dropped.load(Ordering::Relaxed) > q.after.unwrap_or(0);
        let mut out = Vec::new();
        for ring in self.rings.iter() {
            let ring = ring.lock();
            // Each ring holds its newest last: at most `limit` of each can be among the
            // newest overall (one more tells whether the limit cut it).
            out.extend(
                ring.iter()
                    .rev()
                    .filter(|e| matches(e))
                    .take(q.limit.saturating_add(1))
                    .cloned(),
            );
        }
        out.sort_unstable_by_key(|e| std::cmp::Reverse(e.seq));
        truncated |= out.len() > q.limit;
        out.truncate(q.limit);
        out.reverse();
        Listing {
            entries: out,
            truncated,
        }
    }

    /// How many entries were ever recorded.
    pub fn recorded(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(alias: &str, outcome: Outcome) -> Entry {
        Entry {
            seq: 0,
            time_ms: 1,
            outcome,
            alias: Arc::from(alias),
            source: "192.0.2.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            code: None,
            reason: Cow::Borrowed(""),
            contact: None,
            registration_id: None,
        }
    }

    fn all(limit: usize) -> Query<'static> {
        Query {
            limit,
            ..Query::default()
        }
    }

    #[test]
    fn keeps_the_newest_in_order_within_its_bound() {
        let h = History::new(32); // 2 per ring
        for i in 0..100 {
            h.record(entry(&format!("sip:u{i}@x"), Outcome::Added));
        }
        let listed = h.query(&all(1000));
        assert!(listed.truncated, "entries were dropped");
        let got = listed.entries;
        assert_eq!(got.len(), 32, "the capacity, in all");
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(&*got.last().unwrap().alias, "sip:u99@x");
        assert_eq!(h.recorded(), 100);
        let newest = h.query(&all(3)).entries;
        assert_eq!(
            newest.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![98, 99, 100]
        );
    }

    #[test]
    fn filters_by_alias_outcome_and_sequence() {
        let h = History::new(1000);
        h.record(entry("sip:alice@x", Outcome::Added));
        h.record(entry("sip:bob@x", Outcome::Refused));
        h.record(entry("sip:alice@x", Outcome::Refused));
        let alice = Query {
            alias: Some("alice@x"),
            ..all(10)
        };
        assert_eq!(h.query(&alice).entries.len(), 2);
        let refused = Query {
            outcome: Some(Outcome::Refused),
            ..all(10)
        };
        let got = h.query(&refused);
        assert!(!got.truncated);
        assert_eq!(
            got.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
        let after = Query {
            after: Some(2),
            ..all(10)
        };
        assert_eq!(h.query(&after).entries.len(), 1);
        assert!(h.query(&all(1)).truncated, "the limit cut the list");
    }

    /// `history = N` keeps N entries of one alias too (issue 18, finding 12: the rings
    /// were chosen by alias, so one alias had N / 16), and a listing says it was cut.
    #[test]
    fn one_alias_fills_the_whole_capacity() {
        let h = History::new(10_000);
        for _ in 0..12_000 {
            h.record(entry("sip:alice@x", Outcome::Refused));
        }
        let alice = Query {
            alias: Some("alice@x"),
            ..all(10_000)
        };
        let listed = h.query(&alice);
        assert_eq!(listed.entries.len(), 10_000);
        assert!(listed.truncated, "2,000 older entries were dropped");
        assert_eq!(listed.entries[0].seq, 2_001);
        let recent = Query {
            after: Some(11_000),
            ..alice
        };
        let listed = h.query(&recent);
        assert_eq!(listed.entries.len(), 1_000);
        assert!(!listed.truncated, "nothing after 11,000 was dropped");
    }

    #[test]
    fn zero_capacity_records_nothing() {
        let h = History::new(0);
        h.record(entry("sip:a@x", Outcome::Added));
        assert!(h.query(&all(10)).entries.is_empty());
    }
}
