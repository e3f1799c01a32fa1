//! The REGISTER procedure, RFC 3261 section 10.3 steps 1 to 8, with the hook chain at its
//! decision points.

use super::authenticate::{Verdict, find_credentials};
use super::date;
use super::log::{self, Log};
use crate::auth::nonce::Nonces;
use crate::auth::replay::NonceCounts;
use crate::config::{Challenge, Config};
use crate::history::History;
use crate::hooks::{
    AuthDecision, AuthRequest, BindKind, BindRequest, Decision, ExpireReason, HookChain, HookError,
    Identity, ProposedBinding, RequestInfo,
};
use crate::metrics::Metrics;
use crate::qualify::Qualify;
use crate::sip::contact::{self, Contacts, format_q};
use crate::sip::digest::Algorithm;
use crate::sip::request::Checked;
use crate::sip::{HeaderName, Reply};
use crate::store::{Change, Durable, Event, LocationStore, StoreError, Update, UpdateError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The authentication settings and state.
#[derive(Debug)]
pub(crate) struct AuthState {
    pub mode: Challenge,
    pub realm: String,
    pub algorithms: Vec<Algorithm>,
    pub nonces: Nonces,
    pub counts: NonceCounts,
}

/// What the registrar answers.
#[derive(Debug, Clone)]
pub enum Outcome {
    Reply(Reply),
    /// A 200 to send once its change is on disk (a 500 if it does not get there).
    Stored(Reply, Durable),
    Drop,
}

/// The registrar: configuration, hook chain and location store.
#[derive(Debug)]
pub struct Registrar {
    default_expires: u32,
    min_expires: u32,
    max_expires: u32,
    max_contacts: usize,
    flow_timer: u32,
    domains: Vec<String>,
    pub(crate) auth: AuthState,
    location: Arc<dyn LocationStore>,
    qualify: Arc<Qualify>,
    /// The reporter, which holds the hook chain too.
    log: Log,
    /// New registrations are refused (503); removals and queries are served.
    maintenance: AtomicBool,
}

/// Seconds a device is asked to wait (Retry-After) by a registrar in maintenance.
const MAINTENANCE_RETRY_AFTER: &str = "60";

/// Maps a failed hook to the reply, with the one log line that names it.
pub fn hook_failure(e: &HookError) -> Reply {
    tracing::error!(
        target: "sipreg::hooks",
        implementation = %e.implementation,
        hook = e.hook,
        error = %e.message,
        "hook failed; request answered 500"
    );
    Reply::new(500)
}

fn hash_of(parts: &[&str]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(parts)
}

impl Registrar {
    /// A registrar for a checked configuration.
    pub fn new(
        config: &Config,
        chain: HookChain,
        location: Arc<dyn LocationStore>,
        qualify: Arc<Qualify>,
    ) -> Registrar {
        let realm = config
            .auth
            .realm
            .clone()
            .or_else(|| config.server.domains.first().cloned())
            .unwrap_or_else(|| "sipreg".to_owned());
        let key = match &config.auth.nonce_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        Registrar {
            default_expires: config.registrar.default_expires,
            min_expires: config.registrar.min_expires,
            max_expires: config.registrar.max_expires,
            max_contacts: config.registrar.max_contacts,
            flow_timer: config.registrar.flow_timer,
            domains: config.server.domains.clone(),
            auth: AuthState {
                mode: config.auth.challenge,
                realm,
                algorithms: config.auth.algorithms.clone(),
                nonces: Nonces::new(&key, config.auth.nonce_ttl),
                counts: NonceCounts::new(config.auth.nonce_ttl),
            },
            location,
            qualify,
            log: Log {
                chain,
                history: Arc::new(History::new(config.history_capacity())),
                metrics: Arc::new(Metrics::default()),
            },
            maintenance: AtomicBool::new(false),
        }
    }

    /// Puts the registrar into maintenance (new registrations get 503 with Retry-After,
    /// de-registrations and queries are still served) or takes it out; logged.
    pub fn set_maintenance(&self, on: bool) {
        if self.maintenance.swap(on, Ordering::Relaxed) != on {
            tracing::info!(target: log::ADMIN, on, "Maintenance mode {}", if on { "on" } else { "off" });
        }
    }

    /// Whether the registrar is in maintenance.
    pub fn in_maintenance(&self) -> bool {
        self.maintenance.load(Ordering::Relaxed)
    }

    /// Whether a REGISTER would add or refresh a binding (a contact with an expiry above 0).
    fn adds_bindings(&self, msg: &crate::sip::Message, checked: &Checked) -> bool {
        match contact::parse(msg) {
            Ok(Contacts::List(list)) => list.iter().any(|c| {
                c.expires
                    .or(checked.expires)
                    .unwrap_or(self.default_expires)
                    > 0
            }),
            _ => false,
        }
    }

    /// The location store.
    pub fn location(&self) -> &Arc<dyn LocationStore> {
        &self.location
    }

    /// The registration history.
    pub fn history(&self) -> &Arc<History> {
        &self.log.history
    }

    /// What the registrar counts.
    pub fn metrics(&self) -> &Metrics {
        &self.log.metrics
    }

    /// The hook chain.
    pub fn chain(&self) -> &HookChain {
        &self.log.chain
    }

    fn serves(&self, host: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }

    fn refuse(&self, req: &RequestInfo<'_>, aor: &str, reply: Reply, reason: &str) -> Outcome {
        self.log.refused(req, aor, reply.code, reason);
        Outcome::Reply(reply)
    }

    /// A refusal a hook answered (and logged as it saw fit): into the history.
    fn refused_by_hook(&self, req: &RequestInfo<'_>, aor: &str, reply: Reply) -> Outcome {
        self.log.refused_quietly(req, aor, reply.code, reply.why());
        Outcome::Reply(reply)
    }

    /// Handles a REGISTER that passed the syntax checks and `on_request`.
    pub fn register(&self, req: &RequestInfo<'_>, checked: &Checked, now_ms: u64) -> Outcome {
        let outcome = self.procedure(req, checked, now_ms);
        if let Outcome::Reply(r) | Outcome::Stored(r, _) = &outcome {
            self.log.metrics.register_answered(r.code);
        }
        outcome
    }

    /// Steps 1 to 8.
    fn procedure(&self, req: &RequestInfo<'_>, checked: &Checked, now_ms: u64) -> Outcome {
        let msg = req.msg;
        // Step 1: the Request-URI names a domain we serve.
        let ruri = &checked.request_uri;
        if !self.serves(ruri.host) {
            return self.refuse(
                req,
                "",
                Reply::with_reason(403, "Domain not served"),
                "Domain not served",
            );
        }
        // Step 5 (done first: the hooks need the AOR): To names an AOR of this domain.
        let to = msg.header(HeaderName::To).unwrap_or("");
        let Some(to_uri) = checked.to_uri else {
            // RFC 4475 unksm2: the AOR of a REGISTER must be a SIP or SIPS URI.
            return self.refuse(
                req,
                to,
                Reply::with_reason(400, "To must be a SIP or SIPS URI"),
                "To is not a SIP URI",
            );
        };
        if !(to_uri.user.is_some()
            && (to_uri.host.eq_ignore_ascii_case(ruri.host) || self.serves(to_uri.host)))
        {
            return self.refuse(
                req,
                to,
                Reply::with_reason(404, "Address-of-record not valid for this domain"),
                "Invalid address-of-record",
            );
        }
        let aor = to_uri.aor();
        // In maintenance, before any challenge: a device goes elsewhere or waits.
        if self.in_maintenance() && self.adds_bindings(msg, checked) {
            let reply = Reply::with_reason(503, "Maintenance mode")
                .header("Retry-After", MAINTENANCE_RETRY_AFTER);
            return self.refuse(req, &aor, reply, "Maintenance mode");
        }
        // Steps 3 and 4: authentication, then authorization in `bind`.
        let identity = match self.authenticate(req, &aor, now_ms) {
            Ok(id) => id,
            Err(outcome) => return outcome,
        };
        // Step 6: the contacts and their expiry.
        let contacts = match contact::parse(msg) {
            Ok(c) => c,
            Err(why) => return self.refuse(req, &aor, Reply::with_reason(400, why.clone()), &why),
        };
        let mut bind = BindRequest {
            aor: &aor,
            identity: identity.as_ref(),
            kind: BindKind::Query,
            bindings: Vec::new(),
        };
        let mut keys = Vec::new();
        match &contacts {
            Contacts::None => {}
            Contacts::Wildcard => {
                if checked.expires != Some(0) {
                    return self.refuse(
                        req,
                        &aor,
                        Reply::with_reason(400, "Contact * requires Expires: 0"),
                        "Contact * without Expires: 0",
                    );
                }
                bind.kind = BindKind::RemoveAll;
            }
            Contacts::List(list) => {
                bind.kind = BindKind::Update;
                // What the hooks are told about existing bindings (the built-in one does
                // not look, so the store is only read when another hook is configured).
                let stored = if self.log.chain.len() > 1 {
                    match self.location.lookup(&aor, now_ms) {
                        Ok(s) => s,
                        Err(e) => return self.store_down(req, &aor, &e),
                    }
                } else {
                    Vec::new()
                };
                for c in list {
                    let expires = c
                        .expires
                        .or(checked.expires)
                        .unwrap_or(self.default_expires);
                    if expires > 0 && expires < self.min_expires {
                        let reply =
                            Reply::new(423).header("Min-Expires", self.min_expires.to_string());
                        return self.refuse(req, &aor, reply, "Interval too brief");
                    }
                    let existing = stored
                        .iter()
                        .find(|b| *b.key == *c.key)
                        .map(|b| b.registration_id);
                    bind.bindings.push(ProposedBinding {
                        contact: c.raw,
                        expires: expires.min(self.max_expires),
                        q: c.q,
                        instance: c.addr.param("+sip.instance").flatten(),
                        reg_id: c.addr.param("reg-id").flatten(),
                        registration_id: existing.unwrap_or_else(uuid::Uuid::new_v4),
                        new: existing.is_none(),
                    });
                    keys.push((c.key.as_str(), stored_contact(c), c.host));
                }
            }
        }
        // RFC 5626 section 6: an outbound registration (reg-id) must have come straight
        // from the device, or through an edge proxy that said so in Path (`ob`).
        let path: Vec<&str> = msg.elements(HeaderName::Path).collect();
        let outbound = bind
            .bindings
            .iter()
            .any(|b| b.reg_id.is_some() && b.instance.is_some());
        if outbound {
            let vias = msg.elements(HeaderName::Via).count();
            let edge_ob = path.first().is_some_and(|p| {
                crate::sip::name_addr::NameAddr::parse(p)
                    .ok()
                    .and_then(|a| crate::sip::uri::SipUri::parse(a.uri).ok())
                    .is_some_and(|u| u.param("ob").is_some())
            });
            if vias > 1 && !edge_ob {
                return self.refuse(
                    req,
                    &aor,
                    Reply::new(439),
                    "Outbound registration through a proxy without outbound support",
                );
            }
        }
        let path = (!path.is_empty()).then(|| path.join(", "));
        match self.log.chain.bind(req, &mut bind) {
            Ok(Decision::Continue | Decision::Accept) => {}
            Ok(Decision::Respond(r)) => return self.refused_by_hook(req, &aor, r),
            Ok(Decision::Drop) => return Outcome::Drop,
            Err(e) => return Outcome::Reply(hook_failure(&e)),
        }
        // Steps 7 and 8: update the bindings, all or nothing, and list them.
        let mut durable = None;
        let applied = if bind.kind == BindKind::Query {
            match self.location.lookup(&aor, now_ms) {
                Ok(s) => s,
                Err(e) => return self.store_down(req, &aor, &e),
            }
        } else {
            let via = checked.top_via;
            let via_host = via.host;
            let source_ip = req.source.ip();
            let differs = |host: &str| crate::sip::via::host_ip(host) != Some(source_ip);
            let branch = hash_of(&[via.branch().unwrap_or(""), via_host]);
            let changes = bind
                .bindings
                .iter()
                .zip(&keys)
                .map(|(p, (key, stored, host))| Change {
                    contact: stored,
                    key,
                    expires: p.expires.min(self.max_expires),
                    q: p.q,
                    instance: p.instance,
                    reg_id: p.reg_id,
                    natted: differs(via_host) || host.is_some_and(differs),
                    registration_id: p.registration_id,
                })
                .collect();
            let update = Update {
                call_id: msg.header(HeaderName::CallId).unwrap_or(""),
                cseq: checked.cseq,
                branch,
                source: req.source,
                transport: req.transport,
                path: path.as_deref(),
                max_contacts: self.max_contacts,
                now_ms,
                remove_all: bind.kind == BindKind::RemoveAll,
                changes,
            };
            match self.location.update(&aor, &update) {
                Ok(applied) => {
                    self.log.events(&aor, &applied.events);
                    self.qualify_events(&aor, &applied.events, now_ms);
                    durable = applied.durable;
                    applied.bindings
                }
                Err(UpdateError::Unavailable) => {
                    return self.store_down(req, &aor, &StoreError("update failed".into()));
                }
                Err(UpdateError::OutOfOrder) => {
                    return self.refuse(
                        req,
                        &aor,
                        Reply::with_reason(400, "Sequence number out of order"),
                        "CSeq not higher than the stored one",
                    );
                }
                Err(UpdateError::TooManyContacts) => {
                    return self.refuse(
                        req,
                        &aor,
                        Reply::with_reason(403, "Too many contacts"),
                        "More contacts than max_contacts",
                    );
                }
            }
        };
        let mut reply = Reply::new(200);
        for b in &applied {
            let left = b.expires_at_ms.saturating_sub(now_ms).div_ceil(1000);
            let mut value = String::with_capacity(b.contact.len() + 24);
            value.push_str(&b.contact);
            value.push_str(";expires=");
            crate::text::push_decimal(&mut value, left);
            if let Some(q) = b.q {
                value.push_str(";q=");
                value.push_str(&format_q(q));
            }
            reply = reply.header("Contact", value);
        }
        if let Some(p) = &path {
            reply = reply.header("Path", p.clone());
        }
        let supports = |tag: &str| {
            msg.headers_named(HeaderName::Supported)
                .flat_map(|v| v.split(','))
                .any(|t| t.trim().eq_ignore_ascii_case(tag))
        };
        if outbound && supports("outbound") && bind.kind == BindKind::Update {
            reply = reply
                .header("Require", "outbound")
                .header("Flow-Timer", self.flow_timer.to_string());
        }
        let reply = reply.header("Date", date::now());
        match durable {
            Some(d) => Outcome::Stored(reply, d),
            None => Outcome::Reply(reply),
        }
    }

    /// 503 when the store cannot be read or written: never a 200 for what was not stored.
    /// (The store logs its own failure once; each refusal is logged with its reason.)
    fn store_down(&self, req: &RequestInfo<'_>, aor: &str, e: &StoreError) -> Outcome {
        tracing::debug!(target: "sipreg::store", alias = aor, error = %e, "location store unavailable");
        let reply =
            Reply::with_reason(503, "Location store unavailable").header("Retry-After", "5");
        self.refuse(req, aor, reply, "Location store unavailable")
    }

    /// Steps 3 and 4: the `authenticate` chain and, when it hands over credentials, the
    /// digest check. `Ok(None)` means authentication is off.
    fn authenticate(
        &self,
        req: &RequestInfo<'_>,
        aor: &str,
        now_ms: u64,
    ) -> Result<Option<Identity>, Outcome> {
        let supplied = find_credentials(req.msg, self.auth.mode, &self.auth.realm)
            .map_err(|r| self.refuse(req, aor, r, "Malformed credentials"))?;
        let ask = AuthRequest {
            aor,
            username: supplied.as_ref().and_then(|c| c.username),
            realm: &self.auth.realm,
        };
        let decision = self
            .log
            .chain
            .authenticate(req, &ask)
            .map_err(|e| Outcome::Reply(hook_failure(&e)))?;
        let challenge = |stale, reason: &'static str| {
            let reply = self.challenge_reply(stale, now_ms);
            if supplied.is_some() {
                let user = ask.username.unwrap_or("");
                self.log.auth_failed(req, aor, user, reply.code, reason);
            }
            Outcome::Reply(reply)
        };
        match decision {
            AuthDecision::Pass if self.auth.mode == Challenge::Off => Ok(None),
            // Credentials the hooks did not take (an unknown user name): refused as wrong.
            AuthDecision::Pass | AuthDecision::Challenge => {
                Err(challenge(false, "Invalid credentials"))
            }
            AuthDecision::Authenticated(id) => Ok(Some(id)),
            AuthDecision::Respond(r) => Err(self.refused_by_hook(req, aor, r)),
            AuthDecision::Credentials(creds) => {
                let Some(c) = supplied.as_ref() else {
                    return Err(challenge(false, "No credentials"));
                };
                match self.check_digest(req.msg, c, &creds, now_ms) {
                    Verdict::Ok => Ok(Some(Identity {
                        username: creds.username,
                    })),
                    Verdict::Challenge { stale, reason } => {
                        if reason == "Invalid credentials" {
                            tracing::info!(
                                target: "sipreg::support",
                                alias = aor,
                                expected_username = creds.username.as_str(),
                                supplied_username = ask.username.unwrap_or(""),
                                source = %req.source,
                                reason,
                                "Registration refused"
                            );
                        }
                        Err(challenge(stale, reason))
                    }
                }
            }
        }
    }

    /// Removes the bindings whose time is up, logs them and tells the `expire` hooks.
    pub fn expire_due(&self, now_ms: u64) -> usize {
        let gone = self.location.expire_due(now_ms);
        for (aor, b) in &gone {
            self.qualify.forget(&b.registration_id);
            self.log.deleted(aor, b, ExpireReason::Expired);
        }
        gone.len()
    }

    /// Removes every binding of an AOR (an operator's request), each logged, recorded and
    /// reported to the `expire` hooks; returns what was removed.
    ///
    /// # Errors
    /// The store cannot answer (what was removed before is reported all the same).
    pub fn remove_aor(
        &self,
        aor: &str,
        now_ms: u64,
    ) -> Result<Vec<crate::store::Binding>, StoreError> {
        let mut gone = Vec::new();
        for b in self.location.lookup(aor, now_ms)? {
            if let Some(b) = self.location.remove(aor, &b.registration_id)? {
                self.qualify.forget(&b.registration_id);
                self.log.deleted(aor, &b, ExpireReason::Administrative);
                gone.push(b);
            }
        }
        Ok(gone)
    }

    /// Removes a binding that stopped answering OPTIONS, logs it and tells the `expire`
    /// hooks; false when it was gone already.
    pub fn remove_unreachable(&self, aor: &str, registration_id: &uuid::Uuid) -> bool {
        match self.location.remove(aor, registration_id) {
            Ok(Some(b)) => {
                self.log.deleted(aor, &b, ExpireReason::Unreachable);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(target: "sipreg::store", alias = aor, error = %e, "unreachable binding not removed");
                false
            }
        }
    }

    /// Tells the qualify scheduler what an update did.
    fn qualify_events(&self, aor: &str, events: &[Event], now_ms: u64) {
        for e in events {
            match e {
                Event::Added(b) | Event::Refreshed(b) => self.qualify.watch(aor, b, now_ms),
                Event::Removed(b, _) => self.qualify.forget(&b.registration_id),
            }
        }
    }
}

/// The contact as stored: as received, less its `expires` and `q` parameters (the 200
/// writes those afresh).
fn stored_contact(c: &contact::Contact<'_>) -> String {
    let params_at = c.raw.len() - c.addr.params.len();
    let mut out = String::with_capacity(c.raw.len());
    out.push_str(c.raw[..params_at].trim_end());
    for p in crate::sip::params::iter(c.addr.params) {
        if p.name.eq_ignore_ascii_case("expires") || p.name.eq_ignore_ascii_case("q") {
            continue;
        }
        out.push(';');
        out.push_str(p.name);
        if let Some(v) = p.value {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}
