//! Qualify: OPTIONS sent to registered devices on an interval (every NATed binding by
//! default, as the keep-alive that holds its NAT binding open), the round-trip time of
//! the answer, and reachability: "OK (3 ms)" or unreachable after `failures` unanswered
//! probes in a row, when the binding may be removed (through the `expire` hooks).
//!
//! Bindings are scheduled when a REGISTER writes them; a probe whose binding is gone is
//! forgotten when it comes due. The schedule is ordered by due time, so a tick looks at
//! what is due and never at every binding.

use crate::config::Qualify as Config;
use crate::metrics::{Histogram, RTT_BOUNDS_US};
use crate::store::Binding;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// The Call-ID prefix of our probes (their answers are ours, not the proxy's).
pub const CALL_ID_PREFIX: &str = "sipreg-qualify-";

/// What the probes say of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Not probed yet.
    Unknown,
    /// Answered; the last round trip.
    Reachable { rtt_ms: u64 },
    /// `failures` probes in a row unanswered.
    Unreachable,
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reach::Unknown => f.write_str("UNKNOWN"),
            Reach::Reachable { rtt_ms } => write!(f, "OK ({rtt_ms} ms)"),
            Reach::Unreachable => f.write_str("UNREACHABLE"),
        }
    }
}

#[derive(Debug)]
struct Probe {
    aor: Arc<str>,
    due: (u64, u64),
    /// When the outstanding probe went out, and its Call-ID.
    sent: Option<(u64, String)>,
    failures: u32,
    reach: Reach,
    interval_ms: u64,
}

#[derive(Debug, Default)]
struct State {
    schedule: BTreeMap<(u64, u64), Uuid>,
    probes: HashMap<Uuid, Probe>,
    by_call_id: HashMap<String, Uuid>,
    seq: u64,
}

/// A probe to send now: the binding it is for and its Call-ID.
#[derive(Debug, Clone)]
pub struct Due {
    pub aor: Arc<str>,
    pub registration_id: Uuid,
    pub call_id: String,
}

/// What a tick found.
#[derive(Debug, Default)]
pub struct Tick {
    pub due: Vec<Due>,
    /// Bindings that just reached `failures` and are to be removed.
    pub remove: Vec<(Arc<str>, Uuid)>,
}

/// The qualify scheduler.
#[derive(Debug)]
pub struct Qualify {
    config: Config,
    state: Mutex<State>,
    /// Round trips of answered probes (for `/metrics`).
    pub rtt: Histogram,
}

impl Qualify {
    /// A scheduler with these settings.
    pub fn new(config: &Config) -> Qualify {
        Qualify {
            config: config.clone(),
            state: Mutex::new(State::default()),
            rtt: Histogram::new(RTT_BOUNDS_US),
        }
    }

    /// The probe interval for a binding, or None when it is not probed.
    fn interval_ms(&self, b: &Binding) -> Option<u64> {
        let secs = if b.natted && self.config.natted_interval > 0 {
            self.config.natted_interval
        } else {
            self.config.interval
        };
        (secs > 0).then_some(u64::from(secs) * 1000)
    }

    /// A binding was written: probe it from now on (first probe at once).
    pub fn watch(&self, aor: &str, b: &Binding, now_ms: u64) {
        let Some(interval_ms) = self.interval_ms(b) else {
            return;
        };
        let mut s = self.state.lock();
        if s.probes.contains_key(&b.registration_id) {
            return;
        }
        s.seq += 1;
        let due = (now_ms, s.seq);
        s.schedule.insert(due, b.registration_id);
        s.probes.insert(
            b.registration_id,
            Probe {
                aor: Arc::from(aor),
                due,
                sent: None,
                failures: 0,
                reach: Reach::Unknown,
                interval_ms,
            },
        );
    }

    /// Forgets a binding.
    pub fn forget(&self, registration_id: &Uuid) {
        let mut s = self.state.lock();
        if let Some(p) = s.probes.remove(registration_id) {
            s.schedule.remove(&p.due);
            if let Some((_, cid)) = p.sent {
                s.by_call_id.remove(&cid);
            }
        }
    }

    /// What the probes say of a binding.
    pub fn reach(&self, registration_id: &Uuid) -> Reach {
        self.state
            .lock()
            .probes
            .get(registration_id)
            .map_or(Reach::Unknown, |p| p.reach)
    }

