//! The admin and support log lines for bindings, in the spirit of Pexip's administrator log:
//! `Registration added` / `Registration deleted` go to the admin target,
//! `Registration refreshed` to the support target.

use crate::hooks::{ExpireEvent, ExpireReason, HookChain};
use crate::store::{Binding, Event};

/// The tracing target of admin events.
pub const ADMIN: &str = "sipreg::admin";

pub(crate) fn added(aor: &str, b: &Binding) {
    tracing::info!(
        target: ADMIN,
        alias = aor,
        protocol = b.transport.via_token(),
        registration_id = %b.registration_id,
        natted = if b.natted { "True" } else { "False" },
        source = %b.source,
        contact = &*b.contact,
        "Registration added"
    );
}

pub(crate) fn refreshed(aor: &str, b: &Binding) {
    tracing::info!(
        target: "sipreg::support",
        alias = aor,
        protocol = b.transport.via_token(),
        registration_id = %b.registration_id,
        natted = if b.natted { "True" } else { "False" },
        source = %b.source,
        "Registration refreshed"
    );
}

/// Logs a removal and tells the `expire` hooks.
pub(crate) fn deleted(chain: &HookChain, aor: &str, b: &Binding, reason: ExpireReason) {
    tracing::info!(
        target: ADMIN,
        alias = aor,
        protocol = b.transport.via_token(),
        registration_id = %b.registration_id,
        natted = if b.natted { "True" } else { "False" },
        source = %b.source,
        reason = reason.as_str(),
        "Registration deleted"
    );
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
    for e in chain.expire(&event) {
        tracing::error!(target: "sipreg::hooks", error = %e, "expire hook failed");
    }
}

/// Logs every event of an update.
pub(crate) fn events(chain: &HookChain, aor: &str, events: &[Event]) {
    for e in events {
        match e {
            Event::Added(b) => added(aor, b),
            Event::Refreshed(b) => refreshed(aor, b),
            Event::Removed(b, reason) => deleted(chain, aor, b, *reason),
        }
    }
}
