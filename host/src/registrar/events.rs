//! What a change of bindings sets off, raised by the registrar in one place: the admin
//! and support log lines and the history ([`super::log`]), the qualify schedule, and for
//! every binding that went away the `expire` chain.

use super::Registrar;
use crate::hooks::ExpireEvent;
use crate::store::{Binding, Event, ExpireReason, StoreError};

impl Registrar {
    /// Reports every event of an update.
    pub(super) fn changed(&self, aor: &str, events: &[Event], now_ms: u64) {
        for e in events {
            match e {
                Event::Added(b) => {
                    self.log.added(aor, b);
                    self.qualify.watch(aor, b, now_ms);
                }
                Event::Refreshed(b) => {
                    self.log.refreshed(aor, b);
                    self.qualify.watch(aor, b, now_ms);
                }
                Event::Removed(b, reason) => self.gone(aor, b, *reason),
            }
        }
    }

    /// A binding went away: logged and recorded, no longer probed, and told to every
    /// `expire` hook (a failure is logged; the binding is gone either way).
    fn gone(&self, aor: &str, b: &Binding, reason: ExpireReason) {
        self.qualify.forget(&b.registration_id);
        self.log.deleted(aor, b, reason);
        let event = ExpireEvent {
            aor,
            contact: &b.contact,
            registration_id: &b.registration_id,
            source: b.source,
            transport: b.transport,
            reason,
            q: b.q,
            instance: b.instance.as_deref(),
            reg_id: b.reg_id.as_deref(),
            natted: b.natted,
        };
        for e in self.chain.expire(&event) {
            tracing::error!(target: "sipreg::hooks", error = %e, "expire hook failed");
        }
    }

    /// Removes the bindings whose time is up and reports them; how many went.
    pub fn expire_due(&self, now_ms: u64) -> usize {
        let gone = self.location.expire_due(now_ms);
        for (aor, b) in &gone {
            self.gone(aor, b, ExpireReason::Expired);
        }
        gone.len()
    }

    /// Removes every binding of an AOR (an operator's request), each reported; returns
    /// what was removed.
    ///
    /// # Errors
    /// The store cannot answer (what was removed before is reported all the same).
    pub fn remove_aor(&self, aor: &str, now_ms: u64) -> Result<Vec<Binding>, StoreError> {
        let mut gone = Vec::new();
        for b in self.location.lookup(aor, now_ms)? {
            if let Some(b) = self.location.remove(aor, &b.registration_id)? {
                self.gone(aor, &b, ExpireReason::Administrative);
                gone.push(b);
            }
        }
        Ok(gone)
    }

    /// Removes a binding that stopped answering OPTIONS and reports it; false when it was
    /// gone already.
    pub fn remove_unreachable(&self, aor: &str, registration_id: &uuid::Uuid) -> bool {
        match self.location.remove(aor, registration_id) {
            Ok(Some(b)) => {
                self.gone(aor, &b, ExpireReason::Unreachable);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(target: "sipreg::store", alias = aor, error = %e, "unreachable binding not removed");
                false
            }
        }
    }
}
