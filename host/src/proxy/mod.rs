//! Routing requests that are not for the registrar: a stateless proxy (RFC 3261 sections
//! 16 and 16.11) that forwards to the best binding of the Request-URI's AOR, or a
//! redirect server (302 with every binding).
//!
//! Stateless: nothing is kept per transaction. The branch of our Via is computed from
//! the request (`branch.rs`), so retransmissions, CANCEL and the ACK of a non-2xx answer
//! take the same branch; responses find their way back through a signed flow token in
//! our Via; requests within a dialog find the devices' flows (NAT, TCP) through tokens
//! in our Record-Route (`token.rs`, in the way of RFC 5626 section 5.3).

mod branch;
mod locate;
mod probe;
pub mod rewrite;
pub mod target;
pub mod token;

use crate::auth::service_route::ServiceRoutes;
use crate::config::{Config, Listen, ProxyMode, Transport};
use crate::flows::Flows;
use crate::hooks::{HookChain, RequestInfo, RouteDecision};
use crate::sip::method::ALLOW;
use crate::sip::name_addr::NameAddr;
use crate::sip::request::{Checked, top_via};
use crate::sip::uri::SipUri;
use crate::sip::via::{Via, host_ip};
use crate::sip::{HeaderName, Message, Reply};
use crate::store::{self, LocationStore};
use arc_swap::ArcSwap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use target::Destination;
use token::{Flow, FlowTokens};

/// The Via parameter that carries the flow a response goes back on.
const VIA_FLOW: &str = "sr-flow";
/// The Record-Route parameters naming the caller's and the callee's flows.
const RR_CALLER: &str = "sr-a";
const RR_CALLEE: &str = "sr-b";

/// A message for another destination than the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub to: Destination,
    pub bytes: Vec<u8>,
}

/// What became of a request handed to the proxy.
#[derive(Debug)]
pub enum Routed {
    /// Answer the sender.
    Reply(Reply),
    /// Send this on.
    Forward(Outgoing),
    /// Nothing to send.
    Drop,
}

/// A target resolved: the Request-URI to send with, where to, and the callee's flow
/// (when the request must follow it: a NATed or TCP binding).
#[derive(Debug)]
pub(super) struct Resolved {
    request_uri: String,
    to: Destination,
    callee_flow: Option<Flow>,
    /// The binding's Path (RFC 3327): the route set toward it.
    routes: Vec<String>,
}

/// One forwarding: the Request-URI to send with, where to, the Route values to send,
/// our Record-Route's flows (caller's, callee's) when we record-route, and the target
/// chosen (for the log).
#[derive(Debug)]
struct Hop<'a> {
    request_uri: &'a str,
    to: Destination,
    routes: &'a [&'a str],
    record_route: Option<(Option<Flow>, Option<Flow>)>,
    target: Option<&'a str>,
}

/// The proxy.
#[derive(Debug)]
pub struct Proxy {
    mode: ProxyMode,
    record_route: bool,
    domains: Vec<String>,
    advertise: Option<String>,
    locals: ArcSwap<Vec<Listen>>,
    tokens: FlowTokens,
    /// The Service-Route values the registrar signed: a preloaded Route may follow one.
    service_routes: ServiceRoutes,
    flows: Arc<Flows>,
    location: Arc<dyn LocationStore>,
}

fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

