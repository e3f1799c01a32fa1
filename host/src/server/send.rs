//! Sending what the proxy forwards: over UDP from our socket of the destination's address
//! family, over a connection (TCP, TLS, WS, WSS) on the open one to the destination, or,
//! over TCP and TLS when the destination is not a device's flow, on a new connection:
//! asked of the connector (`tcp::connector`) through a queue, since a connection is
//! opened and served there. This server never opens WebSocket connections.

use crate::config::Transport;
use crate::core::Core;
use crate::flows::SendError;
use crate::proxy::Outgoing;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How many new connections may wait to be opened.
const CONNECTS: usize = 1024;

/// A message for a destination without an open connection: open one and send it.
#[derive(Debug)]
pub(super) struct Connect {
    pub transport: Transport,
    pub to: SocketAddr,
    /// The name a TLS server's certificate must hold (else its address).
    pub name: Option<std::sync::Arc<str>>,
    pub first: Vec<u8>,
}

/// Sends forwarded messages for every transport.
#[derive(Debug)]
pub struct Sender {
    /// The UDP sockets, each with whether it is IPv6.
    udp: Vec<(bool, Arc<UdpSocket>)>,
    core: Arc<Core>,
    connects: mpsc::Sender<Connect>,
    /// The runtime whose timers send held replies.
    runtime: tokio::runtime::Handle,
}

pub(super) fn failed(to: SocketAddr, why: &dyn std::fmt::Display) {
    tracing::info!(target: "sipreg::support", destination = %to, error = %why, "Forwarding failed");
}

impl Sender {
    /// A sender over these sockets, and the queue of the connections it asks for (called
    /// on the runtime).
    pub(super) fn new(
        udp: Vec<Arc<UdpSocket>>,
        core: Arc<Core>,
    ) -> (Sender, mpsc::Receiver<Connect>) {
        let udp = udp
            .into_iter()
            .map(|s| (s.local_addr().is_ok_and(|a| a.is_ipv6()), s))
            .collect();
        let (connects, asked) = mpsc::channel(CONNECTS);
        let sender = Sender {
            udp,
            core,
            connects,
            runtime: tokio::runtime::Handle::current(),
        };
        (sender, asked)
    }

    /// Sends one message; a failure is logged (a stateless proxy has nobody to tell: the
    /// sender's retransmissions and timers take over).
    pub fn send(&self, o: Outgoing) {
        let to = o.to.addr;
        match o.to.transport {
            Transport::Udp => {
                let socket = self
                    .udp
                    .iter()
                    .find(|(v6, _)| *v6 == to.is_ipv6())
                    .map(|(_, s)| s);
                match socket {
                    Some(s) => {
                        if let Err(e) = s.send_to(&o.bytes, to) {
                            failed(to, &e);
                        }
                    }
                    None => failed(to, &"no UDP socket of that address family"),
                }
            }
            transport => match self.core.flows().send(transport, to, o.bytes) {
                Ok(()) => {}
                Err((SendError::Gone, first))
                    if !o.to.existing_only
                        && matches!(transport, Transport::Tcp | Transport::Tls) =>
                {
                    let connect = Connect {
                        transport,
                        to,
                        name: o.to.name.clone(),
                        first,
                    };
                    if self.connects.try_send(connect).is_err() {
                        failed(to, &"too many connections waiting to be opened");
                    }
                }
                Err((SendError::Gone, _)) => failed(to, &"the connection is gone"),
                Err((SendError::Full, _)) => failed(to, &"the connection's queue is full"),
            },
        }
    }

    /// Runs `send` after `pause`, on a timer (a reader thread does not wait).
    pub fn later(&self, pause: std::time::Duration, send: impl FnOnce() + Send + 'static) {
        self.runtime.spawn(async move {
            tokio::time::sleep(pause).await;
            send();
        });
    }

    /// The runtime (a reader thread enters it; parked requests run on it).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// The core.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }
}
