//! Runs the configured hook implementations in order; the first one with an opinion decides.

use super::{
    AuthDecision, AuthRequest, BindRequest, Decision, ExpireEvent, HookError, Hooks, RequestInfo,
    RouteDecision,
};
use std::sync::Arc;

/// The tracing target of the decision trail: one debug event per hook asked, with its
/// answer (`sipreg try` prints them).
pub const TRAIL: &str = "sipreg::trail";

fn trail<D: std::fmt::Debug>(hook: &'static str, h: &dyn Hooks, r: &Result<D, HookError>) {
    match r {
        Ok(d) => {
            tracing::debug!(target: TRAIL, hook, implementation = h.name(), decision = ?d, "hook answered")
        }
        Err(e) => {
            tracing::debug!(target: TRAIL, hook, implementation = h.name(), error = %e.message, "hook failed")
        }
    }
}

/// The hook implementations in the order they are asked.
#[derive(Clone)]
pub struct HookChain {
    hooks: Vec<Arc<dyn Hooks>>,
}

impl std::fmt::Debug for HookChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.hooks.iter().map(|h| h.name()))
            .finish()
    }
}

impl HookChain {
    /// A chain of these implementations, asked in this order.
    pub fn new(hooks: Vec<Arc<dyn Hooks>>) -> HookChain {
        HookChain { hooks }
    }

    /// How many implementations the chain asks.
    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// `on_request` down the chain until one decides.
    ///
    /// # Errors
    /// The first [`HookError`].
    pub fn on_request(&self, req: &RequestInfo<'_>) -> Result<Decision, HookError> {
        for h in &self.hooks {
            let r = h.on_request(req);
            trail("on_request", h.as_ref(), &r);
            match r? {
                Decision::Continue => continue,
                d => return Ok(d),
            }
        }
        Ok(Decision::Continue)
    }

    /// `authenticate` down the chain until one decides.
    ///
    /// # Errors
    /// The first [`HookError`].
    pub fn authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Result<AuthDecision, HookError> {
        for h in &self.hooks {
            let r = h.authenticate(req, auth);
            trail("authenticate", h.as_ref(), &r);
            match r? {
                AuthDecision::Pass => continue,
                d => return Ok(d),
            }
        }
        Ok(AuthDecision::Pass)
    }

    /// `bind` down the chain until one decides.
    ///
    /// # Errors
    /// The first [`HookError`].
    pub fn bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Result<Decision, HookError> {
        for h in &self.hooks {
            let r = h.bind(req, bind);
            trail("bind", h.as_ref(), &r);
            match r? {
                Decision::Continue => continue,
                d => return Ok(d),
            }
        }
        Ok(Decision::Continue)
    }

    /// `expire` to every hook; failures are returned after all were called.
    pub fn expire(&self, event: &ExpireEvent<'_>) -> Vec<HookError> {
        self.hooks
            .iter()
            .filter_map(|h| {
                let r = h.expire(event);
                trail("expire", h.as_ref(), &r);
                r.err()
            })
            .collect()
    }

    /// `route` down the chain until one decides.
    ///
    /// # Errors
    /// The first [`HookError`].
    pub fn route(&self, req: &RequestInfo<'_>) -> Result<RouteDecision, HookError> {
        for h in &self.hooks {
            let r = h.route(req);
            trail("route", h.as_ref(), &r);
            match r? {
                RouteDecision::Pass => continue,
                d => return Ok(d),
            }
        }
        Ok(RouteDecision::Pass)
    }
}
