//! SIP over WebSocket (RFC 7118): one SIP message per text or binary message, replies as
//! text messages (binary when a body is not UTF-8), a CRLF CRLF keep-alive answered with
//! CRLF as on TCP (SIP.js and JsSIP send it), WebSocket pings answered by tungstenite, an
//! idle timeout, the size limit enforced on every frame and message. The connection is a
//! flow (RFC 7118 section 5): it is registered in [`crate::flows::Flows`] while it is
//! open, and requests for a device registered over it go out on it.

use super::admission::Ticket;
use super::deliver::deliver;
use super::{Limits, Peer, Sender};
use crate::core::{Output, Packet};
use crate::flows::QUEUE;
use futures_util::{SinkExt, StreamExt};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Serves one upgraded connection until it closes, idles out or breaks a limit.
pub(super) async fn serve<S>(
    ws: WebSocketStream<S>,
    peer: Peer,
    sender: Arc<Sender>,
    _ticket: Ticket,
    limits: Limits,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut messages) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let core = sender.core().clone();
    let _registered = core.flows().register(peer.transport, peer.addr, tx.clone());
    let write = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let message = match String::from_utf8(bytes) {
                Ok(text) => Message::text(text),
                Err(e) => Message::binary(e.into_bytes()),
            };
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut out = Output::default();
    let result = loop {
        let next = tokio::time::timeout(limits.tcp_idle_timeout, messages.next()).await;
        let message = match next {
            Err(_) => {
                tracing::debug!(target: "sipreg::server", peer = %peer.addr, transport = peer.transport.via_token(), reason = "tcp idle timeout", "connection closed");
                break Ok(());
            }
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break Ok(()),
            Ok(Some(Err(e))) => break Err(closed_by(&e, &peer, &sender)),
            Ok(Some(Ok(m))) => m,
        };
        let bytes = match incoming(&message) {
            Incoming::Sip(bytes) => bytes,
            Incoming::Ping => {
                if tx.send(b"\r\n".to_vec()).await.is_err() {
                    break Ok(());
                }
                continue;
            }
            Incoming::Nothing => continue,
        };
        out.clear();
        let packet = Packet {
            bytes,
            source: peer.addr,
            transport: peer.transport,
            now_ms: core.clock().now_ms(),
            peer_cert: peer.cert.as_deref(),
        };
        core.handle_guarded(packet, &mut out);
        if deliver(&mut out, &tx, &sender).await.is_err() {
            break Ok(());
        }
    };
    drop(tx);
    drop(_registered);
    let _ = write.await;
    result
}

/// What a WebSocket message is to SIP.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A SIP message (one per text or binary message, RFC 7118 section 5.1).
    Sip(&'a [u8]),
    /// RFC 5626 section 4.4.1's CRLF CRLF ping, as SIP.js and JsSIP send it: answer CRLF.
    Ping,
    /// Nothing to answer: line ends alone, a WebSocket ping or pong (tungstenite answers
    /// pings), a close.
    Nothing,
}

/// What `message` is to SIP.
pub fn incoming(message: &Message) -> Incoming<'_> {
    let bytes: &[u8] = match message {
        Message::Text(t) => t.as_bytes(),
        Message::Binary(b) => b,
        _ => return Incoming::Nothing,
    };
    if bytes == b"\r\n\r\n" {
        Incoming::Ping
    } else if bytes.iter().all(|b| matches!(b, b'\r' | b'\n')) {
        Incoming::Nothing
    } else {
        Incoming::Sip(bytes)
    }
}

/// The error that ended a connection: a broken limit is logged on the support log and
/// counted as a dropped message; anything else (a reset, a protocol error) at debug.
fn closed_by(e: &WsError, peer: &Peer, sender: &Sender) -> io::Error {
    if let WsError::Capacity(c) = e {
        tracing::info!(target: "sipreg::support", peer = %peer.addr, transport = peer.transport.via_token(), reason = %format!("message over max_message_size ({c})"), "Connection closed");
        sender
            .core()
            .counters
            .dropped
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    io::Error::other(e.to_string())
}
