//! The location service in memory: bindings per address-of-record, updated atomically per
//! AOR (RFC 3261 section 10.3 steps 7 and 8). Alone it is the `memory` store; with a
//! [`Journal`] it is the cache of the `embedded` one, which writes every AOR it changes.
//!
//! The store is split into shards by a hash of the AOR, each behind its own lock, so no
//! lock is shared by all requests. Each shard keeps its bindings' expiry times in an index
//! by second ([`Timers`]): expiring bindings costs a look at the index's front, never a
//! scan of all bindings.

use super::rules::{self, Effects};
use super::timers::Timers;
use super::{Applied, Binding, Durable, Update, UpdateError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use uuid::Uuid;

const SHARDS: usize = 64;

/// Where a location that persists writes the AORs it changes: called with the shard's
/// lock held, so the writes of one AOR reach it in the order they were made.
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// The AOR's live bindings now (none: the AOR is gone).
    fn write(&self, aor: &str, live: &[Binding]) -> Durable;

    /// Waits until every write made so far is stored; false if one could not be.
    fn flush(&self) -> bool {
        true
    }
}

#[derive(Debug, Default)]
struct Shard {
    aors: HashMap<Arc<str>, Vec<Binding>, Hasher>,
    timers: Timers,
}

impl Shard {
    /// Rebuilds the expiry index when cancelled timers outnumber the live ones (amortised:
    /// at least as many refreshes or removals as bindings came before).
    fn tidy(&mut self) {
        if self.timers.wants_rebuild() {
            let live = self
                .aors
                .iter()
                .flat_map(|(aor, list)| list.iter().map(move |b| (aor, b.timer, b.expires_at_ms)));
            self.timers.rebuild(live);
        }
    }
}

/// The expiry index of a shard, kept in step with an update's bindings.
struct Armed<'a> {
    timers: &'a mut Timers,
    key: &'a Arc<str>,
}

impl Effects for Armed<'_> {
    fn written(&mut self, b: &mut Binding, existed: bool) {
        if existed {
            self.timers.cancel(); // found lazily by its old id and dropped
        }
        b.timer = self.timers.arm(self.key, b.expires_at_ms);
    }

    fn dropped(&mut self, _: &Binding) {
        self.timers.cancel();
    }
}

/// The in-memory location store.
#[derive(Debug)]
pub struct Location {
    shards: Box<[Mutex<Shard>]>,
    hasher: Hasher,
    journal: Option<Box<dyn Journal>>,
}

impl Default for Location {
    fn default() -> Self {
        Location::new()
    }
}

/// The hasher of the store: foldhash, seeded once per process (AORs come from the network,
/// so the seed keeps their distribution out of a sender's hands).
type Hasher = foldhash::fast::RandomState;

fn shard_of(hasher: &Hasher, aor: &str) -> usize {
    (hasher.hash_one(aor) as usize) % SHARDS
}

impl Location {
    /// An empty store.
    pub fn new() -> Location {
        Location {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: Hasher::default(),
            journal: None,
        }
    }

    /// An empty store that writes every change to `journal`.
    pub fn with_journal(journal: Box<dyn Journal>) -> Location {
        Location {
            journal: Some(journal),
            ..Location::new()
        }
    }

    /// Puts back an AOR's bindings read from disk (expired ones too: their timers are due,
    /// so the next [`Location::expire_due`] removes and reports them). Not journaled.
    pub fn restore(&self, aor: &str, mut bindings: Vec<Binding>) {
        let mut shard = self.shards[shard_of(&self.hasher, aor)].lock();
        let key: Arc<str> = Arc::from(aor);
        for b in &mut bindings {
            b.timer = shard.timers.arm(&key, b.expires_at_ms);
        }
        let old = shard.aors.insert(key, bindings);
        for _ in old.iter().flatten() {
            shard.timers.cancel();
        }
        shard.tidy();
    }

