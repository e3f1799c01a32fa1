//! One message in, at most one reply and one forwarded message out: parsing, the syntax
//! checks, `on_request`, and the dispatch to the registrar, OPTIONS or the proxy; responses
//! to the qualify probes or back through the proxy. Transports and in-process tests both
//! call [`Core::handle`].

use crate::clock::Clock;
use crate::config::{Config, ProxyMode, Transport};
use crate::flows::Flows;
use crate::hooks::{Decision, HookChain, RequestInfo, Vars};
use crate::kv::KvStore;
use crate::proxy::{Outgoing, Proxy, Routed};
use crate::qualify::{self, Qualify};
use crate::registrar::{Outcome, Registrar};
use crate::sip::method::{ALLOW, Method};
use crate::sip::request::{self, Refusal};
use crate::sip::response::{encode, encode_salvaged};
use crate::sip::{HeaderName, Message, Reply, StartLine};
use crate::store::{Durable, Stores};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use summary::{summarise_request, summarise_response};

mod io;
mod park;
mod summary;

pub use io::{Handled, Output, Packet};
use park::Seen;
pub use park::{Parked, Parking};

/// Seconds a device is asked to wait (Retry-After) when too many requests are parked.
const PARKED_RETRY_AFTER: &str = "5";

/// Option tags this registrar supports (a `Require` naming any other gets 420).
pub const SUPPORTED: &[&str] = &["outbound", "path"];

/// Counters of what was not answered.
#[derive(Debug, Default)]
pub struct Counters {
    pub dropped: AtomicU64,
    pub responses_ignored: AtomicU64,
    /// Connections refused at the door (`tcp_max_connections`, `tcp_max_per_source`).
    pub connections_refused: AtomicU64,
    /// TLS handshakes that failed or timed out (TLS and WSS listeners).
    pub tls_handshakes_failed: AtomicU64,
    /// WebSocket upgrades refused, failed or timed out (WS and WSS listeners).
    pub ws_upgrades_failed: AtomicU64,
    /// STUN Binding requests answered on the UDP SIP port (RFC 5626 keep-alives).
    pub stun_answered: AtomicU64,
}

/// What a reply waits for before it goes out: the store, or a pause.
#[derive(Debug, Default)]
struct Wait {
    durable: Option<Durable>,
    delay: Option<std::time::Duration>,
}

/// Where and when a request came from, as `decide` reads it (a parked request's future
/// owns the certificate this borrows).
#[derive(Debug)]
struct Arrival<'a> {
    source: SocketAddr,
    transport: Transport,
    now_ms: u64,
    peer_cert: Option<&'a crate::tls::PeerCert>,
    /// When a request that may wait must be answered.
    deadline: Option<std::time::Instant>,
}

/// The request handler shared by all transports.
#[derive(Debug)]
pub struct Core {
    registrar: Registrar,
    qualify: Arc<Qualify>,
    proxy: Proxy,
    flows: Arc<Flows>,
    chain: HookChain,
    kv: Arc<dyn KvStore>,
    clock: Clock,
    pub counters: Counters,
    /// Requests parked while their hooks wait.
    parking: Parking,
}

/// The To tag of our responses: a hash of Call-ID and From, so a retransmitted request
/// gets the same tag.
fn to_tag(msg: &Message) -> String {
    use std::hash::BuildHasher;
    let h = foldhash::fast::FixedState::default()
        .hash_one((msg.header(HeaderName::CallId), msg.header(HeaderName::From)));
    let mut tag = String::with_capacity(16);
    crate::text::push_hex(&mut tag, h, 16);
    tag
}

impl Core {
    /// A core over `chain` (the built-in hook last) and the `stores` its hooks were given;
    /// the wiring point ([`crate::app::App::build`]) makes all three.
    pub fn new(config: &Config, chain: HookChain, stores: &Stores) -> Core {
        let flows = Arc::new(Flows::new());
        let routes = crate::auth::service_route::ServiceRoutes::configured(
            config.auth.nonce_secret.as_deref(),
        );
        let proxy = Proxy::new(
            config,
            stores.location.clone(),
            flows.clone(),
            routes.clone(),
        );
        let qualify = Arc::new(Qualify::new(&config.qualify));
        let registrar = Registrar::new(config, chain.clone(), stores, qualify.clone(), routes);
        Core {
            registrar,
            qualify,
            proxy,
            flows,
            chain,
            kv: stores.kv.clone(),
            clock: stores.clock.clone(),
            counters: Counters::default(),
            parking: Parking::new(config.server.max_waiting),
        }
    }

    /// The clock every transport and timer reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The registrar (for its location store and timer).
    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// The qualify scheduler (its round trips, for `/metrics`).
    pub fn qualify(&self) -> &Qualify {
        &self.qualify
    }

