//! The accept loop of every connection-oriented listener (TCP, TLS, WS, WSS): the door
//! ([`Admission`]), a backoff after a failed accept, then the connection's own task: the
//! TLS handshake and the WebSocket upgrade where the transport has them, then SIP.

use super::admission::{Admission, Refused, Ticket};
use super::{Limits, Peer, Secure, Sender, handshake, stream, ws};
use crate::transport::Transport;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What a listener needs besides its socket.
#[derive(Debug, Clone)]
pub(super) struct Serving {
    pub sender: Arc<Sender>,
    pub admission: Arc<Admission>,
    pub limits: Limits,
    pub secure: Arc<Secure>,
}

pub(super) fn spawn(
    listener: TcpListener,
    transport: Transport,
    serving: Serving,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        // After a failed accept (out of descriptors, say) wait, longer each time in a row
        // (50 ms to 1 s), and log the 1st, 2nd, 4th, 8th ... failure, not every one.
        let mut failures: u32 = 0;
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    failures = 0;
                    let ticket = match serving.admission.admit(peer.ip()) {
                        Ok(t) => t,
                        Err(why) => {
                            refused(&serving.sender, transport, peer, why);
                            continue; // the stream is dropped: closed at once
                        }
                    };
                    let serving = serving.clone();
                    tokio::spawn(async move {
                        if let Err(e) = open(stream, peer, transport, &serving, ticket).await {
                            tracing::debug!(target: "sipreg::server", peer = %peer, transport = transport.via_token(), error = %e, "connection ended");
                        }
                    });
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures.is_power_of_two() {
                        tracing::warn!(target: "sipreg::server", transport = transport.via_token(), error = %e, failures, "accept failed");
                    }
                    let wait = 50u64 << failures.min(5);
                    tokio::time::sleep(std::time::Duration::from_millis(wait.min(1000))).await;
                }
            }
        }
    });
}

/// Serves an accepted connection as its transport says.
async fn open(
    stream: TcpStream,
    addr: SocketAddr,
    transport: Transport,
    serving: &Serving,
    ticket: Ticket,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (sender, limits, secure) = (serving.sender.clone(), serving.limits, &serving.secure);
    let mut peer = Peer {
        transport,
        addr,
        cert: None,
    };
    match transport {
        Transport::Udp => Ok(()),
        Transport::Tcp => {
            stream::serve(stream.into_split(), peer, sender, ticket, limits, None).await
        }
        Transport::Tls => {
            let Some((tls, cert)) = handshake::tls(stream, &peer, secure, &sender).await else {
                return Ok(());
            };
            peer.cert = cert;
            stream::serve(tokio::io::split(tls), peer, sender, ticket, limits, None).await
        }
        Transport::Ws => {
            let Some(ws) = handshake::websocket(stream, &peer, secure, &sender, limits).await
            else {
                return Ok(());
            };
            ws::serve(ws, peer, sender, ticket, limits).await
        }
        Transport::Wss => {
            let Some((tls, cert)) = handshake::tls(stream, &peer, secure, &sender).await else {
                return Ok(());
            };
            peer.cert = cert;
            let Some(ws) = handshake::websocket(tls, &peer, secure, &sender, limits).await else {
                return Ok(());
            };
            ws::serve(ws, peer, sender, ticket, limits).await
        }
    }
}

/// A connection refused at the door: counted, and logged at debug (an attacker holding
/// connections open would otherwise flood the log).
fn refused(sender: &Sender, transport: Transport, peer: SocketAddr, why: Refused) {
    let reason = match why {
        Refused::Full => "tcp_max_connections reached",
        Refused::PerSource => "tcp_max_per_source reached",
    };
    sender
        .core()
        .counters
        .connections_refused
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(target: "sipreg::server", peer = %peer, transport = transport.via_token(), reason, "connection refused");
}
