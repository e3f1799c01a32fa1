//! UDP: one socket read by plain threads (`Limits::udp_readers`: one per core the process
//! may use, more with a Redis store), each doing a blocking receive, handling the request inline and sending the reply: two system calls
//! per message and no wake-up through an event loop (the way Kamailio's UDP workers run).

use super::Limits;
use super::send::Sender;
use crate::config::Transport;
use crate::core::{Output, Packet, Parked};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const RECV_BUFFER: usize = 4 << 20;
/// How often an idle reader looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Binds the socket.
pub(super) fn bind(addr: SocketAddr) -> io::Result<Arc<UdpSocket>> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(STOP_POLL))?;
    Ok(Arc::new(socket))
}

/// Starts the reader threads of a bound socket (added to `readers`); they end when `stop`
/// is set, after the message they are handling.
pub(super) fn spawn(
    socket: &Arc<UdpSocket>,
    sender: &Arc<Sender>,
    limits: Limits,
    stop: &Arc<AtomicBool>,
    readers: &mut Vec<std::thread::JoinHandle<()>>,
) -> io::Result<()> {
    for i in 0..limits.udp_readers {
        let (socket, sender, stop) = (socket.clone(), sender.clone(), stop.clone());
        readers.push(
            std::thread::Builder::new()
                .name(format!("sipreg-udp-{i}"))
                .spawn(move || serve(&socket, &sender, limits, &stop))?,
        );
    }
    Ok(())
}

fn serve(socket: &Arc<UdpSocket>, sender: &Arc<Sender>, limits: Limits, stop: &AtomicBool) {
    let core = sender.core();
    // A hook that waits starts its I/O and timers here, on the runtime's drivers.
    let _runtime = sender.runtime().enter();
    let mut buf = vec![0u8; limits.max_message_size + 1];
    let mut out = Output::default();
    out.reply.reserve(2048);
    while !stop.load(Ordering::Relaxed) {
        let (n, src) = match socket.recv_from(&mut buf) {
            Ok(v) => v,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
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
        if crate::stun::is_stun(&buf[..n]) {
            // A STUN keep-alive (SIP starts with a letter, STUN with a byte below 0x40).
            if crate::stun::answer(&buf[..n], src, &mut out.reply) {
                core.counters.stun_answered.fetch_add(1, Ordering::Relaxed);
                send(socket, &out.reply, src);
            }
            continue;
        }
        let packet = Packet {
            bytes: &buf[..n],
            source: src,
            transport: Transport::Udp,
            now_ms: core.clock().now_ms(),
            peer_cert: None,
        };
        core.handle_guarded(packet, &mut out);
        if let Some(Parked(rest)) = out.parked.take() {
            // Its hooks wait: a task of the runtime sends what it produces.
            let (socket, to) = (socket.clone(), sender.clone());
            sender.runtime().spawn(async move {
                let mut out = rest.await;
                reply(&socket, &to, &mut out, src);
            });
            continue;
        }
        reply(socket, sender, &mut out, src);
    }
}

/// Sends what handling a datagram from `src` produced: the reply now, once the store has
/// it or after the guard's pause; the forward through the sender.
fn reply(socket: &Arc<UdpSocket>, sender: &Sender, out: &mut Output, src: SocketAddr) {
    if let Some(d) = out.durable.take() {
        // The store's committer sends it once the change is on disk. Copies of just
        // their length: the buffers keep their capacity for the next request.
        let (socket, reply, fallback) = (socket.clone(), out.reply.clone(), out.fallback.clone());
        d.then(move |stored| send(&socket, if stored { &reply } else { &fallback }, src));
    } else if let Some(pause) = out.delay
        && !out.reply.is_empty()
    {
        let (socket, reply) = (socket.clone(), out.reply.clone());
        sender.later(pause, move || send(&socket, &reply, src));
    } else if !out.reply.is_empty() {
        send(socket, &out.reply, src);
    }
    if let Some(f) = out.forward.take() {
        sender.send(f);
    }
}

fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(e) = socket.send_to(bytes, to) {
        tracing::debug!(target: "sipreg::server", error = %e, destination = %to, "udp send error");
    }
}
