//! RFC 3261 section 10.3 step 7, once for every store: an AOR's bindings and a REGISTER's
//! [`Update`] in, the AOR's new bindings and the [`Event`]s out. The CSeq order (a
//! retransmission changes nothing, a replay is refused), `max_contacts` (a binding is
//! evicted as `evict` says, or the update refused), RFC 5626 flows (a contact with `+sip.instance`
//! and `reg-id` writes the binding with the same pair), upsert, and the removal of
//! bindings whose time is up (reported as expired, like the timer's).
//!
//! [`apply`] works on the list in place and checks everything before it changes anything,
//! so a refusal leaves the list as it was. It touches nothing but the list: what a store
//! keeps beside its bindings (the memory store's expiry index, Redis's keys) it learns
//! through [`Effects`].

use super::{Binding, Change, Event, ExpireReason, Update, UpdateError};
use crate::config::Evict;
use std::sync::Arc;

/// What a store keeps beside the bindings, told of every binding written or dropped.
pub trait Effects {
    /// `b` was written (added, or refreshed in place when `existed`): its expiry moved.
    fn written(&mut self, b: &mut Binding, existed: bool);

    /// `b` left the list (removed, evicted, or pruned as past its time).
    fn dropped(&mut self, b: &Binding);
}

/// A store that keeps nothing beside its bindings.
#[derive(Debug, Default)]
pub struct NoEffects;

impl Effects for NoEffects {
    fn written(&mut self, _: &mut Binding, _: bool) {}
    fn dropped(&mut self, _: &Binding) {}
}

/// What an update did to the list.
#[derive(Debug, Default)]
pub struct Outcome {
    pub events: Vec<Event>,
    /// The request was applied before (same Call-ID, CSeq and branch): nothing changed
    /// but the pruning of bindings past their time.
    pub retransmission: bool,
}

/// Step 7's order check of one binding the update writes: Ok(true) to go on, Ok(false)
/// for a retransmission of the request that wrote it.
fn ordered(b: &Binding, u: &Update<'_>) -> Result<bool, UpdateError> {
    if b.call_id.as_ref() != u.call_id || u.cseq > b.cseq {
        Ok(true)
    } else if u.cseq == b.cseq && u.branch == b.branch {
        Ok(false)
    } else {
        Err(UpdateError::OutOfOrder)
    }
}

/// How many live bindings the update leaves (before any eviction).
fn left(bindings: &[Binding], u: &Update<'_>) -> usize {
    if u.remove_all {
        return 0;
    }
    let live = |b: &&Binding| b.expires_at_ms > u.now_ms;
    let kept = bindings
        .iter()
        .filter(live)
        .filter(|b| !u.changes.iter().any(|c| c.writes(b)))
        .count();
    kept + u.changes.iter().filter(|c| c.expires > 0).count()
}

/// The checks, before anything changes: whether the update is a retransmission.
fn check(bindings: &[Binding], u: &Update<'_>) -> Result<bool, UpdateError> {
    let adding = u.changes.iter().filter(|c| c.expires > 0).count();
    if adding > u.max_contacts {
        return Err(UpdateError::TooManyContacts);
    }
    let live = |b: &&Binding| b.expires_at_ms > u.now_ms;
    let mut retransmission = false;
    if u.remove_all {
        for b in bindings.iter().filter(live) {
            retransmission |= !ordered(b, u)?;
        }
    } else {
        for c in &u.changes {
            if let Some(b) = bindings.iter().filter(live).find(|b| c.writes(b)) {
                retransmission |= !ordered(b, u)?;
            }
        }
    }
    if !retransmission && u.evict == Evict::Refuse && left(bindings, u) > u.max_contacts {
        return Err(UpdateError::TooManyContacts);
    }
    Ok(retransmission)
}

/// Writes change `c` over binding `b` (a refresh), leaving unchanged strings shared.
fn refresh(b: &mut Binding, c: &Change<'_>, u: &Update<'_>, expires_at_ms: u64) {
    if *b.contact != *c.contact {
        b.contact = Arc::from(c.contact);
    }
    if *b.key != *c.key {
        b.key = c.key.into();
    }
    if b.path.as_deref() != u.path {
        b.path = u.path.map(Into::into);
    }
    b.expires_at_ms = expires_at_ms;
    b.q = c.q;
    if *b.call_id != *u.call_id {
        b.call_id = u.call_id.into();
    }
    b.cseq = u.cseq;
    b.branch = u.branch;
    b.source = u.source;
    b.transport = u.transport;
    b.natted = c.natted;
    if b.instance.as_deref() != c.instance {
        b.instance = c.instance.map(Into::into);
    }
    if b.reg_id.as_deref() != c.reg_id {
        b.reg_id = c.reg_id.map(Into::into);
    }
    b.refreshed_ms = u.now_ms;
}

