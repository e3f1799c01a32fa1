//! What goes in and out of the core: a [`Packet`] as a transport received it, the
//! [`Output`] it produced (a reply, a forward, a reply that waits for the store), and what
//! became of it ([`Handled`]).

use super::Parked;
use crate::config::Transport;
use crate::proxy::Outgoing;
use crate::store::Durable;
use crate::tls::PeerCert;
use std::net::SocketAddr;

/// One message as a transport received it: its bytes, where from, and when (the
/// clock's time as it arrived).
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    pub bytes: &'a [u8],
    pub source: SocketAddr,
    pub transport: Transport,
    pub now_ms: u64,
    /// The client's verified certificate, on a TLS or WSS connection that showed one.
    pub peer_cert: Option<&'a PeerCert>,
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A reply was written.
    Replied,
    /// The message goes on to another destination (`Output::forward`).
    Forwarded,
    /// Nothing to answer (an ACK, a response, or a hook's `Drop`).
    Silent,
    /// Unusable: no reply possible; counted.
    Dropped,
    /// Its hooks wait: `Output::parked` ends it.
    Parked,
}

/// What handling one message produced: at most a reply to the sender and at most one
/// message for somebody else (the proxy is stateless: it never forks).
#[derive(Debug, Default)]
pub struct Output {
    /// The reply, for the socket or connection the message came on.
    pub reply: Vec<u8>,
    pub forward: Option<Outgoing>,
    /// When set, `reply` (a REGISTER's 200) may be sent only once this is kept, and
    /// `fallback` (a 500) is sent instead if it fails: the transport hands both over with
    /// [`Durable::then`] rather than waiting.
    pub durable: Option<Durable>,
    pub fallback: Vec<u8>,
    /// When set, `reply` goes out only after this pause (the guard's backoff): the
    /// transport hands it to a timer rather than waiting.
    pub delay: Option<std::time::Duration>,
    /// When set, the request is parked while its hooks wait: this ends it with the
    /// output to send (the transport drives it on its runtime).
    pub parked: Option<Parked>,
}

impl Output {
    /// Empties it, keeping the reply buffer's capacity.
    pub fn clear(&mut self) {
        self.reply.clear();
        self.forward = None;
        self.durable = None;
        self.fallback.clear();
        self.delay = None;
        self.parked = None;
    }

    /// Waits for the hooks of a parked request and for the store when the reply waits
    /// for it, and leaves in `reply` what is to be sent (for callers that may block, off
    /// any runtime: tests, `sipreg try`; the hooks wait on [`offline`]).
    pub fn settle(&mut self) {
        if let Some(Parked(rest)) = self.parked.take() {
            match offline() {
                Some(rt) => *self = rt.block_on(rest),
                None => return,
            }
        }
        if let Some(d) = self.durable.take()
            && !d.wait()
        {
            self.reply = std::mem::take(&mut self.fallback);
        }
    }
}

/// The runtime that requests handled off any server's runtime (tests, `sipreg try`) wait
/// on: one for the process, so that what a hook opened (an HTTP client's pooled
/// connections, its timers) outlives the request that opened it. `None` (logged) when
/// the system gives no thread for it.
pub fn offline() -> Option<&'static tokio::runtime::Runtime> {
    static OFFLINE: std::sync::OnceLock<Option<tokio::runtime::Runtime>> =
        std::sync::OnceLock::new();
    OFFLINE
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("sipreg-offline")
                .enable_all()
                .build()
                .inspect_err(|e| {
                    tracing::error!(target: "sipreg::server", error = %e, "no runtime for requests handled offline");
                })
                .ok()
        })
        .as_ref()
}
