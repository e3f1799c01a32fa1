//! The running server: listeners for every configured address, the admin listener, the
//! timer (binding expiry, store purge, the log gate's summaries, qualify probes) and the
//! watcher of the TLS certificates.

mod accept;
pub mod admission;
mod deliver;
mod handshake;
mod send;
mod stream;
mod tcp;
mod udp;
mod ws;

pub use admission::Admission;
pub use send::Sender;

/// The WebSocket pieces that need no connection (the upgrade's check, the limits, what a
/// message is to SIP), for the fuzz target.
pub mod websocket {
    pub use super::handshake::{upgrade_allowed, ws_config};
    pub use super::ws::{Incoming, incoming};
}

use crate::config::{Config, Listen, StoreKind, Transport};
use crate::core::Core;
use crate::tls::{ClientTls, PeerCert, ServerTls};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;

/// Limits the transports apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_size: usize,
    pub tcp_idle_timeout: Duration,
    pub tcp_first_byte_timeout: Duration,
    pub tcp_message_timeout: Duration,
    /// Reader threads per UDP socket.
    pub udp_readers: usize,
}

/// The other end of a connection.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// The client's verified certificate (TLS, WSS with `verify_client`).
    pub cert: Option<Arc<PeerCert>>,
}

/// What the TLS and WebSocket listeners and outgoing TLS need.
#[derive(Debug)]
pub(crate) struct Secure {
    pub server: Option<Arc<ServerTls>>,
    /// Outgoing TLS, made when first needed: the system's anchors and `[tls] ca`.
    client: std::sync::OnceLock<Result<ClientTls, String>>,
    ca: Option<std::path::PathBuf>,
    pub handshake_timeout: Duration,
    pub upgrade_timeout: Duration,
    pub origins: Vec<String>,
}

impl Secure {
    /// Loads `[tls]` (logging what it warns of) and `[websocket]`.
    fn load(config: &Config) -> io::Result<Secure> {
        let invalid =
            |errors: Vec<String>| io::Error::new(io::ErrorKind::InvalidInput, errors.join("\n"));
        let server = match &config.tls {
            Some(t) => {
                let (server, warnings) = ServerTls::load(t, &config.base_dir).map_err(invalid)?;
                for w in warnings {
                    tracing::warn!(target: "sipreg::server", "{w}");
                }
                Some(Arc::new(server))
            }
            None => None,
        };
        let ca = config.tls.as_ref().and_then(|t| t.ca.as_ref());
        let secure = Secure {
            server,
            client: std::sync::OnceLock::new(),
            ca: ca.map(|c| config.base_dir.join(c)),
            handshake_timeout: Duration::from_secs(
                config.tls.as_ref().map_or(10, |t| t.handshake_timeout),
            ),
            upgrade_timeout: Duration::from_secs(config.websocket.upgrade_timeout),
            origins: config.websocket.origins.clone(),
        };
        // A `ca` that cannot be read is a start-up error, not a failed call later.
        if secure.ca.is_some() {
            secure.client().map_err(|e| invalid(vec![e.to_owned()]))?;
        }
        Ok(secure)
    }

    /// The configuration of outgoing TLS (read once: the system's anchors and `[tls] ca`).
    ///
    /// # Errors
    /// `ca` could not be read (checked at start when `[tls]` names it).
    pub fn client(&self) -> Result<&ClientTls, &str> {
        self.client
            .get_or_init(|| ClientTls::new(self.ca.as_deref()))
            .as_ref()
            .map_err(String::as_str)
    }
}

/// Reader threads per UDP socket: one per core the process may use (at most 4), as
/// Kamailio's UDP workers; with Redis four times that (at most 16), since a reader then
/// spends most of a REGISTER waiting for Redis's answer.
fn udp_readers(config: &Config) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match config.store.kind {
        StoreKind::Redis => (cores * 4).clamp(4, 16),
        _ => cores.clamp(1, 4),
    }
}

/// A started server. Dropping it stops every task and thread.
#[derive(Debug)]
pub struct Running {
    /// The bound addresses (with the real port where the configuration said 0).
    pub bound: Vec<Listen>,
    /// The admin listener's address, with `[admin]`.
    pub admin: Option<SocketAddr>,
    pub core: Arc<Core>,
    tasks: JoinSet<()>,
    stop: Arc<AtomicBool>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The first bound address of a transport.
    pub fn addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.bound
            .iter()
            .find(|l| l.transport == transport)
            .map(|l| l.addr)
    }

    /// Stops every task and thread (as dropping it does).
    pub fn stop(self) {}

    /// A graceful stop (SIGTERM): no new connection is accepted, the timer stops, each UDP
    /// reader finishes the message it is handling, then the store stores what is pending
    /// (the 200s waiting for it go out). False if the store could not.
    pub fn shutdown(mut self) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        self.tasks.abort_all();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.core.registrar().location().flush()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tasks.abort_all();
    }
}