impl Proxy {
    /// A proxy for a checked configuration, over the registrar's store and the server's
    /// connections.
    pub fn new(
        config: &Config,
        location: Arc<dyn LocationStore>,
        flows: Arc<Flows>,
        service_routes: ServiceRoutes,
    ) -> Proxy {
        let key = match &config.auth.nonce_secret {
            Some(s) => format!("flow:{s}").into_bytes(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        Proxy {
            mode: config.proxy.mode,
            record_route: config.proxy.record_route,
            domains: config.server.domains.clone(),
            advertise: config.server.advertise.clone(),
            locals: ArcSwap::from_pointee(config.server.listen.clone()),
            tokens: FlowTokens::new(&key),
            service_routes,
            flows,
            location,
        }
    }

    /// The configured mode.
    pub fn mode(&self) -> ProxyMode {
        self.mode
    }

    /// The addresses actually bound (ports chosen by the system included).
    pub fn set_locals(&self, bound: Vec<Listen>) {
        self.locals.store(Arc::new(bound));
    }

    /// Whether `host:port` names this server: our advertised name or a served domain
    /// (without a port, or with one we listen on), or an address we listen on.
    fn is_us(&self, host: &str, port: Option<u16>) -> bool {
        let locals = self.locals.load();
        let named = self
            .advertise
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(host))
            || self.domains.iter().any(|d| d.eq_ignore_ascii_case(host));
        if named && port.is_none() {
            return true;
        }
        let port = port.unwrap_or(5060);
        let ip = host_ip(host);
        locals
            .iter()
            .any(|l| l.addr.port() == port && (named || ip == Some(l.addr.ip())))
    }

    /// Whether a host is one whose AORs live in our location store.
    fn is_local(&self, host: &str) -> bool {
        self.domains.is_empty()
            || self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
            || self.is_us(host, None)
    }

    /// Our address for sending over `transport` to `to`: host text and port.
    fn local_for(&self, transport: Transport, to: SocketAddr) -> (String, u16) {
        let locals = self.locals.load();
        let l = locals
            .iter()
            .find(|l| l.transport == transport && l.addr.is_ipv6() == to.is_ipv6())
            .or_else(|| locals.iter().find(|l| l.transport == transport))
            .or_else(|| locals.first());
        let (ip, port) = l.map_or((None, 5060), |l| (Some(l.addr.ip()), l.addr.port()));
        let host = match (&self.advertise, ip) {
            (Some(a), _) => a.clone(),
            (None, Some(ip)) => host_text(ip),
            (None, None) => "localhost".to_owned(),
        };
        (host, port)
    }

    /// Whether a device behind this flow must be reached through it: over a connection
    /// (TCP, TLS, WS, WSS: RFC 5626 section 5.3, RFC 7118 section 5), or when what it
    /// wrote (Via, Contact) is not where its packets come from.
    fn must_follow(flow: Flow, msg: &Message, top: &Via<'_>) -> bool {
        if flow.transport.is_connection() {
            return true;
        }
        let ip = flow.peer.ip();
        let contact_differs = msg
            .header(HeaderName::Contact)
            .and_then(|c| NameAddr::parse(c).ok())
            .and_then(|a| SipUri::parse(a.uri).ok())
            .is_some_and(|u| host_ip(u.host) != Some(ip));
        host_ip(top.host) != Some(ip) || contact_differs
    }

    /// Routes a request that `on_request` let through and that is not for the
    /// registrar itself. With `[proxy] mode = "off"` nothing is routed: a route hook may
    /// still answer, else 405.
    pub async fn route(
        &self,
        req: &RequestInfo<'_>,
        checked: &Checked<'_>,
        chain: &HookChain,
    ) -> Routed {
        if self.mode == ProxyMode::Off {
            return match ask_route(req, chain).await {
                Err(answered) => answered,
                Ok(_) => Routed::Reply(Reply::new(405).header("Allow", ALLOW)),
            };
        }
        let msg = req.msg;
        if checked.max_forwards == Some(0) {
            return refused(req, Reply::new(483), "Max-Forwards reached zero");
        }
        let loop_hash = branch::loop_hash(msg);
        if self.looped(msg, loop_hash) {
            return refused(req, Reply::new(482), "Loop detected");
        }
        // Route pre-processing (section 16.4): the leading Route values that name us go.
        let routes: Vec<&str> = msg.elements(HeaderName::Route).collect();
        let mut ours = 0;
        let (mut caller, mut callee) = (None, None);
        for r in &routes {
            let Some(uri) = NameAddr::parse(r)
                .ok()
                .and_then(|a| SipUri::parse(a.uri).ok())
            else {
                break;
            };
            if !self.is_us(uri.host, uri.port) {
                break;
            }
            ours += 1;
            let flow = |name| {
                uri.param(name)
                    .flatten()
                    .and_then(|t| self.tokens.decode(t))
            };
            caller = caller.or_else(|| flow(RR_CALLER));
            callee = callee.or_else(|| flow(RR_CALLEE));
        }
        let rest = &routes[ours..];
        let arrival = Flow {
            transport: req.transport,
            peer: req.source,
        };
        let ruri = msg.request_uri().unwrap_or("");
        let in_dialog = checked.to.tag().is_some();
        let unchanged = |to: Result<Destination, &'static str>| match to {
            Ok(to) => self.forward(
                req,
                checked,
                loop_hash,
                Hop {
                    request_uri: ruri,
                    to,
                    routes: rest,
                    record_route: None,
                    target: None,
                },
            ),
            Err(why) => refused(req, Reply::with_reason(503, why), why),
        };
        if let Some(next) = rest.first() {
            // Somebody else's route set: the first value is the next hop, but only along
            // a dialog we record-routed, or a Service-Route this server handed out (RFC
            // 3608); any other route set a sender preloads would make us an open relay
            // (Kamailio's default configuration refuses it the same way).
            let addr = NameAddr::parse(next).ok();
            let vouched = addr
                .as_ref()
                .is_some_and(|a| self.service_routes.vouches(a.uri));
            if !(vouched || ours > 0 && in_dialog) {
                return refused(
                    req,
                    Reply::with_reason(403, "Preload Route denied"),
                    "Preload Route denied",
                );
            }
            let Some(uri) = addr.and_then(|a| SipUri::parse(a.uri).ok()) else {
                return refused(
                    req,
                    Reply::with_reason(400, "Malformed Route"),
                    "Malformed Route",
                );
            };
            return unchanged(target::of_uri(&uri));
        }
        if ours > 0 && in_dialog {
            // Within a dialog we record-routed: toward the other side's flow, if it has
            // one (a request that came on a recorded flow goes the other way).
            let other = match (caller, callee) {
                (Some(a), Some(b)) if a == arrival => Some(b),
                (Some(a), Some(b)) if b == arrival => Some(a),
                (Some(_), Some(_)) => None,
                (Some(f), None) | (None, Some(f)) => (f != arrival).then_some(f),
                (None, None) => None,
            };
            return match other {
                Some(flow)
                    if flow.transport.is_connection()
                        && !self.flows.is_open(flow.transport, flow.peer) =>
                {
                    refused(req, Reply::new(430), "Connection to the device is gone")
                }
                Some(flow) => unchanged(Ok(Destination::at(
                    flow.transport,
                    flow.peer,
                    flow.transport.is_connection(),
                ))),
                None => unchanged(target::of_uri(&checked.request_uri)),
            };
        }
        if in_dialog && !self.is_local(checked.request_uri.host) {
            // Within a dialog but not along our Record-Route: not ours to relay (anybody
            // can write a To tag).
            return refused(
                req,
                Reply::with_reason(403, "Relaying denied"),
                "Relaying denied",
            );
        }
        // Outside a dialog (or a dialog on one of our AORs): the route hook, then the
        // location service.
        let (targets, explicit) = if in_dialog {
            (vec![ruri.to_owned()], false)
        } else {
            match ask_route(req, chain).await {
                Err(answered) => return answered,
                Ok(Some(t)) => (t, true),
                Ok(None) if !self.is_local(checked.request_uri.host) => {
                    return refused(
                        req,
                        Reply::with_reason(403, "Relaying denied"),
                        "Relaying denied",
                    );
                }
                Ok(None) => (vec![ruri.to_owned()], false),
            }
        };
        if self.mode == ProxyMode::Redirect {
            return self.redirect(req, &targets);
        }
        let mut why = "No registration";
        for t in &targets {
            match self.resolve(t, explicit, req.now_ms) {
                Ok(r) => {
                    let caller =
                        Self::must_follow(arrival, msg, &checked.top_via).then_some(arrival);
                    let rr = (self.record_route && !in_dialog).then_some((caller, r.callee_flow));
                    let routes: Vec<&str> = r.routes.iter().map(String::as_str).collect();
                    let hop = Hop {
                        request_uri: &r.request_uri,
                        to: r.to,
                        routes: &routes,
                        record_route: rr,
                        target: Some(t),
                    };
                    return self.forward(req, checked, loop_hash, hop);
                }
                Err(w) => why = w,
            }
        }
        let reply = match why {
            "No registration" => Reply::new(480),
            store::UNAVAILABLE => store::unavailable(),
            w => Reply::with_reason(480, w),
        };
        refused(req, reply, why)
    }

