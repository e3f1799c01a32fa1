//! Requests parked while a hook waits: the future that ends one (the transport that read
//! it drives it and sends what it produces), how many are parked at once, and the
//! non-INVITE server transactions of RFC 3261 section 17.2.2 for parked requests only. A
//! retransmission of a parked request is absorbed instead of being handled twice; one
//! that arrives after the answer gets the answer again, for Timer J (64*T1 over UDP, none
//! over a reliable transport). Requests handled inline never enter the table: their
//! answer is sent before the next datagram is read, as today.

use super::Output;
use crate::config::Transport;
use crate::sip::Message;
use crate::sip::via::Via;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

/// Timer J over an unreliable transport: 64 * T1 (RFC 3261 section 17.2.2).
const TIMER_J_MS: u64 = 64 * 500;

/// What ends a parked request: the output its handling produced, to be sent by the
/// transport as if it had come at once.
pub struct Parked(pub Pin<Box<dyn Future<Output = Output> + Send>>);

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Parked")
    }
}

/// Polls `f` once, with a waker that does nothing (whoever polls it next, a runtime's
/// task, brings its own): its output when it is ready at once.
pub(super) fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Option<F::Output> {
    match f.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// The key of a server transaction (RFC 3261 section 17.2.3): the branch, the sent-by and
/// the method; for a branch without the magic cookie (RFC 2543), Call-ID, CSeq, From and
/// the whole top Via instead.
pub(super) fn key(msg: &Message, via: &Via<'_>) -> String {
    use crate::sip::HeaderName;
    let method = msg.method().map(ToString::to_string).unwrap_or_default();
    match via.branch().filter(|b| b.starts_with("z9hG4bK")) {
        Some(branch) => format!("{branch}\n{}:{}\n{method}", via.host, via.port.unwrap_or(0)),
        None => format!(
            "\n{}\n{}\n{}\n{}\n{method}",
            msg.header(HeaderName::CallId).unwrap_or(""),
            msg.header(HeaderName::CSeq).unwrap_or(""),
            msg.header(HeaderName::From).unwrap_or(""),
            msg.header(HeaderName::Via).unwrap_or("")
        ),
    }
}

/// A parked request's transaction.
#[derive(Debug)]
enum State {
    /// Its hooks are waiting.
    Waiting,
    /// Answered: this reply again for a retransmission, until the time.
    Answered { reply: Vec<u8> },
}

/// What a request that may be parked finds in the table.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// Not a retransmission of a parked request.
    New,
    /// A retransmission of a request still waiting: absorbed.
    Waiting,
    /// A retransmission of a request answered: this reply again.
    Answered(Vec<u8>),
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, State>,
    /// Answered transactions in the order their Timer J ends.
    ending: VecDeque<(u64, String)>,
}

/// The parked requests: how many, the most at once, and their transactions.
#[derive(Debug)]
pub struct Parking {
    table: Mutex<Table>,
    /// Transactions in the table (waiting or answered): the inline path looks only at this.
    held: AtomicUsize,
    waiting: AtomicUsize,
    max: usize,
    /// Requests parked so far, refused at the cap, and retransmissions absorbed/answered.
    pub parked: AtomicU64,
    pub refused: AtomicU64,
    pub absorbed: AtomicU64,
}

impl Parking {
    /// Room for `max` requests parked at once.
    pub fn new(max: usize) -> Parking {
        Parking {
            table: Mutex::new(Table::default()),
            held: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            max,
            parked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            absorbed: AtomicU64::new(0),
        }
    }

    /// Requests parked now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The most requests parked at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Whether the table holds any transaction (else nothing can be a retransmission of
    /// a parked request).
    pub(super) fn holds_any(&self) -> bool {
        self.held.load(Ordering::Relaxed) > 0
    }

    /// What the table knows of the transaction `key` (answered ones whose Timer J ended
    /// are forgotten first).
    pub(super) fn seen(&self, key: &str, now_ms: u64) -> Seen {
        let mut t = self.table.lock();
        self.forget_ended(&mut t, now_ms);
        let seen = match t.entries.get(key) {
            None => Seen::New,
            Some(State::Waiting) => Seen::Waiting,
            Some(State::Answered { reply }) => Seen::Answered(reply.clone()),
        };
        if seen != Seen::New {
            self.absorbed.fetch_add(1, Ordering::Relaxed);
        }
        seen
    }

    /// Parks the transaction `key`; false at the cap (the request is then refused).
    pub(super) fn park(&self, key: String) -> bool {
        if self
            .waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_err()
        {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.parked.fetch_add(1, Ordering::Relaxed);
        let mut t = self.table.lock();
        if t.entries.insert(key, State::Waiting).is_none() {
            self.held.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// The parked transaction `key` was answered with `reply`: kept for a retransmission
    /// until Timer J ends (over UDP), else forgotten.
    pub(super) fn answered(&self, key: String, reply: &[u8], transport: Transport, now_ms: u64) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let mut t = self.table.lock();
        self.forget_ended(&mut t, now_ms);
        if transport.is_connection() || reply.is_empty() {
            if t.entries.remove(&key).is_some() {
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
            return;
        }
        t.ending.push_back((now_ms + TIMER_J_MS, key.clone()));
        t.entries.insert(
            key,
            State::Answered {
                reply: reply.to_vec(),
            },
        );
    }

    fn forget_ended(&self, t: &mut Table, now_ms: u64) {
        while let Some((until, _)) = t.ending.front()
            && *until <= now_ms
        {
            let Some((_, key)) = t.ending.pop_front() else {
                break;
            };
            if matches!(t.entries.get(&key), Some(State::Answered { .. })) {
                t.entries.remove(&key);
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_transaction_absorbs_then_answers_until_timer_j() {
        let p = Parking::new(2);
        assert_eq!(p.seen("k", 0), Seen::New);
        assert!(p.park("k".into()));
        assert_eq!(p.waiting(), 1);
        assert_eq!(p.seen("k", 10), Seen::Waiting);
        assert_eq!(p.seen("other", 10), Seen::New);
        p.answered("k".into(), b"SIP/2.0 200 OK", Transport::Udp, 100);
        assert_eq!(p.waiting(), 0);
        assert_eq!(p.seen("k", 200), Seen::Answered(b"SIP/2.0 200 OK".to_vec()));
        assert_eq!(p.seen("k", 100 + TIMER_J_MS), Seen::New, "Timer J ended");
        assert_eq!(p.absorbed.load(Ordering::Relaxed), 2);
        assert_eq!(p.held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_cap_refuses_and_reliable_transports_keep_nothing() {
        let p = Parking::new(1);
        assert!(p.park("a".into()));
        assert!(!p.park("b".into()), "one at once");
        assert_eq!(p.refused.load(Ordering::Relaxed), 1);
        p.answered("a".into(), b"reply", Transport::Tcp, 0);
        assert_eq!(p.seen("a", 1), Seen::New, "no Timer J over TCP");
        assert!(p.park("b".into()), "room again");
    }
}
