//! What the registrar writes of bindings and refusals: the admin and support log lines in
//! the spirit of Pexip's administrator log (`Registration added` / `Registration deleted`
//! to the admin target, `Registration refreshed` and refusals to the support target), the
//! registration history and the metrics. (What else a change sets off, the registrar
//! raises: `events.rs`.)

use crate::clock::Clock;
use crate::config::Transport;
use crate::history::{Entry, History, Outcome};
use crate::hooks::RequestInfo;
use crate::log_gate::LogGate;
use crate::metrics::Metrics;
use crate::store::{Binding, ExpireReason};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

/// The tracing target of admin events.
pub const ADMIN: &str = "sipreg::admin";

/// The registrar's reporter.
#[derive(Debug)]
pub(crate) struct Log {
    pub history: Arc<History>,
    pub metrics: Arc<Metrics>,
    /// The time of history entries.
    pub clock: Clock,
    /// What keeps a flood of refusals from one source down to a few lines.
    pub gate: Arc<LogGate>,
}

/// Whether a support line of `kind` about the request's source is written (the gate is
/// asked only when the line would be).
fn let_through(gate: &LogGate, kind: &'static str, req: &RequestInfo<'_>) -> bool {
    tracing::enabled!(target: "sipreg::support", tracing::Level::INFO)
        && gate.admit(kind, req.source.ip(), req.now_ms)
}

fn natted(b: &Binding) -> &'static str {
    if b.natted { "True" } else { "False" }
}

/// The log line of a binding: alias, protocol, registration id, natted and source, then
/// the line's own fields.
macro_rules! binding_line {
    ($target:expr, $aor:expr, $b:expr, $message:literal $(, $field:ident = $value:expr)*) => {
        tracing::info!(
            target: $target,
            alias = $aor,
            protocol = $b.transport.via_token(),
            registration_id = %$b.registration_id,
            natted = natted($b),
            source = %$b.source,
            $($field = $value,)*
            $message
        )
    };
}

/// A history entry without code, contact or registration id.
fn entry(
    time_ms: u64,
    outcome: Outcome,
    aor: &str,
    source: SocketAddr,
    transport: Transport,
    reason: Cow<'static, str>,
) -> Entry {
    Entry {
        seq: 0,
        time_ms,
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
            ..entry(
                self.clock.now_ms(),
                outcome,
                aor,
                b.source,
                b.transport,
                Cow::Borrowed(reason),
            )
        });
    }

    pub fn added(&self, aor: &str, b: &Binding) {
        binding_line!(ADMIN, aor, b, "Registration added", contact = &*b.contact);
        self.binding(Outcome::Added, aor, b, "Registration added");
    }

    pub fn refreshed(&self, aor: &str, b: &Binding) {
        binding_line!("sipreg::support", aor, b, "Registration refreshed");
        self.binding(Outcome::Refreshed, aor, b, "Registration refreshed");
    }

    /// Logs a removal.
    pub fn deleted(&self, aor: &str, b: &Binding, reason: ExpireReason) {
        binding_line!(
            ADMIN,
            aor,
            b,
            "Registration deleted",
            reason = reason.as_str()
        );
        self.binding(Outcome::Deleted, aor, b, reason.as_str());
    }

    /// A REGISTER refused with `code`.
    pub fn refused(&self, req: &RequestInfo<'_>, aor: &str, code: u16, reason: &str) {
        if let_through(&self.gate, "Registration refused", req) {
            tracing::info!(
            target: "sipreg::support",
            alias = aor,
            source = %req.source,
            protocol = req.transport.via_token(),
            status = code,
            reason,
            "Registration refused"
            );
        }
        self.refused_quietly(req, aor, code, reason);
    }

    /// The support line of a wrong password, with the user names expected and supplied
    /// (the history and the counters take it from [`Log::auth_failed`]).
    pub fn wrong_credentials(
        &self,
        req: &RequestInfo<'_>,
        aor: &str,
        expected_username: &str,
        supplied_username: &str,
    ) {
        if let_through(&self.gate, "Registration refused", req) {
            tracing::info!(
                target: "sipreg::support",
                alias = aor,
                expected_username,
                supplied_username,
                source = %req.source,
                reason = "Invalid credentials",
                "Registration refused"
            );
        }
    }

    /// A REGISTER left unanswered (`reason`): logged and into the history, without a code.
    pub fn dropped(&self, req: &RequestInfo<'_>, aor: &str, reason: &'static str) {
        if let_through(&self.gate, "Registration dropped", req) {
            tracing::info!(
            target: "sipreg::support",
            alias = aor,
            source = %req.source,
            protocol = req.transport.via_token(),
            reason,
            "Registration dropped"
            );
        }
        self.metrics.refusals.add_text(reason);
        self.history.record(entry(
            self.clock.now_ms(),
            Outcome::Refused,
            aor,
            req.source,
            req.transport,
            Cow::Borrowed(reason),
        ));
    }

    /// The guard banned a source for an alias.
    pub fn banned(&self, req: &RequestInfo<'_>, aor: &str, seconds: u64) {
        tracing::warn!(
            target: "sipreg::support",
            alias = aor,
            source = %req.source,
            protocol = req.transport.via_token(),
            seconds,
            "Source banned after failed authentications"
        );
    }

    /// A refusal logged elsewhere (by the hook that answered it): into the history.
    pub fn refused_quietly(&self, req: &RequestInfo<'_>, aor: &str, code: u16, reason: &str) {
        self.metrics.refusals.add_text(reason);
        self.history.record(Entry {
            code: Some(code),
            ..entry(
                self.clock.now_ms(),
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
        if let_through(&self.gate, "Authentication failed", req) {
            tracing::info!(
            target: "sipreg::support",
            alias = aor,
            supplied_username,
            source = %req.source,
            reason,
            "Authentication failed"
            );
        }
        self.metrics.auth_failures.add(reason);
        self.refused_quietly(req, aor, code, reason);
    }
}