    /// The live bindings of an AOR.
    pub fn lookup(&self, aor: &str, now_ms: u64) -> Vec<Binding> {
        let shard = self.shards[shard_of(&self.hasher, aor)].lock();
        shard.aors.get(aor).map_or_else(Vec::new, |v| {
            v.iter()
                .filter(|b| b.expires_at_ms > now_ms)
                .cloned()
                .collect()
        })
    }

    /// Calls `visit` with every live binding and its AOR, one shard at a time (each shard
    /// locked while it is walked).
    pub fn scan(&self, now_ms: u64, visit: &mut dyn FnMut(&str, &Binding)) {
        for shard in self.shards.iter() {
            let s = shard.lock();
            for (aor, list) in &s.aors {
                for b in list.iter().filter(|b| b.expires_at_ms > now_ms) {
                    visit(aor, b);
                }
            }
        }
    }

    /// How many bindings are stored, all AORs together.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().timers.live()).sum()
    }

    /// Whether no binding is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies a REGISTER's changes to an AOR, all or nothing ([`rules::apply`]).
    ///
    /// # Errors
    /// [`UpdateError`]; the AOR is then unchanged.
    pub fn update(&self, aor: &str, u: &Update<'_>) -> Result<Applied, UpdateError> {
        let mut shard = self.shards[shard_of(&self.hasher, aor)].lock();
        let Shard { aors, timers } = &mut *shard;
        // Worked on in place; a new AOR gets room for exactly what it asks (Vec would
        // otherwise start at 4).
        let (key, mut bindings) = match aors.get_key_value(aor) {
            Some((k, _)) => {
                let k = k.clone();
                let list = aors.get_mut(aor).map(std::mem::take).unwrap_or_default();
                (k, list)
            }
            None => (Arc::from(aor), Vec::with_capacity(u.changes.len())),
        };
        let mut armed = Armed { timers, key: &key };
        let outcome = match rules::apply(&mut bindings, u, &mut armed) {
            Ok(o) => o,
            Err(e) => {
                if let Some(list) = aors.get_mut(aor) {
                    *list = bindings; // unchanged
                }
                return Err(e);
            }
        };
        // A retransmission is written too: its 200 must not overtake the original's write.
        let durable = self.journal.as_ref().map(|j| j.write(&key, &bindings));
        let live = bindings.clone();
        if bindings.is_empty() {
            aors.remove(aor);
        } else if let Some(list) = aors.get_mut(aor) {
            *list = bindings;
        } else {
            aors.insert(key, bindings);
        }
        shard.tidy();
        Ok(Applied {
            bindings: live,
            events: outcome.events,
            durable,
        })
    }

    /// Waits until every change made so far is on disk (nothing to wait for without a
    /// journal); false if the last commit failed.
    pub fn flush(&self) -> bool {
        self.journal.as_ref().is_none_or(|j| j.flush())
    }

    /// Removes one binding of an AOR by its registration id.
    pub fn remove(&self, aor: &str, registration_id: &Uuid) -> Option<Binding> {
        let mut shard = self.shards[shard_of(&self.hasher, aor)].lock();
        let list = shard.aors.get_mut(aor)?;
        let i = list
            .iter()
            .position(|b| b.registration_id == *registration_id)?;
        let b = list.remove(i);
        if let Some(j) = &self.journal {
            j.write(aor, list);
        }
        if list.is_empty() {
            shard.aors.remove(aor);
        }
        shard.timers.cancel();
        shard.tidy();
        Some(b)
    }

    /// Removes every binding whose time is up at `now_ms` and returns them with their AOR;
    /// with a journal, only once their removal is on disk (so that a crash cannot report
    /// them twice).
    pub fn expire_due(&self, now_ms: u64) -> Vec<(Arc<str>, Binding)> {
        let mut out = Vec::new();
        let mut last = None;
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            let Shard { aors, timers } = &mut *s;
            let mut touched: Vec<Arc<str>> = Vec::new();
            while let Some((second, entries)) = timers.take_begun(now_ms) {
                let mut later = Vec::new();
                for (timer, aor) in entries {
                    let Some(list) = aors.get_mut(&aor) else {
                        timers.drop_cancelled();
                        continue;
                    };
                    let Some(i) = list.iter().position(|b| b.timer == timer) else {
                        timers.drop_cancelled();
                        continue;
                    };
                    if list[i].expires_at_ms > now_ms {
                        later.push((timer, aor)); // due later in this second
                        continue;
                    }
                    timers.fired();
                    out.push((aor.clone(), list.remove(i)));
                    if list.is_empty() {
                        aors.remove(&aor);
                    }
                    if self.journal.is_some() {
                        touched.push(aor);
                    }
                }
                if !later.is_empty() {
                    timers.put_back(second, later);
                    break;
                }
            }
            if let Some(j) = &self.journal {
                touched.sort_unstable();
                touched.dedup();
                for aor in touched {
                    let live = s.aors.get(&aor).map_or(&[][..], Vec::as_slice);
                    last = Some(j.write(&aor, live));
                }
            }
        }
        // The journal keeps order: the last write stored means every one before it is.
        if let Some(d) = last
            && !d.wait()
        {
            tracing::error!(target: "sipreg::store", "expired bindings could not be removed from disk; they are reported now and may be reported again after a restart");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;
    use crate::store::{Change, Event, ExpireReason};

    fn change<'a>(key: &'a str, expires: u32) -> Change<'a> {
        Change {
            contact: key,
            key,
            expires,
            q: None,
            instance: None,
            reg_id: None,
            natted: false,
            registration_id: Uuid::new_v4(),
        }
    }

    fn update<'a>(
        call_id: &'a str,
        cseq: u32,
        now_ms: u64,
        changes: Vec<Change<'a>>,
    ) -> Update<'a> {
        Update {
            call_id,
            cseq,
            branch: u64::from(cseq) ^ now_ms,
            source: "127.0.0.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            path: None,
            max_contacts: 2,
            evict: crate::config::Evict::Oldest,
            now_ms,
            remove_all: false,
            changes,
        }
    }

    #[test]
    fn add_refresh_expire() {
        let l = Location::new();
        let a = l
            .update("a@x", &update("c1", 1, 0, vec![change("sip:a@1", 60)]))
            .unwrap();
        assert!(matches!(a.events[0], Event::Added(_)));
        let r = l
            .update("a@x", &update("c1", 2, 1000, vec![change("sip:a@1", 60)]))
            .unwrap();
        assert!(matches!(r.events[0], Event::Refreshed(_)));
        assert_eq!(r.bindings[0].expires_at_ms, 61_000);
        assert_eq!(l.len(), 1, "the old timer is gone");
        assert!(l.expire_due(60_999).is_empty());
        let gone = l.expire_due(61_000);
        assert_eq!(gone.len(), 1);
        assert_eq!(&*gone[0].0, "a@x");
        assert!(l.lookup("a@x", 61_000).is_empty());
        assert!(l.is_empty());
    }

    #[test]
    fn many_refreshes_leave_one_timer_that_fires_once() {
        let l = Location::new();
        let n = 20_000u64; // enough cancelled timers to rebuild the index several times
        for i in 0..n {
            let now = i * 10;
            l.update(
                "a@x",
                &update("c1", i as u32 + 1, now, vec![change("sip:a@1", 60)]),
            )
            .unwrap();
        }
        assert_eq!(l.len(), 1);
        let last = (n - 1) * 10 + 60_000;
        assert!(
            l.expire_due(last - 1).is_empty(),
            "no old timer fires early"
        );
        assert_eq!(l.expire_due(last).len(), 1);
        assert!(l.expire_due(last + 100_000).is_empty(), "reported once");
        assert!(l.is_empty());
    }

    #[test]
    fn a_binding_dropped_as_expired_by_an_update_is_not_reported() {
        let l = Location::new();
        l.update("a@x", &update("c1", 1, 0, vec![change("sip:a@1", 60)]))
            .unwrap();
        // at 60 s its time is up but no expiry ran; a new contact's update drops it, and
        // reports it expired (once: the timer does not report it again)
        let r = l
            .update("a@x", &update("c2", 1, 60_000, vec![change("sip:a@2", 60)]))
            .unwrap();
        assert_eq!(r.bindings.len(), 1);
        assert!(
            matches!(&r.events[..], [Event::Added(_), Event::Removed(b, ExpireReason::Expired)] if &*b.key == "sip:a@1"),
            "{:?}",
            r.events
        );
        assert_eq!(l.len(), 1);
        assert!(l.expire_due(60_000).is_empty());
        assert_eq!(l.expire_due(120_000).len(), 1);
        assert!(l.is_empty());
    }

    #[test]
    fn cseq_ordering_is_all_or_nothing() {
        let l = Location::new();
        l.update("a@x", &update("c1", 5, 0, vec![change("sip:a@1", 60)]))
            .unwrap();
        // same Call-ID, CSeq not higher: refused, and the new contact is not added either
        let e = l.update(
            "a@x",
            &update(
                "c1",
                5,
                10,
                vec![change("sip:a@2", 60), change("sip:a@1", 0)],
            ),
        );
        assert_eq!(e.unwrap_err(), UpdateError::OutOfOrder);
        assert_eq!(l.lookup("a@x", 10).len(), 1);
        // a new Call-ID replaces whatever the CSeq
        let ok = l
            .update("a@x", &update("c2", 1, 20, vec![change("sip:a@1", 0)]))
            .unwrap();
        assert!(ok.bindings.is_empty());
    }

    #[test]
    fn retransmission_changes_nothing_and_succeeds() {
        let l = Location::new();
        let u = update("c1", 5, 0, vec![change("sip:a@1", 60)]);
        l.update("a@x", &u).unwrap();
        let again = l.update("a@x", &Update { now_ms: 500, ..u }).unwrap();
        assert!(again.events.is_empty());
        assert_eq!(again.bindings[0].expires_at_ms, 60_000);
    }

    #[test]
    fn max_contacts_evicts_least_recently_refreshed() {
        let l = Location::new();
        l.update("a@x", &update("c1", 1, 0, vec![change("sip:a@1", 60)]))
            .unwrap();
        l.update("a@x", &update("c2", 1, 10, vec![change("sip:a@2", 60)]))
            .unwrap();
        l.update("a@x", &update("c1", 2, 20, vec![change("sip:a@1", 60)]))
            .unwrap();
        let r = l
            .update("a@x", &update("c3", 1, 30, vec![change("sip:a@3", 60)]))
            .unwrap();
        let keys: Vec<_> = r.bindings.iter().map(|b| b.key.to_string()).collect();
        assert_eq!(keys, vec!["sip:a@1", "sip:a@3"]);
        assert!(
            matches!(&r.events[1], Event::Removed(b, ExpireReason::Evicted) if &*b.key == "sip:a@2")
        );
        assert_eq!(l.len(), 2);
        let too_many = update(
            "c4",
            1,
            40,
            vec![
                change("sip:a@4", 60),
                change("sip:a@5", 60),
                change("sip:a@6", 60),
            ],
        );
        assert_eq!(
            l.update("a@x", &too_many).unwrap_err(),
            UpdateError::TooManyContacts
        );
    }

    #[test]
    fn evict_lowest_q_or_refuse() {
        use crate::config::Evict;
        let l = Location::new();
        let with_q = |key, q| Change {
            q,
            ..change(key, 60)
        };
        let lowest = |u: Update<'static>| Update {
            evict: Evict::LowestQ,
            ..u
        };
        l.update(
            "a@x",
            &update("c1", 1, 0, vec![with_q("sip:a@1", Some(300))]),
        )
        .unwrap();
        l.update("a@x", &update("c2", 1, 10, vec![with_q("sip:a@2", None)]))
            .unwrap();
        // the oldest (a@1) would go; the lowest q goes instead, though it is older too
        let r = l
            .update(
                "a@x",
                &lowest(update("c3", 1, 20, vec![with_q("sip:a@3", Some(500))])),
            )
            .unwrap();
        let keys: Vec<_> = r.bindings.iter().map(|b| b.key.to_string()).collect();
        assert_eq!(keys, vec!["sip:a@2", "sip:a@3"]);
        let r = l
            .update(
                "a@x",
                &lowest(update("c4", 1, 30, vec![with_q("sip:a@4", Some(900))])),
            )
            .unwrap();
        let keys: Vec<_> = r.bindings.iter().map(|b| b.key.to_string()).collect();
        assert_eq!(
            keys,
            vec!["sip:a@2", "sip:a@4"],
            "0.5 went before 1.0 (no q)"
        );
        // refuse: nothing evicted, nothing written; a refresh and a swap still pass
        let refuse = |u: Update<'static>| Update {
            evict: Evict::Refuse,
            ..u
        };
        assert_eq!(
            l.update(
                "a@x",
                &refuse(update("c5", 1, 40, vec![change("sip:a@5", 60)]))
            )
            .unwrap_err(),
            UpdateError::TooManyContacts
        );
        assert_eq!(l.lookup("a@x", 40).len(), 2);
        l.update(
            "a@x",
            &refuse(update("c4", 2, 50, vec![change("sip:a@4", 60)])),
        )
        .unwrap();
        let swap = vec![change("sip:a@4", 0), change("sip:a@6", 60)];
        let r = l.update("a@x", &refuse(update("c4", 3, 60, swap))).unwrap();
        let keys: Vec<_> = r.bindings.iter().map(|b| b.key.to_string()).collect();
        assert_eq!(keys, vec!["sip:a@2", "sip:a@6"]);
    }

    #[test]
    fn instance_and_reg_id_replace_the_old_address() {
        let l = Location::new();
        let flow = |key| Change {
            instance: Some("\"<urn:uuid:1>\""),
            reg_id: Some("1"),
            ..change(key, 60)
        };
        l.update("a@x", &update("c1", 1, 0, vec![flow("sip:a@10.0.0.1")]))
            .unwrap();
        let r = l
            .update("a@x", &update("c2", 1, 10, vec![flow("sip:a@10.0.0.2")]))
            .unwrap();
        assert_eq!(r.bindings.len(), 1, "replaced, not piled up");
        assert_eq!(&*r.bindings[0].key, "sip:a@10.0.0.2");
        assert!(matches!(r.events[0], Event::Refreshed(_)));
        // another reg-id of the same instance is another flow
        let mut other = flow("sip:a@10.0.0.3");
        other.reg_id = Some("2");
        let r = l.update("a@x", &update("c3", 1, 20, vec![other])).unwrap();
        assert_eq!(r.bindings.len(), 2);
    }

    #[test]
    fn remove_all_checks_every_binding() {
        let l = Location::new();
        l.update("a@x", &update("c1", 3, 0, vec![change("sip:a@1", 60)]))
            .unwrap();
        l.update("a@x", &update("c2", 1, 0, vec![change("sip:a@2", 60)]))
            .unwrap();
        let wild = |call_id, cseq| Update {
            remove_all: true,
            ..update(call_id, cseq, 10, vec![])
        };
        assert_eq!(
            l.update("a@x", &wild("c1", 2)).unwrap_err(),
            UpdateError::OutOfOrder
        );
        assert_eq!(l.lookup("a@x", 10).len(), 2);
        let r = l.update("a@x", &wild("c1", 4)).unwrap();
        assert_eq!(r.events.len(), 2);
        assert!(l.is_empty());
    }
}
