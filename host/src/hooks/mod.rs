//! The five hooks where policy plugs into the registrar core, and the decisions they return.
//!
//! Every implementation (the built-in one, Lua scripts, native plugins) implements
//! [`Hooks`]; a [`HookChain`] runs them in configured order, the built-in last. A call
//! runs inline on the thread that read the request, bounded (instruction budget, plugin
//! contract), without an allocation per call for a boxed future. An implementation that
//! may wait on I/O (`may_wait`) answers through the `start_*` methods, which give the
//! answer now or the rest of the call as a future ([`Answer`], `wait.rs`): the request
//! is then parked, not its thread.

pub mod builtin;
mod chain;
mod hook;
mod outage;
pub mod policy;
mod timing;
mod types;
mod wait;

pub use chain::{HookChain, TRAIL};
pub use hook::Hook;
pub use types::*;
pub use wait::{Answer, BindChanges, Later};

/// The hook points, each a method with a no-opinion default.
///
/// | hook | runs | may return |
/// |---|---|---|
/// | `on_request` | for every request, after the syntax checks | [`Decision`] |
/// | `authenticate` | for a REGISTER, after the domain and Require checks | [`AuthDecision`] |
/// | `bind` | for a REGISTER, once its identity is known | [`Decision`] |
/// | `expire` | when a binding goes away (expiry, removal, eviction) | nothing: no reply is possible |
/// | `route` | for a request the proxy routes outside a dialog (not REGISTER, not OPTIONS to the server; within a dialog the route set decides) | [`RouteDecision`] |
pub trait Hooks: Send + Sync {
    /// The name used in logs and errors (a script path, a plugin name, `builtin`).
    fn name(&self) -> &str;

    /// What the implementation counts of itself, for `/metrics` (a script: the limits it
    /// exceeded), as event names and counts.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Whether `bind` looks at what is stored of the proposed bindings
    /// ([`ProposedBinding::registration_id`] and `new`): the registrar reads the AOR's
    /// bindings before `bind` only when some implementation of the chain does.
    fn reads_bindings(&self) -> bool {
        true
    }

    /// Loads the implementation's files afresh (a script), keeping the running version on
    /// failure; None when there is nothing to reload.
    fn reload(&self) -> Option<Result<(), String>> {
        None
    }

    /// Every request. `Continue` lets the next hook and then the core decide.
    ///
    /// # Errors
    /// A [`HookError`] fails the request with 500.
    fn on_request(&self, req: &RequestInfo<'_>) -> Result<Decision, HookError> {
        let _ = req;
        Ok(Decision::Continue)
    }

    /// Who sends this REGISTER: challenge, hand the core credentials to check, vouch for
    /// an identity, or answer.
    ///
    /// # Errors
    /// A [`HookError`] fails the request with 500.
    fn authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Result<AuthDecision, HookError> {
        let _ = (req, auth);
        Ok(AuthDecision::Pass)
    }

    /// May this identity change these bindings of this AOR? The hook may shorten `expires`
    /// and change `q` of the proposed bindings.
    ///
    /// # Errors
    /// A [`HookError`] fails the request with 500.
    fn bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Result<Decision, HookError> {
        let _ = (req, bind);
        Ok(Decision::Continue)
    }

    /// A binding went away. Every hook in the chain sees every event.
    ///
    /// # Errors
    /// A [`HookError`] is logged; the binding is gone either way.
    fn expire(&self, event: &ExpireEvent<'_>) -> Result<(), HookError> {
        let _ = event;
        Ok(())
    }

    /// Where a request that is not for the registrar goes: targets (an AOR of ours is
    /// looked up in the location service), a reply, or no opinion (the Request-URI is
    /// the target).
    ///
    /// # Errors
    /// A [`HookError`] fails the request with 500.
    fn route(&self, req: &RequestInfo<'_>) -> Result<RouteDecision, HookError> {
        let _ = req;
        Ok(RouteDecision::Pass)
    }

    /// Whether a call may wait (answer [`Answer::Later`] from a `start_*` method). A chain
    /// without such an implementation never parks a request.
    fn may_wait(&self) -> bool {
        false
    }

    /// Starts `on_request`: the answer now, or the rest of the call.
    fn start_on_request(&self, req: &RequestInfo<'_>) -> Answer<Decision> {
        self.on_request(req).into()
    }

    /// Starts `authenticate`: the answer now, or the rest of the call.
    fn start_authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Answer<AuthDecision> {
        self.authenticate(req, auth).into()
    }

    /// Starts `bind`: the answer now (the call changed `bind` itself), or the rest of
    /// the call, which ends with the decision and each binding's `expires` and `q`.
    fn start_bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Answer<(Decision, Option<BindChanges>)> {
        self.bind(req, bind).map(|d| (d, None)).into()
    }

    /// Starts `route`: the answer now, or the rest of the call.
    fn start_route(&self, req: &RequestInfo<'_>) -> Answer<RouteDecision> {
        self.route(req).into()
    }
}
