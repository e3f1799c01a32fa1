//! The REGISTER procedure, RFC 3261 section 10.3, one function per step, with the hook
//! chain at its decision points. A step either hands the next one what it found or ends
//! the request with an [`Outcome`] (logged and recorded as a refusal where it is one).

use super::limits::Limits;
use super::register::{Register, stored_contact};
use super::{Outcome, Registrar};
use crate::hooks::{BindKind, BindRequest, Decision, Identity, ProposedBinding, RequestInfo};
use crate::sip::Reply;
use crate::sip::contact::Contacts;
use crate::sip::request::Checked;
use crate::store::{self, Applied, Change, StoreError, Update, UpdateError};

/// Seconds a device is asked to wait (Retry-After) by a registrar in maintenance.
const MAINTENANCE_RETRY_AFTER: &str = "60";

/// What step 6 read of the contacts: the `bind` hooks' question, and for each proposed
/// binding what the device asked ([`Asked`]).
#[derive(Debug)]
pub(super) struct Proposal<'a> {
    pub bind: BindRequest<'a>,
    pub asked: Vec<Asked<'a>>,
    /// The Path values (RFC 3327), in order.
    pub path_values: Vec<&'a str>,
    /// The Path values joined with `, `.
    pub path: Option<String>,
    /// A contact with both `+sip.instance` and `reg-id` (RFC 5626).
    pub outbound: bool,
}

/// One contact as the device sent it.
#[derive(Debug)]
pub(super) struct Asked<'a> {
    /// The RFC 3261 comparison key.
    pub key: String,
    /// The contact as stored.
    pub stored: String,
    /// The contact URI's host.
    pub host: Option<&'a str>,
    /// The expiry it asked for, before any limit.
    pub expires: u32,
}

type Step<T> = Result<T, Outcome>;

fn hash_of(parts: &[&str]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::default().hash_one(parts)
}

impl Registrar {
    /// Steps 1 to 8.
    pub(super) async fn procedure(
        &self,
        req: &RequestInfo<'_>,
        checked: &Checked<'_>,
        now_ms: u64,
    ) -> Outcome {
        let aor = match self.address_of_record(req, checked) {
            Ok(aor) => aor,
            Err(o) => return o,
        };
        let reg = Register::new(req.msg, checked, aor);
        self.rest(req, &reg, now_ms).await.unwrap_or_else(|o| o)
    }

    async fn rest(&self, req: &RequestInfo<'_>, reg: &Register<'_>, now_ms: u64) -> Step<Outcome> {
        self.maintenance_check(req, reg)?;
        self.contacts_readable(req, reg)?;
        let identity = self.authenticate(req, &reg.aor, now_ms).await?;
        let mut proposal = self.proposal(req, reg, identity.as_ref(), now_ms)?;
        self.outbound_check(req, reg, &proposal)?;
        self.bind(req, reg, &mut proposal).await?;
        let limits = self.aor_limits(req, reg, &mut proposal)?;
        let applied = self.store(req, reg, &proposal, &limits, now_ms)?;
        Ok(self.ok(reg, &proposal, applied, now_ms))
    }

