//! Runs the configured hook implementations in order; the first one with an opinion decides.

use super::timing::Timings;
use super::{
    Answer, AuthDecision, AuthRequest, BindRequest, Decision, ExpireEvent, Hook, HookError, Hooks,
    Later, RequestInfo, RouteDecision,
};
use crate::metrics::Text;
use crate::services::Services;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request may wait in its hooks when the chain is not told
/// (`[server] wait_deadline_ms` sets it).
pub const WAIT_DEADLINE: Duration = Duration::from_secs(2);

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
    /// Some implementation may wait ([`Hooks::may_wait`]).
    may_wait: bool,
    /// How long a request may wait in its hooks, all calls together.
    wait_deadline: Duration,
    /// The outside services the implementations reach.
    services: Arc<Services>,
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
        let may_wait = hooks.iter().any(|h| h.may_wait());
        HookChain {
            hooks,
            timings,
            reads_bindings,
            may_wait,
            wait_deadline: WAIT_DEADLINE,
            services: Arc::default(),
        }
    }

    /// The same chain, whose implementations reach the outside services of `services`
    /// (written into `/metrics` with the chain's families).
    #[must_use]
    pub fn with_services(mut self, services: Arc<Services>) -> HookChain {
        self.services = services;
        self
    }

    /// The same chain, whose requests may wait this long in their hooks.
    #[must_use]
    pub fn with_wait_deadline(mut self, deadline: Duration) -> HookChain {
        self.wait_deadline = deadline;
        self
    }

    /// Whether some implementation may wait: then a request may be parked.
    pub fn may_wait(&self) -> bool {
        self.may_wait
    }

    /// How long a request may wait in its hooks.
    pub fn wait_deadline(&self) -> Duration {
        self.wait_deadline
    }

    /// Asks hook `hook` of implementation `i`, which may wait (until the request's
    /// deadline: past it, the call is a hook error): timed, counted, and on the trail.
    async fn ask<D: std::fmt::Debug>(
        &self,
        i: usize,
        hook: Hook,
        req: &RequestInfo<'_>,
        f: impl FnOnce(&dyn Hooks) -> Answer<D>,
    ) -> Result<D, HookError> {
        let h = self.hooks[i].as_ref();
        let started = Instant::now();
        let r = match f(h) {
            Answer::Now(r) => r,
            Answer::Later(rest) => {
                let deadline = req.deadline.unwrap_or(started + self.wait_deadline);
                self.wait(h, hook, rest, deadline).await
            }
        };
        self.answered(i, hook, started, r)
    }

    async fn wait<D>(
        &self,
        h: &dyn Hooks,
        hook: Hook,
        rest: Later<D>,
        deadline: Instant,
    ) -> Result<D, HookError> {
        if tokio::runtime::Handle::try_current().is_err() {
            // Off any runtime (in-process tests, `sipreg try`): the request is parked
            // first, and the rest runs where it is settled, on a runtime.
            PendingOnce(false).await;
        }
        match tokio::time::timeout_at(deadline.into(), rest).await {
            Ok(r) => r,
            Err(_) => Err(HookError::new(
                h.name(),
                hook,
                format!(
                    "the request's wait deadline of {} ms passed",
                    self.wait_deadline.as_millis()
                ),
            )),
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
        self.answered(i, hook, started, r)
    }

    /// Records how call `i` of `hook`, begun at `started`, went, and puts its answer on
    /// the trail.
    fn answered<D: std::fmt::Debug>(
        &self,
        i: usize,
        hook: Hook,
        started: Instant,
        r: Result<D, HookError>,
    ) -> Result<D, HookError> {
        self.timings.record(i, hook, started.elapsed(), r.is_err());
        trail(hook, self.hooks[i].as_ref(), &r);
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
        self.services.write(out);
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
    pub async fn on_request(&self, req: &RequestInfo<'_>) -> Result<Decision, HookError> {
        for i in 0..self.hooks.len() {
            match self
                .ask(i, Hook::OnRequest, req, |h| h.start_on_request(req))
                .await?
            {
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
    pub async fn authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Result<AuthDecision, HookError> {
        for i in 0..self.hooks.len() {
            match self
                .ask(i, Hook::Authenticate, req, |h| {
                    h.start_authenticate(req, auth)
                })
                .await?
            {
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
    pub async fn bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Result<Decision, HookError> {
        for i in 0..self.hooks.len() {
            let (decision, changes) = self
                .ask(i, Hook::Bind, req, |h| h.start_bind(req, bind))
                .await?;
            // An implementation may hand its changes back (a call that waited must); else
            // it made them itself.
            if let Some(changes) = changes {
                bind.apply(changes);
            }
            match decision {
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
    pub async fn route(&self, req: &RequestInfo<'_>) -> Result<RouteDecision, HookError> {
        for i in 0..self.hooks.len() {
            match self
                .ask(i, Hook::Route, req, |h| h.start_route(req))
                .await?
            {
                RouteDecision::Pass => continue,
                d => return Ok(d),
            }
        }
        Ok(RouteDecision::Pass)
    }
}

/// A future that is pending once, then ready.
struct PendingOnce(bool);

impl std::future::Future for PendingOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