/// Reloads the TLS certificates when one of their files changes (looked at every
/// second) and on SIGHUP; a refused reload logs why and keeps the previous ones.
async fn watch_certificates(server: Arc<ServerTls>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = hangup => true,
        };
        if !forced && !server.changed() {
            continue;
        }
        let s = server.clone();
        match tokio::task::spawn_blocking(move || s.reload()).await {
            Ok(Ok(warnings)) => {
                tracing::info!(target: "sipreg::server", "TLS certificates reloaded");
                for w in warnings {
                    tracing::warn!(target: "sipreg::server", "{w}");
                }
            }
            Ok(Err(errors)) => {
                for e in errors {
                    tracing::error!(target: "sipreg::server", "TLS certificates not reloaded (the previous ones keep serving): {e}");
                }
            }
            Err(_) => {}
        }
    }
}

/// Binds every listen address and starts serving.
///
/// # Errors
/// The first address that cannot be bound, named in the error.
pub async fn start(config: &Config, core: Arc<Core>) -> io::Result<Running> {
    let limits = Limits {
        max_message_size: config.server.max_message_size,
        tcp_idle_timeout: Duration::from_secs(config.server.tcp_idle_timeout),
        tcp_first_byte_timeout: Duration::from_secs(config.server.tcp_first_byte_timeout),
        tcp_message_timeout: Duration::from_secs(config.server.tcp_message_timeout),
        udp_readers: udp_readers(config),
    };
    let secure = Arc::new(Secure::load(config)?);
    let mut tasks = JoinSet::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut bound = Vec::new();
    let (mut udp_sockets, mut tcp_listeners) = (Vec::new(), Vec::new());
    // Bind everything first: the sender needs every UDP socket, the proxy every address.
    for l in &config.server.listen {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {l}: {e}"));
        let addr = match l.transport {
            Transport::Udp => {
                let s = udp::bind(l.addr).map_err(named)?;
                let a = s.local_addr()?;
                udp_sockets.push(s);
                a
            }
            transport => {
                let t = tcp::bind(l.addr).await.map_err(named)?;
                let a = t.local_addr()?;
                tcp_listeners.push((t, transport));
                a
            }
        };
        tracing::info!(target: "sipreg::server", transport = %l.transport, address = %addr, "listening");
        bound.push(Listen {
            transport: l.transport,
            addr,
        });
    }
    let admin = match &config.admin {
        Some(a) => Some(crate::admin::start(a, core.clone(), &mut tasks).await?),
        None => None,
    };
    core.proxy().set_locals(bound.clone());
    let (sender, connects) = Sender::new(udp_sockets.clone(), core.clone());
    let sender = Arc::new(sender);
    let admission = Admission::new(
        config
            .server
            .tcp_max_connections
            .unwrap_or_else(admission::default_max_connections),
        config.server.tcp_max_per_source,
    );
    let serving = accept::Serving {
        sender: sender.clone(),
        admission,
        limits,
        secure: secure.clone(),
    };
    tcp::connector(connects, serving.clone(), &mut tasks);
    let mut readers = Vec::new();
    for s in &udp_sockets {
        if let Err(e) = udp::spawn(s, &sender, limits, &stop, &mut readers) {
            stop.store(true, Ordering::Relaxed); // ends the UDP readers already started
            return Err(e);
        }
    }
    for (t, transport) in tcp_listeners {
        accept::spawn(t, transport, serving.clone(), &mut tasks);
    }
    if let Some(server) = &secure.server {
        tasks.spawn(watch_certificates(server.clone()));
    }
    let timer_core = core.clone();
    let timer_sender = sender.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = timer_core.clock().now_ms();
            // Off the runtime's threads: the store may wait for its disk or its Redis.
            let core = timer_core.clone();
            let probes = tokio::task::spawn_blocking(move || {
                core.expire_due(now);
                core.registrar().log_gate().flush(now);
                core.qualify_due(now)
            })
            .await
            .unwrap_or_default();
            for probe in probes {
                timer_sender.send(probe);
            }
        }
    });
    Ok(Running {
        bound,
        admin,
        core,
        tasks,
        stop,
        readers,
    })
}