    fn serves(&self, host: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d.eq_ignore_ascii_case(host))
    }

    pub(super) fn refuse(
        &self,
        req: &RequestInfo<'_>,
        aor: &str,
        reply: Reply,
        reason: &str,
    ) -> Outcome {
        self.log.refused(req, aor, reply.code, reason);
        Outcome::Reply(reply)
    }

    /// A refusal a hook answered (and logged as it saw fit): into the history.
    pub(super) fn refused_by_hook(
        &self,
        req: &RequestInfo<'_>,
        aor: &str,
        reply: Reply,
    ) -> Outcome {
        self.log.refused_quietly(req, aor, reply.code, reply.why());
        Outcome::Reply(reply)
    }

    /// Step 1, the Request-URI names a domain we serve, and step 5 (done first: the hooks
    /// need the AOR), To names an AOR of this domain.
    fn address_of_record(&self, req: &RequestInfo<'_>, checked: &Checked) -> Step<String> {
        let ruri = &checked.request_uri;
        if !self.serves(ruri.host) {
            let reply = Reply::with_reason(403, "Domain not served");
            return Err(self.refuse(req, "", reply, "Domain not served"));
        }
        let to = req.msg.header(crate::sip::HeaderName::To).unwrap_or("");
        let Some(to_uri) = checked.to_uri else {
            // RFC 4475 unksm2: the AOR of a REGISTER must be a SIP or SIPS URI.
            let reply = Reply::with_reason(400, "To must be a SIP or SIPS URI");
            return Err(self.refuse(req, to, reply, "To is not a SIP URI"));
        };
        if !(to_uri.user.is_some()
            && (to_uri.host.eq_ignore_ascii_case(ruri.host) || self.serves(to_uri.host)))
        {
            let reply = Reply::with_reason(404, "Address-of-record not valid for this domain");
            return Err(self.refuse(req, to, reply, "Invalid address-of-record"));
        }
        Ok(to_uri.aor())
    }

    /// In maintenance, before any challenge, a REGISTER that adds or refreshes a binding
    /// gets 503: the device goes elsewhere or waits.
    fn maintenance_check(&self, req: &RequestInfo<'_>, reg: &Register<'_>) -> Step<()> {
        if self.in_maintenance() && reg.adds_bindings(&self.limits) {
            let reply = Reply::with_reason(503, "Maintenance mode")
                .header("Retry-After", MAINTENANCE_RETRY_AFTER);
            return Err(self.refuse(req, &reg.aor, reply, "Maintenance mode"));
        }
        Ok(())
    }

    /// Syntax before policy: Contact headers that cannot be read are a 400, before any
    /// challenge (the contacts are parsed here once, and kept for step 6).
    fn contacts_readable(&self, req: &RequestInfo<'_>, reg: &Register<'_>) -> Step<()> {
        match reg.contacts() {
            Ok(_) => Ok(()),
            Err(why) => Err(self.refuse(req, &reg.aor, Reply::with_reason(400, why.clone()), why)),
        }
    }

    /// Step 6: the contacts and their expiry, as the `bind` hooks will be asked about them
    /// (each expiry under `[registrar] max_expires`; the AOR's own limits, 423 included,
    /// apply once `bind` has answered: [`Registrar::aor_limits`]).
    fn proposal<'a, 'm: 'a>(
        &self,
        req: &RequestInfo<'_>,
        reg: &'a Register<'m>,
        identity: Option<&'a Identity>,
        now_ms: u64,
    ) -> Step<Proposal<'a>> {
        let aor = reg.aor.as_str();
        let contacts = match reg.contacts() {
            Ok(c) => c,
            Err(why) => {
                return Err(self.refuse(req, aor, Reply::with_reason(400, why.clone()), why));
            }
        };
        let mut bind = BindRequest::new(aor, identity, BindKind::Query, Vec::new());
        let mut asked = Vec::new();
        match contacts {
            Contacts::None => {}
            Contacts::Wildcard => {
                if reg.checked.expires != Some(0) {
                    let reply = Reply::with_reason(400, "Contact * requires Expires: 0");
                    return Err(self.refuse(req, aor, reply, "Contact * without Expires: 0"));
                }
                bind.kind = BindKind::RemoveAll;
            }
            Contacts::List(list) => {
                bind.kind = BindKind::Update;
                // What the hooks are told about existing bindings: the store is read only
                // when a hook of the chain looks at them.
                let stored = if self.chain.reads_bindings() {
                    self.location
                        .lookup(aor, now_ms)
                        .map_err(|e| self.store_down(req, aor, &e))?
                } else {
                    Vec::new()
                };
                for c in list {
                    let expires = reg.requested_expiry(c, &self.limits);
                    let key = c.key();
                    let existing = stored
                        .iter()
                        .find(|b| *b.key == *key)
                        .map(|b| b.registration_id);
                    bind.bindings.push(ProposedBinding {
                        contact: c.raw,
                        expires: expires.min(self.limits.max_expires),
                        q: c.q,
                        instance: c.addr.param("+sip.instance").flatten(),
                        reg_id: c.addr.param("reg-id").flatten(),
                        registration_id: existing.unwrap_or_else(uuid::Uuid::new_v4),
                        new: existing.is_none(),
                    });
                    asked.push(Asked {
                        key,
                        stored: stored_contact(c),
                        host: c.host(),
                        expires,
                    });
                }
            }
        }
        let path_values = reg.path();
        let outbound = bind
            .bindings
            .iter()
            .any(|b| b.reg_id.is_some() && b.instance.is_some());
        Ok(Proposal {
            bind,
            asked,
            path: (!path_values.is_empty()).then(|| path_values.join(", ")),
            path_values,
            outbound,
        })
    }

    /// RFC 5626 section 6: an outbound registration (reg-id) must have come straight from
    /// the device, or through an edge proxy that said so in Path (`ob`).
    fn outbound_check(
        &self,
        req: &RequestInfo<'_>,
        reg: &Register<'_>,
        p: &Proposal<'_>,
    ) -> Step<()> {
        if p.outbound && reg.vias() > 1 && !Register::edge_supports_outbound(&p.path_values) {
            return Err(self.refuse(
                req,
                &reg.aor,
                Reply::new(439),
                "Outbound registration through a proxy without outbound support",
            ));
        }
        Ok(())
    }

    /// Step 4's authorization: the `bind` chain (which may also shorten expiry and set q).
    async fn bind(
        &self,
        req: &RequestInfo<'_>,
        reg: &Register<'_>,
        p: &mut Proposal<'_>,
    ) -> Step<()> {
        match self.chain.bind(req, &mut p.bind).await {
            Ok(Decision::Continue | Decision::Accept) => Ok(()),
            Ok(Decision::Respond(r)) => Err(self.refused_by_hook(req, &reg.aor, r)),
            Ok(Decision::Drop) => Err(Outcome::Drop),
            Err(e) => Err(Outcome::Reply(e.reply())),
        }
    }

    /// Step 7: the bindings updated, all or nothing ([`crate::store::rules`]); a query
    /// only reads them. Every change is reported ([`Registrar::changed`]).
    fn store(
        &self,
        req: &RequestInfo<'_>,
        reg: &Register<'_>,
        p: &Proposal<'_>,
        limits: &Limits,
        now_ms: u64,
    ) -> Step<Applied> {
        let aor = reg.aor.as_str();
        if p.bind.kind == BindKind::Query {
            return match self.location.lookup(aor, now_ms) {
                Ok(bindings) => Ok(Applied {
                    bindings,
                    ..Applied::default()
                }),
                Err(e) => Err(self.store_down(req, aor, &e)),
            };
        }
        let via = reg.checked.top_via;
        let source_ip = req.source.ip();
        let differs = |host: &str| crate::sip::via::host_ip(host) != Some(source_ip);
        let changes = p
            .bind
            .bindings
            .iter()
            .zip(&p.asked)
            .map(|(b, a)| Change {
                contact: &a.stored,
                key: &a.key,
                expires: b.expires.min(limits.max_expires),
                q: b.q,
                instance: b.instance,
                reg_id: b.reg_id,
                natted: differs(via.host) || a.host.is_some_and(differs),
                registration_id: b.registration_id,
            })
            .collect();
        let update = Update {
            call_id: reg.call_id(),
            cseq: reg.checked.cseq,
            branch: hash_of(&[via.branch().unwrap_or(""), via.host]),
            source: req.source,
            transport: req.transport,
            path: p.path.as_deref(),
            max_contacts: limits.max_contacts,
            evict: limits.evict,
            now_ms,
            remove_all: p.bind.kind == BindKind::RemoveAll,
            changes,
        };
        match self.location.update(aor, &update) {
            Ok(applied) => {
                self.changed(aor, &applied.events, now_ms);
                Ok(applied)
            }
            Err(UpdateError::Unavailable) => {
                Err(self.store_down(req, aor, &StoreError("update failed".into())))
            }
            Err(UpdateError::OutOfOrder) => Err(self.refuse(
                req,
                aor,
                Reply::with_reason(400, "Sequence number out of order"),
                "CSeq not higher than the stored one",
            )),
            Err(UpdateError::TooManyContacts) => Err(self.refuse(
                req,
                aor,
                Reply::with_reason(403, "Too many contacts"),
                "More contacts than max_contacts",
            )),
        }
    }

    /// 503 when the store cannot be read or written: never a 200 for what was not stored.
    /// (The store logs its own failure once; each refusal is logged with its reason.)
    fn store_down(&self, req: &RequestInfo<'_>, aor: &str, e: &StoreError) -> Outcome {
        tracing::debug!(target: "sipreg::store", alias = aor, error = %e, "location store unavailable");
        self.refuse(req, aor, store::unavailable(), store::UNAVAILABLE)
    }
}