    /// The proxy (the server tells it the bound addresses).
    pub fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    /// The requests parked while their hooks wait.
    pub fn parking(&self) -> &Parking {
        &self.parking
    }

    /// The open TCP connections.
    pub fn flows(&self) -> &Arc<Flows> {
        &self.flows
    }

    /// [`Core::handle`], with a panic (a bug; none is known) turned into a logged, counted
    /// drop, so that a transport's reader goes on serving.
    pub fn handle_guarded(self: &Arc<Self>, p: Packet<'_>, out: &mut Output) -> Handled {
        let src = p.source;
        let run = std::panic::AssertUnwindSafe(|| self.handle(p, out));
        match std::panic::catch_unwind(run) {
            Ok(h) => h,
            Err(_) => {
                out.clear();
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::error!(target: "sipreg::server", source = %src, "request handling panicked; message dropped");
                Handled::Dropped
            }
        }
    }

    /// [`Core::handle`] for a caller off any server's runtime (tests, `sipreg try`): the
    /// hooks run in the context of [`io::offline`], and a request that waits is waited for
    /// ([`Output::settle`]), so `out` holds what is to be sent.
    pub fn handle_offline(self: &Arc<Self>, p: Packet<'_>, out: &mut Output) -> Handled {
        let handled = {
            let _runtime = io::offline().map(|rt| rt.enter());
            self.handle(p, out)
        };
        out.settle();
        handled
    }

