//! Where a target goes: an AOR of ours becomes its best reachable binding (through its
//! Path, on its TCP connection, at a NATed device's source address, or at its Contact);
//! in redirect mode, a 302 listing every binding.

use super::target::{self, Destination};
use super::token::Flow;
use super::{Proxy, Resolved, Routed, refused};
use crate::hooks::RequestInfo;
use crate::sip::contact::format_q;
use crate::sip::name_addr::NameAddr;
use crate::sip::params::split_outside_quotes;
use crate::sip::uri::SipUri;
use crate::sip::{Reply, scan};
use crate::store::{self, Binding};

/// The URI of a Contact value as stored (`<sip:...>;params` or a bare URI).
fn contact_uri(contact: &str) -> &str {
    NameAddr::parse(contact).map_or(contact, |a| a.uri)
}

/// The best binding first: highest q (none counts as 1.0), then the most recently
/// refreshed (RFC 3261 section 16.6 leaves the order among equal q to the proxy).
fn by_preference(bindings: &mut [Binding]) {
    bindings.sort_by_key(|b| {
        (
            std::cmp::Reverse(b.q.unwrap_or(1000)),
            std::cmp::Reverse(b.refreshed_ms),
        )
    });
}

impl Proxy {
    /// A target URI: an AOR of ours becomes its best reachable binding. The Request-URI
    /// (not `explicit`) of one of our hosts is always an AOR; a target a hook named is one
    /// when it has a user part (so a hook can name a gateway by its host alone).
    pub(super) fn resolve(
        &self,
        target: &str,
        explicit: bool,
        now_ms: u64,
    ) -> Result<Resolved, &'static str> {
        let uri = SipUri::parse(target).map_err(|_| "Malformed target")?;
        if !(self.is_local(uri.host) && (uri.user.is_some() || !explicit)) {
            return Ok(Resolved {
                request_uri: target.to_owned(),
                to: target::of_uri(&uri)?,
                callee_flow: None,
                routes: Vec::new(),
            });
        }
        let mut bindings = self
            .location
            .lookup(&uri.aor(), now_ms)
            .map_err(|_| store::UNAVAILABLE)?;
        if bindings.is_empty() {
            return Err("No registration");
        }
        by_preference(&mut bindings);
        // A sips: target reaches only a binding registered over TLS or WSS (RFC 5630
        // section 3.1.3: never a clear hop).
        let secure_only = uri.scheme == crate::sip::uri::Scheme::Sips;
        let mut skipped = false;
        for b in &bindings {
            if secure_only && !b.transport.is_secure() {
                skipped = true;
                continue;
            }
            if let Some(r) = self.reach(b) {
                return Ok(r);
            }
        }
        if skipped {
            return Err("No binding over a secure transport");
        }
        Err("Connection to the device is gone")
    }

    /// How to reach a binding, if it can be reached: through its Path (RFC 3327; the
    /// first proxy on it knows the device's flow), on its TCP connection, at the source
    /// address of a NATed UDP binding, or at its Contact.
    pub(super) fn reach(&self, b: &Binding) -> Option<Resolved> {
        let request_uri = contact_uri(&b.contact).to_owned();
        if let Some(path) = b.path.as_deref() {
            let routes: Vec<String> = split_outside_quotes(path, b',')
                .map(|v| scan::trim(v).to_owned())
                .collect();
            let first = routes.first()?;
            let uri = NameAddr::parse(first).map_or(first.as_str(), |a| a.uri);
            let to = target::of_uri(&SipUri::parse(uri).ok()?).ok()?;
            return Some(Resolved {
                request_uri,
                to,
                callee_flow: None,
                routes,
            });
        }
        let flow = Flow {
            transport: b.transport,
            peer: b.source,
        };
        let follow = b.transport.is_connection() || b.natted;
        let to = if !follow {
            target::of_uri(&SipUri::parse(&request_uri).ok()?).ok()?
        } else if b.transport.is_connection() && !self.flows.is_open(b.transport, b.source) {
            return None;
        } else {
            Destination::at(b.transport, b.source, b.transport.is_connection())
        };
        Some(Resolved {
            request_uri,
            to,
            callee_flow: follow.then_some(flow),
            routes: Vec::new(),
        })
    }

    /// A 302 with every binding of every target (RFC 3261 section 8.3 redirect server).
    pub(super) fn redirect(&self, req: &RequestInfo<'_>, targets: &[String]) -> Routed {
        let mut reply = Reply::new(302);
        let mut any = false;
        for t in targets {
            let Ok(uri) = SipUri::parse(t) else { continue };
            if !(self.is_local(uri.host) && uri.user.is_some()) {
                reply = reply.header("Contact", format!("<{t}>"));
                any = true;
                continue;
            }
            let Ok(mut bindings) = self.location.lookup(&uri.aor(), req.now_ms) else {
                return refused(req, store::unavailable(), store::UNAVAILABLE);
            };
            by_preference(&mut bindings);
            for b in bindings {
                let mut c = format!("<{}>", contact_uri(&b.contact));
                if let Some(q) = b.q {
                    c.push_str(";q=");
                    c.push_str(&format_q(q));
                }
                reply = reply.header("Contact", c);
                any = true;
            }
        }
        if any {
            Routed::Reply(reply)
        } else {
            refused(req, Reply::new(480), "No registration")
        }
    }
}