    /// Whether one of our Vias in the request carries the loop hash it has now.
    fn looped(&self, msg: &Message, loop_hash: u64) -> bool {
        msg.elements(HeaderName::Via)
            .filter_map(|v| Via::parse(v).ok())
            .any(|v| {
                v.branch().and_then(branch::loop_part) == Some(loop_hash)
                    && self.is_us(v.host, v.port)
            })
    }

    fn forward(
        &self,
        req: &RequestInfo<'_>,
        checked: &Checked<'_>,
        loop_hash: u64,
        hop: Hop<'_>,
    ) -> Routed {
        let Hop {
            request_uri,
            to,
            routes,
            record_route,
            target,
        } = hop;
        let (host, port) = self.local_for(to.transport, to.addr);
        let arrival = Flow {
            transport: req.transport,
            peer: req.source,
        };
        let via = format!(
            "SIP/2.0/{} {host}:{port};branch={};{VIA_FLOW}={}",
            to.transport.via_token(),
            branch::branch(req.msg, checked, loop_hash),
            self.tokens.encode(arrival),
        );
        let mut rr = Vec::new();
        if let Some((caller, callee)) = record_route {
            let mut params = String::new();
            for (name, flow) in [(RR_CALLER, caller), (RR_CALLEE, callee)] {
                if let Some(f) = flow {
                    params.push_str(&format!(";{name}={}", self.tokens.encode(f)));
                }
            }
            // RFC 3261 section 16.6 item 4: a sips: request is record-routed with a sips:
            // URI (on the hops that are secure).
            let sips = checked.request_uri.scheme == crate::sip::uri::Scheme::Sips;
            let entry = |transport: Transport, to: SocketAddr| {
                let (h, p) = self.local_for(transport, to);
                let scheme = if sips && transport.is_secure() {
                    "sips"
                } else {
                    "sip"
                };
                let mut uri = format!("<{scheme}:{h}:{p}");
                if transport.is_connection() {
                    uri.push_str(";transport=");
                    uri.push_str(transport.as_str());
                }
                format!("{uri};lr{params}>")
            };
            // One entry per side when the sides speak different transports (the callee
            // reads the top one, the caller the bottom one).
            rr.push(entry(to.transport, to.addr));
            if req.transport != to.transport {
                rr.push(entry(req.transport, req.source));
            }
        }
        let mut bytes = Vec::new();
        rewrite::request(
            req.msg,
            &checked.top_via,
            &rewrite::Changes {
                request_uri,
                via: &via,
                source: req.source,
                routes,
                record_route: &rr,
            },
            &mut bytes,
        );
        tracing::info!(
            target: "sipreg::support",
            method = %req.msg.method().map(ToString::to_string).unwrap_or_default(),
            target = target.unwrap_or(""),
            request_uri,
            destination = %to.addr,
            transport = to.transport.via_token(),
            "Request forwarded"
        );
        Routed::Forward(Outgoing { to, bytes })
    }

