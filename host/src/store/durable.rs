//! A promise that a change is on disk: the embedded store hands one out with every
//! update, and a REGISTER's 200 is sent only when it is kept (a 500 when the write failed).
//! Many REGISTERs share one commit, so the transports do not wait for it: they leave the
//! reply with the promise, and the committer sends it.

use parking_lot::{Condvar, Mutex};
use std::fmt;
use std::sync::Arc;

type Then = Box<dyn FnOnce(bool) + Send>;

enum State {
    Waiting(Option<Then>),
    Done(bool),
}

struct Slot {
    state: Mutex<State>,
    settled: Condvar,
}

/// A change on its way to disk.
#[derive(Clone)]
pub struct Durable(Arc<Slot>);

impl fmt::Debug for Durable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.0.state.lock() {
            State::Waiting(_) => "waiting",
            State::Done(true) => "stored",
            State::Done(false) => "failed",
        };
        f.debug_tuple("Durable").field(&state).finish()
    }
}

impl Default for Durable {
    fn default() -> Self {
        Durable::pending()
    }
}

impl Durable {
    /// Not settled yet.
    pub fn pending() -> Durable {
        Durable(Arc::new(Slot {
            state: Mutex::new(State::Waiting(None)),
            settled: Condvar::new(),
        }))
    }

    /// Settles it: `true` when the change is on disk. The first call counts.
    pub fn settle(&self, stored: bool) {
        let then = {
            let mut state = self.0.state.lock();
            match std::mem::replace(&mut *state, State::Done(stored)) {
                State::Waiting(then) => then,
                done @ State::Done(_) => {
                    *state = done;
                    return;
                }
            }
        };
        self.0.settled.notify_all();
        if let Some(f) = then {
            f(stored);
        }
    }

    /// Runs `f` with the outcome once settled (at once if it is), on the thread that settles
    /// it. One `then` per promise: a second replaces the first.
    pub fn then(&self, f: impl FnOnce(bool) + Send + 'static) {
        let mut state = self.0.state.lock();
        match &mut *state {
            State::Waiting(then) => *then = Some(Box::new(f)),
            State::Done(stored) => {
                let stored = *stored;
                drop(state);
                f(stored);
            }
        }
    }

    /// Blocks until settled; `true` when stored.
    pub fn wait(&self) -> bool {
        let mut state = self.0.state.lock();
        loop {
            if let State::Done(stored) = &*state {
                return *stored;
            }
            self.0.settled.wait(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    #[test]
    fn then_runs_once_whenever_it_is_set() {
        let seen = Arc::new(AtomicU8::new(0));
        let d = Durable::pending();
        let s = seen.clone();
        d.then(move |ok| {
            s.fetch_add(if ok { 1 } else { 10 }, Ordering::SeqCst);
        });
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        d.settle(true);
        d.settle(false); // the first settlement counts
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        assert!(d.wait());
        let s = seen.clone();
        d.then(move |ok| {
            s.fetch_add(if ok { 1 } else { 10 }, Ordering::SeqCst);
        });
        assert_eq!(seen.load(Ordering::SeqCst), 2, "runs at once when settled");
    }

    #[test]
    fn wait_returns_when_another_thread_settles() {
        let d = Durable::pending();
        let other = d.clone();
        let t = std::thread::spawn(move || other.settle(false));
        assert!(!d.wait());
        t.join().unwrap();
    }
}
