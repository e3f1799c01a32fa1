//! TCP: Content-Length framing, CRLF keep-alives answered (RFC 5626 section 4.4.1), a
//! maximum message size, an idle timeout, and replies on the connection the request came
//! on. Each connection is registered in [`crate::flows::Flows`] while it is open, so that
//! requests for a device that registered over it, and responses to requests that came on
//! it, go out on it; a writer task drains its queue.

use super::Limits;
use super::admission::{Admission, Refused, Ticket};
use super::send::{Connect, Sender, failed};
use crate::config::Transport;
use crate::core::{Output, Packet};
use crate::flows::QUEUE;
use crate::sip::frame::{Frame, FrameError, next_frame};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub(super) async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// How long a new outgoing TCP connection may take to open.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the connections the sender asks for (a forward to a destination without an
/// open connection), each served like an accepted one: the responses come back on it.
pub(super) fn connector(
    mut asked: mpsc::Receiver<Connect>,
    sender: Arc<Sender>,
    admission: Arc<Admission>,
    limits: Limits,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        while let Some((to, first)) = asked.recv().await {
            let Ok(ticket) = admission.admit_outgoing() else {
                failed(to, &"as many TCP connections are open as tcp_max_connections allows");
                continue;
            };
            let sender = sender.clone();
            tokio::spawn(async move {
                let connect = tokio::net::TcpStream::connect(to);
                let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return failed(to, &e),
                    Err(_) => return failed(to, &"connect timed out"),
                };
                if let Err(e) = serve(stream, to, sender, ticket, limits, Some(first)).await {
                    tracing::debug!(target: "sipreg::server", peer = %to, error = %e, "tcp connection ended");
                }
            });
        }
    });
}

pub(super) fn spawn(
    listener: TcpListener,
    sender: Arc<Sender>,
    admission: Arc<Admission>,
    limits: Limits,
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
                    let ticket = match admission.admit(peer.ip()) {
                        Ok(t) => t,
                        Err(why) => {
                            refused(&sender, peer, why);
                            continue; // the stream is dropped: closed at once
                        }
                    };
                    let sender = sender.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, peer, sender, ticket, limits, None).await {
                            tracing::debug!(target: "sipreg::server", peer = %peer, error = %e, "tcp connection ended");
                        }
                    });
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures.is_power_of_two() {
                        tracing::warn!(target: "sipreg::server", error = %e, failures, "tcp accept failed");
                    }
                    let wait = 50u64 << failures.min(5);
                    tokio::time::sleep(std::time::Duration::from_millis(wait.min(1000))).await;
                }
            }
        }
    });
}

/// A connection refused at the door: counted, and logged at debug (an attacker holding
/// connections open would otherwise flood the log).
fn refused(sender: &Sender, peer: SocketAddr, why: Refused) {
    let reason = match why {
        Refused::Full => "tcp_max_connections reached",
        Refused::PerSource => "tcp_max_per_source reached",
    };
    sender
        .core()
        .counters
        .connections_refused
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(target: "sipreg::server", peer = %peer, reason, "TCP connection refused");
}

/// Serves one connection, accepted or opened by us (then `first` is what we opened it
/// for), until the peer closes it, it idles out or breaks the framing.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    sender: Arc<Sender>,
    _ticket: Ticket,
    limits: Limits,
    first: Option<Vec<u8>>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let core = sender.core().clone();
    let _registered = core.flows().register(peer, tx.clone());
    let write = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let accepted = first.is_none();
    if let Some(bytes) = first {
        let _ = tx.send(bytes).await;
    }
    let result = read_loop(&mut reader, peer, &sender, &tx, limits, accepted).await;
    drop(tx);
    drop(_registered);
    let _ = write.await;
    result
}

async fn read_loop(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
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
    let mut chunk = vec![0u8; 16 * 1024];
    let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "writer gone");
    loop {
        // Answer everything complete in the buffer before reading more.
        loop {
            match next_frame(&buf, limits.max_message_size) {
                Ok(Frame::Message(n)) => {
                    out.clear();
                    let packet = Packet {
                        bytes: &buf[..n],
                        source: peer,
                        transport: Transport::Tcp,
                        now_ms: core.clock().now_ms(),
                    };
                    core.handle_guarded(packet, &mut out);
                    if let Some(d) = out.durable.take() {
                        // Sent once the change is on disk, by a task of its own so that
                        // the next requests on this connection need not wait.
                        let (tx, runtime) = (tx.clone(), tokio::runtime::Handle::current());
                        let (reply, fallback) = (
                            std::mem::take(&mut out.reply),
                            std::mem::take(&mut out.fallback),
                        );
                        d.then(move |stored| {
                            runtime.spawn(async move {
                                let _ = tx.send(if stored { reply } else { fallback }).await;
                            });
                        });
                    } else if let Some(pause) = out.delay
                        && !out.reply.is_empty()
                    {
                        // Held by a task of its own, as the store's replies are.
                        let (tx, reply) = (tx.clone(), std::mem::take(&mut out.reply));
                        tokio::spawn(async move {
                            tokio::time::sleep(pause).await;
                            let _ = tx.send(reply).await;
                        });
                    } else if !out.reply.is_empty() {
                        tx.send(std::mem::take(&mut out.reply))
                            .await
                            .map_err(|_| closed())?;
                    }
                    if let Some(f) = out.forward.take() {
                        sender.send(f);
                    }
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
                    tracing::info!(target: "sipreg::support", peer = %peer, reason = why, "TCP connection closed");
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
                tracing::debug!(target: "sipreg::server", peer = %peer, reason = why, "TCP connection closed");
                return Ok(());
            }
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e),
        }
    }
}