    /// A response to a request we forwarded: less our Via, back on the flow our Via
    /// names. `None` for anything else (not ours, forged, a 100 Trying).
    pub fn response(&self, msg: &Message) -> Option<Outgoing> {
        let via = top_via(msg)?;
        if !via.branch().is_some_and(|b| b.starts_with(branch::PREFIX)) {
            return None;
        }
        let flow = self.tokens.decode(via.param(VIA_FLOW).flatten()?)?;
        if msg.status() == Some(100) {
            return None; // section 16.7: a 100 is hop by hop
        }
        let mut bytes = Vec::new();
        rewrite::response(msg, &mut bytes);
        Some(Outgoing {
            to: Destination::at(flow.transport, flow.peer, flow.transport.is_connection()),
            bytes,
        })
    }
}

/// The `route` chain, asked once per request routed outside a dialog: the targets it
/// named (`None`: no opinion), or what answers the request (its reply, or the 500 of a
/// hook that failed).
async fn ask_route(
    req: &RequestInfo<'_>,
    chain: &HookChain,
) -> Result<Option<Vec<String>>, Routed> {
    match chain.route(req).await {
        Ok(RouteDecision::Respond(r)) => Err(Routed::Reply(r)),
        Ok(RouteDecision::Targets(t)) if !t.is_empty() => Ok(Some(t)),
        Ok(_) => Ok(None),
        Err(e) => Err(Routed::Reply(e.reply())),
    }
}

/// A request the proxy answers itself, with the log line that says why.
pub(super) fn refused(req: &RequestInfo<'_>, reply: Reply, reason: &str) -> Routed {
    tracing::info!(
        target: "sipreg::support",
        method = %req.msg.method().map(ToString::to_string).unwrap_or_default(),
        request_uri = req.msg.request_uri().unwrap_or(""),
        source = %req.source,
        status = reply.code,
        reason,
        "Request not routed"
    );
    Routed::Reply(reply)
}
