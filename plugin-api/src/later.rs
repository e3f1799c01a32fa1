//! Hooks that answer later. A plugin whose lookups wait (a database, an HTTP service)
//! sets [`Plugin::WAITS`](crate::Plugin::WAITS) and implements
//! [`start_authenticate`](crate::Plugin::start_authenticate): it copies what it needs of
//! the request, hands the call's [`Done`] to its own thread or runtime, returns
//! [`Started::Later`], and calls [`Done::complete`] once the answer is there. sipreg parks
//! the request meanwhile: none of its threads waits.

use crate::AuthDecision;
use crate::ffi::{AnswerC, status};
use crate::host::Host;
use std::cell::Cell;

/// What a call that may answer later gave at once.
#[derive(Debug)]
pub enum Started<D> {
    /// The answer: the call's [`Done`] is not used (drop it).
    Now(D),
    /// The answer comes through the call's [`Done`].
    Later,
}

/// A decision that can end a call (the decisions of the hooks that may wait).
pub trait Completes: Send + 'static {
    #[doc(hidden)]
    fn write(self, answer: &mut AnswerC);
}

impl Completes for AuthDecision {
    fn write(self, answer: &mut AnswerC) {
        crate::answer::auth_answer(answer, self);
    }
}

thread_local! {
    /// The handle of the call this thread is in (the host's call into the plugin), and
    /// whether its `Done` was dropped unused during it.
    static IN_CALL: Cell<Option<(u64, bool)>> = const { Cell::new(None) };
}

/// The end of one call that may answer later: complete it once, from any thread. Dropped
/// without an answer after the call returned [`Started::Later`], it fails the request
/// (500, logged with the plugin's name).
#[must_use = "a call that answers later must be completed"]
#[derive(Debug)]
pub struct Done<D: Completes> {
    host: Host,
    call: u64,
    ended: bool,
    _decision: std::marker::PhantomData<fn(D)>,
}

impl<D: Completes> Done<D> {
    pub(crate) fn new(host: Host, call: u64) -> Done<D> {
        Done {
            host,
            call,
            ended: false,
            _decision: std::marker::PhantomData,
        }
    }

    /// Ends the call with this decision.
    pub fn complete(mut self, decision: D) {
        self.ended = true;
        let mut answer = AnswerC::empty();
        decision.write(&mut answer);
        self.host.complete(self.call, status::OK, &answer);
        crate::answer::release_answer(&answer);
    }

    /// Ends the call as failed (the request gets 500, and the log says `why`).
    pub fn fail(mut self, why: impl Into<String>) {
        self.ended = true;
        self.failed(why.into());
    }

    fn failed(&self, why: String) {
        let mut answer = AnswerC::empty();
        crate::answer::fill_text(&mut answer, why);
        self.host.complete(self.call, status::FAILED, &answer);
        crate::answer::release_answer(&answer);
    }
}

impl<D: Completes> Drop for Done<D> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let unused_in_call = IN_CALL.with(|c| match c.get() {
            Some((call, _)) if call == self.call => {
                c.set(Some((call, true)));
                true
            }
            _ => false,
        });
        if !unused_in_call {
            self.failed("the plugin dropped the call without an answer".into());
        }
    }
}

/// Runs the plugin's call `f` for handle `call`: whether its `Done` was dropped unused
/// while it ran, with what it returned.
pub(crate) fn in_call<T>(call: u64, f: impl FnOnce() -> T) -> (T, bool) {
    IN_CALL.with(|c| c.set(Some((call, false))));
    let out = f();
    let dropped = IN_CALL.with(|c| c.replace(None)).is_some_and(|(_, d)| d);
    (out, dropped)
}
