//! What the registrar reports of bindings and refusals, in one place: the admin and support
//! log lines in the spirit of Pexip's administrator log (`Registration added` /
//! `Registration deleted` to the admin target, `Registration refreshed` and refusals to the
//! support target), the registration history, the metrics, and the `expire` hooks.

use crate::config::Transport;
use crate::core::now_ms;
use crate::history::{Entry, History, Outcome};
use crate::hooks::{ExpireEvent, ExpireReason, HookChain, RequestInfo};
use crate::metrics::Metrics;
use crate::store::{Binding, Event};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

/// The tracing target of admin events.
pub const ADMIN: &str = "sipreg::admin";

/// The registrar's reporter.
#[derive(Debug)]
pub(crate) struct Log {
    pub chain: HookChain,
    pub history: Arc<History>,
    pub metrics: Arc<Metrics>,
}

fn natted(b: &Binding) -> &'static str {
    if b.natted { "True" } else { "False" }
}

/// A history entry without code, contact or registration id.
fn entry(
    outcome: Outcome,
    aor: &str,
    source: SocketAddr,
    transport: Transport,
    reason: Cow<'static, str>,
) -> Entry {
    Entry {
        seq: 0,
        time_ms: now_ms(),
        outcome,
        alias: Arc::from(aor),
        source,
        transport,
        code: None,
        reason,
        contact: None,
        registration_id: None,
    }
}

impl Log {
    fn binding(&self, outcome: Outcome, aor: &str, b: &Binding, reason: &'static str) {
        self.history.record(Entry {
            contact: Some(b.contact.clone()),
            registration_id: Some(b.registration_id),
            ..entry(outcome, aor, b.source, b.transport, Cow::Borrowed(reason))
        });
    }

    pub fn added(&self, aor: &str, b: &Binding) {
        tracing::info!(
            target: ADMIN,
            alias = aor,
            protocol = b.transport.via_token(),
            registration_id = %b.registration_id,
            natted = natted(b),
            source = %b.source,
            contact = &*b.contact,
            "Registration added"
        );
        self.binding(Outcome::Added, aor, b, "Registration added");
    }

    pub fn refreshed(&self, aor: &str, b: &Binding) {
        tracing::info!(
            target: "sipreg::support",
            alias = aor,
            protocol = b.transport.via_token(),
            registration_id = %b.registration_id,
            natted = natted(b),
            source = %b.source,
            "Registration refreshed"
        );
        self.binding(Outcome::Refreshed, aor, b, "Registration refreshed");
    }

    /// Logs a removal and tells the `expire` hooks.
    pub fn deleted(&self, aor: &str, b: &Binding, reason: ExpireReason) {
        tracing::info!(
            target: ADMIN,
            alias = aor,
            protocol = b.transport.via_token(),
            registration_id = %b.registration_id,
            natted = natted(b),
            source = %b.source,
            reason = reason.as_str(),
            "Registration deleted"
        );
        self.binding(Outcome::Deleted, aor, b, reason.as_str());
        let event = ExpireEvent {
            aor,
            contact: &b.contact,
            registration_id: &b.registration_id,
            source: b.source,
            transport: b.transport,
            reason,
            q: b.q,
            instance: b.instance.as_deref(),
            reg_id: b.reg_id.as_deref(),
            natted: b.natted,
        };
        for e in self.chain.expire(&event) {
            tracing::error!(target: "sipreg::hooks", error = %e, "expire hook failed");
        }
    }

    /// Logs every event of an update.
    pub fn events(&self, aor: &str, events: &[Event]) {
        for e in events {
            match e {
                Event::Added(b) => self.added(aor, b),
                Event::Refreshed(b) => self.refreshed(aor, b),
                Event::Removed(b, reason) => self.deleted(aor, b, *reason),
            }
        }
    }

    /// A REGISTER refused with `code`.
    pub fn refused(&self, req: &RequestInfo<'_>, aor: &str, code: u16, reason: &str) {
        tracing::info!(
            target: "sipreg::support",
            alias = aor,
            source = %req.source,
            protocol = req.transport.via_token(),
            status = code,
            reason,
            "Registration refused"
        );
        self.refused_quietly(req, aor, code, reason);
    }

    /// A refusal logged elsewhere (by the hook that answered it): into the history.
    pub fn refused_quietly(&self, req: &RequestInfo<'_>, aor: &str, code: u16, reason: &str) {
        self.history.record(Entry {
            code: Some(code),
            ..entry(
                Outcome::Refused,
                aor,
                req.source,
                req.transport,
                Cow::Owned(reason.to_owned()),
            )
        });
    }

    /// Credentials that did not pass (challenged again with `code`).
    pub fn auth_failed(
        &self,
        req: &RequestInfo<'_>,
        aor: &str,
        supplied_username: &str,
        code: u16,
        reason: &'static str,
    ) {
        tracing::info!(
            target: "sipreg::support",
            alias = aor,
            supplied_username,
            source = %req.source,
            reason,
            "Authentication failed"
        );
        self.metrics.auth_failures.add(reason);
        self.refused_quietly(req, aor, code, reason);
    }
}
