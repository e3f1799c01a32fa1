//! Runs the configured hook implementations in order; the first one with an opinion decides.

use super::timing::Timings;
use super::{
    AuthDecision, AuthRequest, BindRequest, Decision, ExpireEvent, Hook, HookError, Hooks,
    RequestInfo, RouteDecision,
};
use crate::metrics::Text;
use std::sync::Arc;
use std::time::Instant;

/// The tracing target of the decision trail: one debug event per hook asked, with its
/// answer (`sipreg try` prints them).
pub const TRAIL: &str = "sipreg::trail";

fn trail<D: std::fmt::Debug>(hook: Hook, h: &dyn Hooks, r: &Result<D, HookError>) {
    match r {
        Ok(d) => {
            tracing::debug!(target: TRAIL, hook = hook.name(), implementation = h.name(), decision = ?d, "hook answered")
        }
        Err(e) => {
            tracing::debug!(target: TRAIL, hook = hook.name(), implementation = h.name(), error = %e.message, "hook failed")
        }
    }
}

/// The hook implementations in the order they are asked, and what is measured of them.
#[derive(Clone)]
pub struct HookChain {
    hooks: Vec<Arc<dyn Hooks>>,
    timings: Arc<Timings>,
    /// Some implementation reads the stored bindings in `bind`.
    reads_bindings: bool,
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
        let timings = Arc::new(Timings::new(hooks.len()));
        let reads_bindings = hooks.iter().any(|h| h.reads_bindings());
        HookChain {
            hooks,
            timings,
            reads_bindings,
        }
    }

    /// Calls hook `hook` of implementation `i`: timed, counted, and on the trail.
    fn call<D: std::fmt::Debug>(
        &self,
        i: usize,
        hook: Hook,
        f: impl FnOnce(&dyn Hooks) -> Result<D, HookError>,
    ) -> Result<D, HookError> {
        let h = self.hooks[i].as_ref();
        let started = Instant::now();
        let r = f(h);
        self.timings.record(i, hook, started.elapsed(), r.is_err());
        trail(hook, h, &r);
        r
    }

    /// Reloads every implementation that has files to reload (scripts), each keeping its
    /// running version on failure: their names with the outcome.
    pub fn reload(&self) -> Vec<(String, Result<(), String>)> {
        self.hooks
            .iter()
            .filter_map(|h| h.reload().map(|r| (h.name().to_owned(), r)))
            .collect()
    }

    /// Writes the hook families of `/metrics`.
    pub fn write_metrics(&self, out: &mut Text) {
        let names: Vec<&str> = self.hooks.iter().map(|h| h.name()).collect();
        let counters: Vec<_> = self.hooks.iter().map(|h| h.counters()).collect();
        self.timings.write(&names, &counters, out);
    }

    /// Whether some implementation looks at the stored bindings in `bind`.
    pub fn reads_bindings(&self) -> bool {
        self.reads_bindings
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
        for i in 0..self.hooks.len() {
            match self.call(i, Hook::OnRequest, |h| h.on_request(req))? {
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
        for i in 0..self.hooks.len() {
            match self.call(i, Hook::Authenticate, |h| h.authenticate(req, auth))? {
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
        for i in 0..self.hooks.len() {
            match self.call(i, Hook::Bind, |h| h.bind(req, bind))? {
                Decision::Continue => continue,
                d => return Ok(d),
            }
        }
        Ok(Decision::Continue)
    }

    /// `expire` to every hook; failures are returned after all were called.
    pub fn expire(&self, event: &ExpireEvent<'_>) -> Vec<HookError> {
        (0..self.hooks.len())
            .filter_map(|i| self.call(i, Hook::Expire, |h| h.expire(event)).err())
            .collect()
    }

    /// `route` down the chain until one decides.
    ///
    /// # Errors
    /// The first [`HookError`].
    pub fn route(&self, req: &RequestInfo<'_>) -> Result<RouteDecision, HookError> {
        for i in 0..self.hooks.len() {
            match self.call(i, Hook::Route, |h| h.route(req))? {
                RouteDecision::Pass => continue,
                d => return Ok(d),
            }
        }
        Ok(RouteDecision::Pass)
    }
}
