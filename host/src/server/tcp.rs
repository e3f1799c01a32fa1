//! TCP: Content-Length framing, CRLF keep-alives answered (RFC 5626 section 4.4.1), a
//! maximum message size, an idle timeout, and replies on the connection the request came on.

use super::Limits;
use crate::config::Transport;
use crate::core::{Core, now_ms};
use crate::sip::frame::{Frame, FrameError, next_frame};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub(super) async fn spawn(
    addr: SocketAddr,
    core: Arc<Core>,
    limits: Limits,
    tasks: &mut JoinSet<()>,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tasks.spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let core = core.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, peer, core, limits).await {
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
    Ok(local)
}

async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    core: Arc<Core>,
    limits: Limits,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(2048);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Answer everything complete in the buffer before reading more.
        loop {
            match next_frame(&buf, limits.max_message_size) {
                Ok(Frame::Message(n)) => {
                    out.clear();
                    core.handle_guarded(&buf[..n], peer, Transport::Tcp, now_ms(), &mut out);
                    if !out.is_empty() {
                        stream.write_all(&out).await?;
                    }
                    buf.drain(..n);
                }
                Ok(Frame::Ping(n)) => {
                    stream.write_all(b"\r\n").await?;
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
        let read = tokio::time::timeout(limits.tcp_idle_timeout, stream.read(&mut chunk)).await;
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