/// The binding change `c` adds.
fn added(c: &Change<'_>, u: &Update<'_>, expires_at_ms: u64) -> Binding {
    Binding {
        contact: Arc::from(c.contact),
        key: c.key.into(),
        expires_at_ms,
        q: c.q,
        call_id: u.call_id.into(),
        cseq: u.cseq,
        branch: u.branch,
        registration_id: c.registration_id,
        source: u.source,
        transport: u.transport,
        natted: c.natted,
        instance: c.instance.map(Into::into),
        reg_id: c.reg_id.map(Into::into),
        path: u.path.map(Into::into),
        refreshed_ms: u.now_ms,
        timer: 0,
    }
}

/// Applies `u` to an AOR's `bindings` (every binding it has, those past their time
/// included), all or nothing.
///
/// # Errors
/// [`UpdateError::TooManyContacts`] or [`UpdateError::OutOfOrder`]; `bindings` is then
/// unchanged.
pub fn apply(
    bindings: &mut Vec<Binding>,
    u: &Update<'_>,
    effects: &mut impl Effects,
) -> Result<Outcome, UpdateError> {
    let retransmission = check(bindings, u)?;
    let mut events = Vec::new();
    if retransmission {
        // Applied once already: the bindings stay as they are.
    } else if u.remove_all {
        for b in bindings.drain(..) {
            effects.dropped(&b);
            events.push(Event::Removed(b, ExpireReason::Unregistered));
        }
    } else {
        for c in &u.changes {
            let pos = bindings.iter().position(|b| c.writes(b));
            if c.expires == 0 {
                if let Some(i) = pos {
                    let b = bindings.remove(i);
                    effects.dropped(&b);
                    events.push(Event::Removed(b, ExpireReason::Unregistered));
                }
                continue;
            }
            let expires_at_ms = u.now_ms + u64::from(c.expires) * 1000;
            match pos {
                Some(i) => {
                    let b = &mut bindings[i];
                    refresh(b, c, u, expires_at_ms);
                    effects.written(b, true);
                    events.push(Event::Refreshed(b.clone()));
                }
                None => {
                    let mut b = added(c, u, expires_at_ms);
                    effects.written(&mut b, false);
                    events.push(Event::Added(b.clone()));
                    bindings.push(b);
                }
            }
        }
        evict(bindings, u, effects, &mut events);
    }
    // Bindings whose time is up but that no expiry removed yet go now, reported as
    // expired (the expiry index or set no longer holds them: reported once).
    for b in bindings.extract_if(.., |b| b.expires_at_ms <= u.now_ms) {
        effects.dropped(&b);
        events.push(Event::Removed(b, ExpireReason::Expired));
    }
    Ok(Outcome {
        events,
        retransmission,
    })
}

/// `max_contacts`: with `evict = "oldest"` the binding refreshed least recently goes
/// first (of two refreshed in the same millisecond, the one listed first); with
/// `"lowest_q"` the one with the lowest q (none counts as 1.0), the oldest of equals;
/// never one this request wrote. (`"refuse"` never gets here: [`check`] refused.)
fn evict(
    bindings: &mut Vec<Binding>,
    u: &Update<'_>,
    effects: &mut impl Effects,
    events: &mut Vec<Event>,
) {
    let q_first = u.evict == Evict::LowestQ;
    while bindings.len() > u.max_contacts {
        let Some((i, _)) = bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| b.refreshed_ms < u.now_ms || b.call_id.as_ref() != u.call_id)
            .min_by_key(|(_, b)| {
                let q = if q_first { b.q.unwrap_or(1000) } else { 0 };
                (q, b.refreshed_ms)
            })
        else {
            break;
        };
        let b = bindings.remove(i);
        effects.dropped(&b);
        events.push(Event::Removed(b, ExpireReason::Evicted));
    }
}
