//! The open connections ("flows", RFC 5626: TCP, TLS, WS, WSS), by transport and peer
//! address: a request for a device that registered over a connection goes out on the very
//! connection it registered on, and a response goes back on the connection its request
//! came on.
//!
//! A connection's task registers a queue here when it starts and removes it when it ends;
//! anything (a UDP reader thread, another connection's task, the qualify timer) can put
//! bytes on that queue without blocking.

use crate::transport::Transport;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// How many messages may wait for one connection's writer before sends to it fail.
pub const QUEUE: usize = 256;

/// Why bytes could not be queued for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No connection to that peer is open.
    Gone,
    /// The connection's queue is full (the peer does not read).
    Full,
}

#[derive(Debug)]
struct Flow {
    id: u64,
    tx: mpsc::Sender<Vec<u8>>,
}

/// The registry of open connections.
#[derive(Debug, Default)]
pub struct Flows {
    open: Mutex<HashMap<(Transport, SocketAddr), Flow>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// A registered connection; dropping it removes the connection from the registry.
#[derive(Debug)]
pub struct Registration<'a> {
    flows: &'a Flows,
    key: (Transport, SocketAddr),
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut open = self.flows.open.lock();
        if open.get(&self.key).is_some_and(|f| f.id == self.id) {
            open.remove(&self.key);
        }
    }
}

impl Flows {
    /// An empty registry.
    pub fn new() -> Flows {
        Flows::default()
    }

    /// Registers the connection over `transport` to `peer` whose writer reads `tx`'s
    /// queue. A newer connection from the same address replaces an older one.
    pub fn register(
        &self,
        transport: Transport,
        peer: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    ) -> Registration<'_> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = (transport, peer);
        self.open.lock().insert(key, Flow { id, tx });
        Registration {
            flows: self,
            key,
            id,
        }
    }

    /// Whether a connection over `transport` to `peer` is open.
    pub fn is_open(&self, transport: Transport, peer: SocketAddr) -> bool {
        self.open
            .lock()
            .get(&(transport, peer))
            .is_some_and(|f| !f.tx.is_closed())
    }

    /// Queues `bytes` for the connection over `transport` to `peer`.
    ///
    /// # Errors
    /// [`SendError`] when no connection is open or its queue is full, with the bytes.
    pub fn send(
        &self,
        transport: Transport,
        peer: SocketAddr,
        bytes: Vec<u8>,
    ) -> Result<(), (SendError, Vec<u8>)> {
        let tx = match self.open.lock().get(&(transport, peer)) {
            Some(f) => f.tx.clone(),
            None => return Err((SendError::Gone, bytes)),
        };
        tx.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(b) => (SendError::Full, b),
            mpsc::error::TrySendError::Closed(b) => (SendError::Gone, b),
        })
    }

    /// How many connections over `transport` are open.
    pub fn count(&self, transport: Transport) -> usize {
        self.open
            .lock()
            .keys()
            .filter(|(t, _)| *t == transport)
            .count()
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_send_and_drop() {
        let flows = Flows::new();
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let tcp = Transport::Tcp;
        assert_eq!(
            flows.send(tcp, peer, vec![1]),
            Err((SendError::Gone, vec![1]))
        );
        let (tx, mut rx) = mpsc::channel(1);
        let reg = flows.register(tcp, peer, tx);
        assert!(flows.is_open(tcp, peer));
        // the same address over another transport is another flow
        assert!(!flows.is_open(Transport::Tls, peer));
        flows.send(tcp, peer, vec![1]).unwrap();
        assert_eq!(
            flows.send(tcp, peer, vec![2]),
            Err((SendError::Full, vec![2]))
        );
        assert_eq!(rx.try_recv().unwrap(), vec![1]);
        // a newer connection from the same address wins; the old one's drop keeps it
        let (tx2, _rx2) = mpsc::channel(1);
        let reg2 = flows.register(tcp, peer, tx2);
        drop(reg);
        assert!(flows.is_open(tcp, peer));
        drop(reg2);
        assert!(!flows.is_open(tcp, peer));
        assert!(flows.is_empty());
    }
}
