//! UDP: one socket, read by as many tasks as the runtime has workers, each answering
//! inline. The receive buffer is enlarged so a burst does not overflow it.

use super::Limits;
use crate::config::Transport;
use crate::core::{Core, now_ms};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

const RECV_BUFFER: usize = 4 << 20;

pub(super) fn spawn(
    addr: SocketAddr,
    core: Arc<Core>,
    limits: Limits,
    tasks: &mut JoinSet<()>,
) -> io::Result<SocketAddr> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket = Arc::new(UdpSocket::from_std(socket.into())?);
    let local = socket.local_addr()?;
    let readers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    for _ in 0..readers {
        let socket = socket.clone();
        let core = core.clone();
        tasks.spawn(async move {
            let mut buf = vec![0u8; limits.max_message_size + 1];
            let mut out = Vec::with_capacity(2048);
            loop {
                let (n, src) = match socket.recv_from(&mut buf).await {
                    Ok(v) => v,
                    Err(e) => {
                        // ICMP errors from earlier sends surface here on some systems.
                        tracing::debug!(target: "sipreg::server", error = %e, "udp receive error");
                        continue;
                    }
                };
                if n > limits.max_message_size {
                    core.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(target: "sipreg::support", source = %src, "Datagram over max_message_size dropped");
                    continue;
                }
                if buf[..n].iter().all(|b| b.is_ascii_whitespace()) {
                    continue; // a keep-alive
                }
                out.clear();
                core.handle(&buf[..n], src, Transport::Udp, now_ms(), &mut out);
                if !out.is_empty()
                    && let Err(e) = socket.send_to(&out, src).await
                {
                    tracing::debug!(target: "sipreg::server", error = %e, destination = %src, "udp send error");
                }
            }
        });
    }
    Ok(local)
}