    /// The probes due at `now_ms`; an outstanding probe that got no answer by then counts
    /// as a failure.
    pub fn tick(&self, now_ms: u64) -> Tick {
        let mut out = Tick::default();
        let mut s = self.state.lock();
        let s = &mut *s;
        while let Some(entry) = s.schedule.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let id = entry.remove();
            let Some(p) = s.probes.get_mut(&id) else {
                continue;
            };
            if let Some((_, cid)) = p.sent.take() {
                s.by_call_id.remove(&cid);
                p.failures += 1;
                if p.failures == self.config.failures {
                    p.reach = Reach::Unreachable;
                    tracing::info!(
                        target: "sipreg::admin",
                        alias = &*p.aor,
                        registration_id = %id,
                        failures = p.failures,
                        "Registration unreachable"
                    );
                    if self.config.remove_unreachable {
                        out.remove.push((p.aor.clone(), id));
                        s.probes.remove(&id);
                        continue;
                    }
                }
            }
            let call_id = format!("{CALL_ID_PREFIX}{}", Uuid::new_v4().simple());
            p.sent = Some((now_ms, call_id.clone()));
            s.seq += 1;
            // The next look: when the answer is overdue (then the probe is repeated), or
            // the next interval; an answer moves it to one interval after this probe.
            p.due = (now_ms + p.interval_ms.min(self.config.timeout_ms), s.seq);
            s.schedule.insert(p.due, id);
            s.by_call_id.insert(call_id.clone(), id);
            out.due.push(Due {
                aor: p.aor.clone(),
                registration_id: id,
                call_id,
            });
        }
        out
    }

    /// An answer to one of our probes (any final status: the device is there); false
    /// when the Call-ID is not an outstanding probe's.
    pub fn answered(&self, call_id: &str, now_ms: u64) -> bool {
        let mut s = self.state.lock();
        let s = &mut *s;
        let Some(id) = s.by_call_id.remove(call_id) else {
            return false;
        };
        let Some(p) = s.probes.get_mut(&id) else {
            return true;
        };
        let Some((sent, _)) = p.sent.take() else {
            return true;
        };
        let rtt_ms = now_ms.saturating_sub(sent);
        self.rtt.observe(std::time::Duration::from_millis(rtt_ms));
        if p.reach == Reach::Unreachable {
            tracing::info!(target: "sipreg::admin", alias = &*p.aor, registration_id = %id, rtt_ms, "Registration reachable");
        }
        p.reach = Reach::Reachable { rtt_ms };
        p.failures = 0;
        // Answered early: the next probe one interval after this one went out.
        s.schedule.remove(&p.due);
        s.seq += 1;
        p.due = (sent + p.interval_ms, s.seq);
        s.schedule.insert(p.due, id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;

    fn config() -> Config {
        Config {
            interval: 0,
            natted_interval: 30,
            timeout_ms: 2000,
            failures: 2,
            remove_unreachable: true,
        }
    }

    fn binding(natted: bool) -> Binding {
        let l = crate::store::Location::new();
        let change = crate::store::Change {
            contact: "<sip:a@10.0.0.1>",
            key: "sip:a@10.0.0.1",
            expires: 60,
            q: None,
            instance: None,
            reg_id: None,
            natted,
            registration_id: Uuid::new_v4(),
        };
        let u = crate::store::Update {
            call_id: "c",
            cseq: 1,
            branch: 1,
            source: "192.0.2.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            path: None,
            max_contacts: 1,
            evict: crate::config::Evict::Oldest,
            now_ms: 0,
            remove_all: false,
            changes: vec![change],
        };
        l.update("a@x", &u).unwrap().bindings.remove(0)
    }

    #[test]
    fn natted_bindings_are_probed_and_timed() {
        let q = Qualify::new(&config());
        let aor: Arc<str> = "a@x".into();
        q.watch(&aor, &binding(false), 0);
        assert!(
            q.tick(0).due.is_empty(),
            "not natted: not probed by default"
        );
        let b = binding(true);
        q.watch(&aor, &b, 0);
        let t = q.tick(0);
        assert_eq!(t.due.len(), 1);
        assert!(q.answered(&t.due[0].call_id, 3));
        assert_eq!(q.reach(&b.registration_id).to_string(), "OK (3 ms)");
        assert!(!q.answered(&t.due[0].call_id, 4), "answered once");
        assert!(q.tick(29_999).due.is_empty());
        assert_eq!(q.tick(30_000).due.len(), 1);
    }

    #[test]
    fn unanswered_probes_make_it_unreachable_and_removed() {
        let q = Qualify::new(&config());
        let aor: Arc<str> = "a@x".into();
        let b = binding(true);
        q.watch(&aor, &b, 0);
        assert_eq!(q.tick(0).due.len(), 1);
        let t = q.tick(2000);
        assert_eq!(
            (t.due.len(), t.remove.len()),
            (1, 0),
            "one failure, probed again"
        );
        let t = q.tick(4000);
        assert_eq!(t.remove, vec![(aor.clone(), b.registration_id)]);
        assert!(t.due.is_empty());
        assert_eq!(q.reach(&b.registration_id), Reach::Unknown, "forgotten");
        assert!(q.tick(100_000).due.is_empty());
    }
}
