//! Sending what the proxy forwards: over UDP from our socket of the destination's address
//! family, over TCP on the open connection to the destination, or on a new connection
//! when the destination is not a device's flow.

use super::{Limits, tcp};
use crate::config::Transport;
use crate::core::Core;
use crate::flows::SendError;
use crate::proxy::Outgoing;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

/// How long a new outgoing TCP connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends forwarded messages for every transport.
#[derive(Debug)]
pub struct Sender {
    /// The UDP sockets, each with whether it is IPv6.
    udp: Vec<(bool, Arc<UdpSocket>)>,
    core: Arc<Core>,
    runtime: tokio::runtime::Handle,
    limits: Limits,
}

fn failed(to: SocketAddr, why: &dyn std::fmt::Display) {
    tracing::info!(target: "sipreg::support", destination = %to, error = %why, "Forwarding failed");
}

impl Sender {
    pub(super) fn new(
        udp: Vec<Arc<UdpSocket>>,
        core: Arc<Core>,
        runtime: tokio::runtime::Handle,
        limits: Limits,
    ) -> Sender {
        let udp = udp
            .into_iter()
            .map(|s| (s.local_addr().is_ok_and(|a| a.is_ipv6()), s))
            .collect();
        Sender {
            udp,
            core,
            runtime,
            limits,
        }
    }

    /// Sends one message; a failure is logged (a stateless proxy has nobody to tell: the
    /// sender's retransmissions and timers take over).
    pub fn send(self: &Arc<Self>, o: Outgoing) {
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
            Transport::Tcp => match self.core.flows().send(to, o.bytes) {
                Ok(()) => {}
                Err((SendError::Gone, bytes)) if !o.to.existing_only => {
                    let me = self.clone();
                    self.runtime
                        .spawn(async move { me.connect(to, bytes).await });
                }
                Err((SendError::Gone, _)) => failed(to, &"the connection is gone"),
                Err((SendError::Full, _)) => failed(to, &"the connection's queue is full"),
            },
        }
    }

    /// Opens a connection, sends `first` on it and serves it like an accepted one (the
    /// responses to what we sent come back on it).
    async fn connect(self: Arc<Self>, to: SocketAddr, first: Vec<u8>) {
        let stream =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(to)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return failed(to, &e),
                Err(_) => return failed(to, &"connect timed out"),
            };
        let limits = self.limits;
        if let Err(e) = tcp::serve(stream, to, self, limits, Some(first)).await {
            tracing::debug!(target: "sipreg::server", peer = %to, error = %e, "tcp connection ended");
        }
    }

    /// The core.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }
}
