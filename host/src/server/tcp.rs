//! TCP: Content-Length framing, CRLF keep-alives answered (RFC 5626 section 4.4.1), a
//! maximum message size, an idle timeout, and replies on the connection the request came
//! on. Each connection is registered in [`crate::flows::Flows`] while it is open, so that
//! requests for a device that registered over it, and responses to requests that came on
//! it, go out on it; a writer task drains its queue.

use super::Limits;
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
    limits: Limits,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        while let Some((to, first)) = asked.recv().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let connect = tokio::net::TcpStream::connect(to);
                let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return failed(to, &e),
                    Err(_) => return failed(to, &"connect timed out"),
                };
                if let Err(e) = serve(stream, to, sender, limits, Some(first)).await {
                    tracing::debug!(target: "sipreg::server", peer = %to, error = %e, "tcp connection ended");
                }
            });
        }
    });
}

pub(super) fn spawn(
    listener: TcpListener,
    sender: Arc<Sender>,
    limits: Limits,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let sender = sender.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, peer, sender, limits, None).await {
                            tracing::debug!(target: "sipreg::server", peer = %peer, error = %e, "tcp connection ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(target: "sipreg::server", error = %e, "tcp accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    });
}

/// Serves one connection, accepted or opened by us (then `first` is what we opened it
/// for), until the peer closes it, it idles out or breaks the framing.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    sender: Arc<Sender>,
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
    if let Some(bytes) = first {
        let _ = tx.send(bytes).await;
    }
    let result = read_loop(&mut reader, peer, &sender, &tx, limits).await;
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
) -> io::Result<()> {
    let core = sender.core();
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
        let read = tokio::time::timeout(limits.tcp_idle_timeout, reader.read(&mut chunk)).await;
        match read {
            Err(_) => {
                tracing::debug!(target: "sipreg::server", peer = %peer, "tcp idle timeout");
                return Ok(());
            }
            Ok(Ok(0)) => return Ok(()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e),
        }
    }
}
