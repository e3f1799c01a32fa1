//! SIP over a byte stream (TCP, TLS): Content-Length framing, CRLF keep-alives answered
//! (RFC 5626 section 4.4.1), a maximum message size, the idle, first-byte and message
//! timeouts, and replies on the connection the request came on. The connection is
//! registered in [`crate::flows::Flows`] while it is open, so that requests for a device
//! that registered over it, and responses to requests that came on it, go out on it; a
//! writer task drains its queue.

use super::Limits;
use super::admission::Ticket;
use super::deliver::deliver;
use super::{Peer, Sender};
use crate::core::{Output, Packet};
use crate::flows::QUEUE;
use crate::sip::frame::{Frame, FrameError, next_frame};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Serves one connection, accepted or opened by us (then `first` is what we opened it
/// for), until the peer closes it, it idles out or breaks the framing. It comes as its
/// two halves: TCP's own (`into_split`, no lock), TLS's through `tokio::io::split`.
pub(super) async fn serve<R, W>(
    (mut reader, mut writer): (R, W),
    peer: Peer,
    sender: Arc<Sender>,
    _ticket: Ticket,
    limits: Limits,
    first: Option<Vec<u8>>,
) -> io::Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let core = sender.core().clone();
    let _registered = core.flows().register(peer.transport, peer.addr, tx.clone());
    let write = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let accepted = first.is_none();
    if let Some(bytes) = first {
        let _ = tx.send(bytes).await;
    }
    let result = read_loop(&mut reader, &peer, &sender, &tx, limits, accepted).await;
    drop(tx);
    drop(_registered);
    let _ = write.await;
    result
}

async fn read_loop<R: AsyncRead + Unpin>(
    reader: &mut R,
    peer: &Peer,
    sender: &Arc<Sender>,
    tx: &mpsc::Sender<Vec<u8>>,
    limits: Limits,
    accepted: bool,
) -> io::Result<()> {
    let core = sender.core();
    // An accepted connection must speak first, and soon; a message begun must end within
    // tcp_message_timeout of its first byte (a slow trickle is no way to hold a connection).
    let mut silent_yet = accepted;
    let mut begun: Option<tokio::time::Instant> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out = Output::default();
    // 4 KiB a read: most SIP messages fit; an idle connection costs little.
    let mut chunk = vec![0u8; 4096];
    let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "writer gone");
    loop {
        // Answer everything complete in the buffer before reading more.
        loop {
            match next_frame(&buf, limits.max_message_size) {
                Ok(Frame::Message(n)) => {
                    out.clear();
                    let packet = Packet {
                        bytes: &buf[..n],
                        source: peer.addr,
                        transport: peer.transport,
                        now_ms: core.clock().now_ms(),
                        peer_cert: peer.cert.as_deref(),
                    };
                    core.handle_guarded(packet, &mut out);
                    deliver(&mut out, tx, sender).await.map_err(|_| closed())?;
                    buf.drain(..n);
                }
                Ok(Frame::Ping(n)) => {
                    tx.send(b"\r\n".to_vec()).await.map_err(|_| closed())?;
                    buf.drain(..n);
                }
                Ok(Frame::Skip(n)) => {
                    buf.drain(..n);
                }
                Ok(Frame::Incomplete) => break,
                Err(e) => {
                    let why = match e {
                        FrameError::TooLarge => "message over max_message_size",
                        FrameError::BadContentLength => "message without a usable Content-Length",
                    };
                    tracing::info!(target: "sipreg::support", peer = %peer.addr, transport = peer.transport.via_token(), reason = why, "Connection closed");
                    core.counters
                        .dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(());
                }
            }
        }
        let now = tokio::time::Instant::now();
        begun = if buf.is_empty() {
            None
        } else {
            begun.or(Some(now))
        };
        let (wait, why) = match begun {
            Some(t) => (
                (t + limits.tcp_message_timeout).saturating_duration_since(now),
                "message not complete within tcp_message_timeout",
            ),
            None if silent_yet => (
                limits.tcp_first_byte_timeout.min(limits.tcp_idle_timeout),
                "nothing sent within tcp_first_byte_timeout",
            ),
            None => (limits.tcp_idle_timeout, "tcp idle timeout"),
        };
        let read = tokio::time::timeout(wait, reader.read(&mut chunk)).await;
        silent_yet = false;
        match read {
            Err(_) => {
                tracing::debug!(target: "sipreg::server", peer = %peer.addr, transport = peer.transport.via_token(), reason = why, "connection closed");
                return Ok(());
            }
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e),
        }
    }
}