    /// Handles one message; a reply, if any, is appended to `out.reply`, a message for
    /// elsewhere put in `out.forward`. A request whose hooks wait is parked: `out.parked`
    /// ends it (the caller drives it and sends what it produces) and [`Handled::Parked`]
    /// is returned.
    pub fn handle(self: &Arc<Self>, p: Packet<'_>, out: &mut Output) -> Handled {
        let Packet {
            bytes,
            source: src,
            transport,
            now_ms,
            ..
        } = p;
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                if summary::about_source(
                    self.registrar.log_gate(),
                    "Unparsable message",
                    src,
                    now_ms,
                ) {
                    tracing::info!(target: "sipreg::support", source = %src, error = %e, "Unparsable message");
                }
                return if encode_salvaged(bytes, src, e.code(), &e.0, &mut out.reply) {
                    Handled::Replied
                } else {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    Handled::Dropped
                };
            }
        };
        if let StartLine::Response { code } = msg.start() {
            return self.response(&msg, *code, src, transport, now_ms, out);
        }
        let Some(top_via) = request::top_via(&msg) else {
            tracing::info!(target: "sipreg::support", source = %src, "Request without a readable Via dropped");
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return Handled::Dropped;
        };
        summarise_request(self.registrar.log_gate(), &msg, src, transport, now_ms);
        let arrival = Arrival {
            source: src,
            transport,
            now_ms,
            peer_cert: p.peer_cert,
            deadline: None,
        };
        if self.chain.may_wait() {
            return self.parkable(msg, &arrival, out);
        }
        // No hook of the chain waits: the request is decided here and now.
        let mut wait = Wait::default();
        let routed = park::poll_once(pin!(self.decide(&msg, top_via, &arrival, &mut wait)))
            .unwrap_or_else(|| {
                tracing::error!(target: "sipreg::hooks", "a hook waited in a chain that does not wait; request answered 500");
                Routed::Reply(Reply::new(500))
            });
        self.answer(&msg, &top_via, &arrival, routed, wait, out)
    }

    /// A request in a chain that may wait: decided at once when its hooks do not wait,
    /// else parked (a retransmission of a parked request is absorbed or answered again).
    fn parkable(self: &Arc<Self>, msg: Message, a: &Arrival<'_>, out: &mut Output) -> Handled {
        let msg = Arc::new(msg);
        let Some(top_via) = request::top_via(&msg) else {
            return Handled::Dropped; // read before: cannot fail
        };
        // The transaction's key is made only while something is parked, or to park this.
        let mut key = None;
        if self.parking.holds_any() {
            let k = park::key(&msg, &top_via);
            match self.parking.seen(&k, a.now_ms) {
                Seen::New => key = Some(k),
                Seen::Waiting => return Handled::Silent,
                Seen::Answered(reply) => {
                    out.reply = reply;
                    return Handled::Replied;
                }
            }
        }
        let (core, m) = (self.clone(), msg.clone());
        let (source, transport, now_ms) = (a.source, a.transport, a.now_ms);
        let cert = a.peer_cert.cloned();
        let deadline = std::time::Instant::now() + self.chain.wait_deadline();
        let mut decided = Box::pin(async move {
            let a = Arrival {
                source,
                transport,
                now_ms,
                peer_cert: cert.as_ref(),
                deadline: Some(deadline),
            };
            let mut out = Output::default();
            let handled = match request::top_via(&m) {
                Some(via) => {
                    let mut wait = Wait::default();
                    let routed = core.decide(&m, via, &a, &mut wait).await;
                    core.answer(&m, &via, &a, routed, wait, &mut out)
                }
                None => Handled::Dropped,
            };
            (handled, out)
        });
        if let Some((handled, o)) = park::poll_once(decided.as_mut()) {
            *out = o;
            return handled;
        }
        let key = key.unwrap_or_else(|| park::key(&msg, &top_via));
        if !self.parking.park(key.clone()) {
            drop(decided); // its hooks' calls end here
            if summary::about_source(
                self.registrar.log_gate(),
                "Too many waiting",
                source,
                now_ms,
            ) {
                tracing::warn!(target: "sipreg::support", source = %source, max = self.parking.max(), "Too many requests waiting for hooks; request answered 503");
            }
            let reply = Reply::with_reason(503, "Too many requests waiting")
                .header("Retry-After", PARKED_RETRY_AFTER);
            encode(
                &msg,
                &top_via,
                source,
                &reply,
                &to_tag(&msg),
                &mut out.reply,
            );
            return Handled::Replied;
        }
        let core = self.clone();
        out.parked = Some(Parked(Box::pin(async move {
            let (_, out) = decided.await;
            core.parking
                .answered(key, &out.reply, transport, core.clock.now_ms());
            out
        })));
        Handled::Parked
    }

    /// What `decide` routed, written into `out`.
    fn answer(
        &self,
        msg: &Message,
        top_via: &crate::sip::via::Via<'_>,
        a: &Arrival<'_>,
        routed: Routed,
        wait: Wait,
        out: &mut Output,
    ) -> Handled {
        let reply = match routed {
            Routed::Reply(r) => r,
            Routed::Drop => return Handled::Silent,
            Routed::Forward(f) => {
                out.forward = Some(f);
                return Handled::Forwarded;
            }
        };
        let tag = to_tag(msg);
        encode(msg, top_via, a.source, &reply, &tag, &mut out.reply);
        if let Some(d) = wait.durable {
            let failed = Reply::with_reason(500, "Location store failure");
            encode(msg, top_via, a.source, &failed, &tag, &mut out.fallback);
            out.durable = Some(d);
        }
        out.delay = wait.delay;
        let gate = self.registrar.log_gate();
        summarise_response(gate, msg, a.source, a.transport, &reply, a.now_ms);
        Handled::Replied
    }

    /// A response: the answer to one of our qualify probes, or to a request the proxy
    /// forwarded (sent on, less our Via); anything else is counted and ignored.
    fn response(
        &self,
        msg: &Message,
        code: u16,
        src: SocketAddr,
        transport: Transport,
        now_ms: u64,
        out: &mut Output,
    ) -> Handled {
        if let Some(cid) = msg.header(HeaderName::CallId)
            && cid.starts_with(qualify::CALL_ID_PREFIX)
            && self.qualify.answered(cid, now_ms)
        {
            return Handled::Silent;
        }
        let forward = match self.proxy.mode() {
            ProxyMode::Proxy => self.proxy.response(msg),
            _ => None,
        };
        tracing::info!(
            target: "sipreg::support",
            src_address = %src.ip(),
            src_port = src.port(),
            transport = transport.via_token(),
            status_code = code,
            from = msg.header(HeaderName::From).unwrap_or(""),
            to = msg.header(HeaderName::To).unwrap_or(""),
            call_id = msg.header(HeaderName::CallId).unwrap_or(""),
            cseq = msg.header(HeaderName::CSeq).unwrap_or(""),
            forwarded_to = %forward.as_ref().map(|f| f.to.addr.to_string()).unwrap_or_default(),
            "Summarised received SIP response"
        );
        match forward {
            Some(f) => {
                out.forward = Some(f);
                Handled::Forwarded
            }
            None => {
                self.counters
                    .responses_ignored
                    .fetch_add(1, Ordering::Relaxed);
                Handled::Silent
            }
        }
    }

    async fn decide(
        &self,
        msg: &Message,
        top_via: crate::sip::via::Via<'_>,
        p: &Arrival<'_>,
        wait: &mut Wait,
    ) -> Routed {
        let (src, transport, now_ms) = (p.source, p.transport, p.now_ms);
        let checked = match request::check(msg, top_via) {
            Ok(c) => c,
            Err(Refusal { code, reason }) => {
                if summary::about_source(
                    self.registrar.log_gate(),
                    "Malformed request",
                    src,
                    now_ms,
                ) {
                    tracing::info!(target: "sipreg::support", source = %src, status = code, reason = %reason, "Malformed request");
                }
                return Routed::Reply(Reply::with_reason(code, reason));
            }
        };
        let method = msg.method().cloned().unwrap_or(Method::Options);
        let mode = self.proxy.mode();
        // An ACK for a final response of ours ends here (its To tag is ours).
        if method.is_ack()
            && (mode != ProxyMode::Proxy || checked.to.tag() == Some(to_tag(msg).as_str()))
        {
            return Routed::Drop;
        }
        // What the registrar answers itself: REGISTER, OPTIONS to the server (no user
        // part: a device's keep-alive), and everything when the proxy is off.
        let ours = mode == ProxyMode::Off
            || method == Method::Register
            || (method == Method::Options && checked.request_uri.user.is_none());
        // RFC 3261 section 8.2.2.3 for what we answer, 16.3 item 5 for what we forward.
        let header = if ours {
            HeaderName::Require
        } else {
            HeaderName::ProxyRequire
        };
        if !matches!(&method, Method::Known(rsip::Method::Cancel)) {
            let unsupported: Vec<&str> = msg
                .headers_named(header)
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty() && !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(t)))
                .collect();
            if !unsupported.is_empty() {
                tracing::info!(target: "sipreg::support", source = %src, unsupported = %unsupported.join(", "), "Unsupported extension required");
                return Routed::Reply(
                    Reply::new(420).header("Unsupported", unsupported.join(", ")),
                );
            }
        }
        let vars = Vars::default();
        let req = RequestInfo {
            msg,
            source: src,
            transport,
            vars: &vars,
            now_ms,
            peer_cert: p.peer_cert,
            deadline: p.deadline,
        };
        match self.chain.on_request(&req).await {
            Ok(Decision::Continue | Decision::Accept) => {}
            Ok(Decision::Respond(r)) => return Routed::Reply(r),
            Ok(Decision::Drop) => return Routed::Drop,
            Err(e) => return Routed::Reply(e.reply()),
        }
        if !ours {
            if mode == ProxyMode::Redirect && matches!(&method, Method::Known(rsip::Method::Cancel))
            {
                // The INVITE was answered at once: nothing is left to cancel.
                return Routed::Reply(Reply::new(481));
            }
            return match self.proxy.route(&req, &checked, &self.chain).await {
                // An ACK is never answered (RFC 3261 section 17.2.1); one that cannot be
                // routed is dropped (the proxy logged why).
                Routed::Reply(_) if method.is_ack() => Routed::Drop,
                routed => routed,
            };
        }
        match method {
            Method::Register => match self.registrar.register(&req, &checked, now_ms).await {
                Outcome::Reply(r) => Routed::Reply(r),
                Outcome::Stored(r, d) => {
                    wait.durable = Some(d);
                    Routed::Reply(r)
                }
                Outcome::Held(r, d) => {
                    wait.delay = Some(d);
                    Routed::Reply(r)
                }
                Outcome::Drop => Routed::Drop,
            },
            Method::Options => Routed::Reply(
                Reply::new(200)
                    .header("Allow", ALLOW)
                    .header("Accept", "application/sdp")
                    .header("Supported", SUPPORTED.join(", ")),
            ),
            Method::Other(_) => Routed::Reply(Reply::new(501).header("Allow", ALLOW)),
            // The proxy is off: nothing is routed (a route hook may still answer).
            Method::Known(_) => self.proxy.route(&req, &checked, &self.chain).await,
        }
    }

    /// What the probes say of a binding.
    pub fn reach(&self, registration_id: &uuid::Uuid) -> qualify::Reach {
        self.qualify.reach(registration_id)
    }

    /// The OPTIONS probes due now (the server's timer calls this every second and sends
    /// them); bindings that just became unreachable are removed when so configured.
    pub fn qualify_due(&self, now_ms: u64) -> Vec<Outgoing> {
        let tick = self.qualify.tick(now_ms);
        for (aor, id) in &tick.remove {
            self.registrar.remove_unreachable(aor, id);
        }
        let location = self.registrar.location();
        let mut out = Vec::with_capacity(tick.due.len());
        for due in tick.due {
            let Ok(bindings) = location.lookup(&due.aor, now_ms) else {
                continue; // the store is down: no probe this time
            };
            let found = bindings
                .into_iter()
                .find(|b| b.registration_id == due.registration_id);
            match found.and_then(|b| self.proxy.probe(&b, &due.call_id)) {
                Some(o) => out.push(o),
                None => self.qualify.forget(&due.registration_id),
            }
        }
        out
    }

    /// Expires due bindings and store keys (the server's timer calls this every second);
    /// returns how many bindings went.
    pub fn expire_due(&self, now_ms: u64) -> usize {
        self.kv.purge(now_ms);
        self.registrar.expire_due(now_ms)
    }
}
