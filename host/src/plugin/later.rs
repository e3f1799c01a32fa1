//! Calls into a plugin that answer later (`status::PENDING`): each gets a handle, the
//! plugin ends it through `HostTable::complete` from any thread, and the request waits on
//! the receiving end. The handle is a number, not a pointer: a completion of a handle
//! unknown here (ended already, given up at its deadline, never pending) is ignored.

use super::answer::Answer;
use parking_lot::Mutex;
use plugin_api::ffi::AnswerC;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// What a pending call ends with: its status and its answer, copied.
pub(crate) type Ended = (u32, Result<Answer, String>);

/// The pending calls of one plugin.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Ended>>>,
}

/// A call's handle and its end; dropped, the handle is forgotten (a completion that
/// comes afterwards is ignored).
#[derive(Debug)]
pub(crate) struct Pending<'a> {
    calls: &'a Calls,
    pub call: u64,
    pub ended: oneshot::Receiver<Ended>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.calls.pending.lock().remove(&self.call);
    }
}

impl Calls {
    /// A new handle, registered before the plugin is called with it.
    pub fn begin(&self) -> Pending<'_> {
        let call = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(call, tx);
        Pending {
            calls: self,
            call,
            ended: rx,
        }
    }

    /// How many calls are pending.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.lock().len()
    }

    /// The plugin ended `call`: its answer is copied now (the plugin frees it after).
    pub fn complete(&self, call: u64, status: u32, answer: &AnswerC) {
        let Some(tx) = self.pending.lock().remove(&call) else {
            tracing::debug!(target: "sipreg::plugin", call, "completion of a call that is not pending; ignored");
            return;
        };
        let _ = tx.send((status, Answer::copy(answer)));
    }
}

#[cfg(test)]
mod tests {
    use super::Calls;
    use plugin_api::ffi::{AnswerC, kind, status};

    #[test]
    fn a_call_ends_once_and_a_forgotten_one_not_at_all() {
        let calls = Calls::default();
        let mut p = calls.begin();
        assert_eq!(calls.len(), 1);
        let mut a = AnswerC::empty();
        a.kind = kind::CHALLENGE;
        calls.complete(p.call, status::OK, &a);
        calls.complete(p.call, status::FAILED, &a); // a second end is ignored
        let (st, answer) = p.ended.try_recv().unwrap();
        assert_eq!((st, answer.unwrap().kind), (status::OK, kind::CHALLENGE));
        assert_eq!(calls.len(), 0);
        // given up (its deadline): the handle is forgotten, its end ignored
        let q = calls.begin();
        let call = q.call;
        assert_ne!(call, p.call);
        drop(q);
        assert_eq!(calls.len(), 0);
        calls.complete(call, status::OK, &a);
        calls.complete(12_345, status::OK, &a); // never pending
        assert_eq!(calls.len(), 0);
    }
}
