//! [`LuaHooks`]: a script's pool of states behind the [`Hooks`] trait, and its reload.
//!
//! A pool holds one state per worker, each behind its own lock; a call takes the state its
//! thread last used when it is free, else any free one, else waits for its own. The pool
//! itself sits behind an `ArcSwap`: a reload builds a whole new pool and swaps it in, and
//! calls already running finish on the old one, so no request is lost or failed.

use super::Phase;
use super::call::{self, Failure};
use super::convert;
use super::decision::{self, Verdict};
use super::error::LoadError;
use super::files::{self, Files};
use super::limits::Limit;
use super::state::{self, Setup, State};
use crate::config::HookEntry;
use crate::hooks::Hook;
use crate::hooks::{
    Answer, AuthDecision, AuthRequest, BindChanges, BindKind, BindRequest, Decision, ExpireEvent,
    HookError, Hooks, Outage, RequestInfo, RouteDecision,
};
use crate::services::Services;
use crate::store::Stores;
use arc_swap::ArcSwap;
use mlua::{FromLuaMulti, Function, IntoLuaMulti, MultiValue, Table, Value};
use parking_lot::Mutex;
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

#[derive(Debug)]
struct Pool {
    states: Box<[Mutex<State>]>,
    files: Arc<Files>,
    /// The files the load read, with their modification times then (brought up to date
    /// by a refused reload, so that one broken save is tried once).
    stamps: Mutex<Vec<(PathBuf, Option<SystemTime>)>>,
}

/// A Lua script as a hook implementation.
#[derive(Debug)]
pub struct LuaHooks {
    setup: Arc<Setup>,
    size: usize,
    pool: ArcSwap<Pool>,
    /// Serialises reloads (a file change and a SIGHUP at once build one pool, not two).
    reloading: Mutex<()>,
    stats: Arc<Stats>,
}

/// Calls that exceeded the instruction budget, the memory limit and the time limit.
#[derive(Debug, Default)]
struct Stats {
    over_budget: AtomicU64,
    over_memory: AtomicU64,
    over_time: AtomicU64,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SLOT: Cell<usize> = Cell::new(NEXT_SLOT.fetch_add(1, Ordering::Relaxed));
}

fn build_pool(setup: &Setup, size: usize) -> Result<Pool, LoadError> {
    let files = Arc::new(Files::default());
    let mut states = Vec::with_capacity(size);
    for _ in 0..size {
        states.push(Mutex::new(state::build(setup, &files)?));
    }
    let stamps = Mutex::new(files.stamps());
    Ok(Pool {
        states: states.into_boxed_slice(),
        files,
        stamps,
    })
}

impl LuaHooks {
    /// Loads the script of a `[[hooks]]` entry into `size` states.
    ///
    /// # Errors
    /// A [`LoadError`] with file and line.
    pub fn load(
        entry: &HookEntry,
        base_dir: &Path,
        shared: Stores,
        services: &Arc<Services>,
        size: usize,
    ) -> Result<LuaHooks, LoadError> {
        let http = if entry.allow_http.is_empty() {
            None
        } else {
            let tls = services.tls().map_err(LoadError)?;
            let access = super::http::Access::new(
                entry.allow_http.clone(),
                (*tls.config).clone(),
                entry.http_max_connections,
                services.clone(),
            )
            .map_err(LoadError)?;
            Some(Arc::new(access))
        };
        let setup = Setup {
            name: Arc::from(entry.file(base_dir).display().to_string()),
            path: entry.file(base_dir),
            base_dir: base_dir.to_path_buf(),
            config: entry.config.clone(),
            memory: (entry.memory_limit_mib as usize) << 20,
            budget: entry.instruction_budget,
            time: std::time::Duration::from_millis(entry.time_limit_ms),
            shared,
            http,
            cache: Arc::new(super::cache::Cache::new(entry.cache_max_entries)),
            on_outage: (entry.on_outage, entry.outage_retry_after),
        };
        let size = size.max(1);
        let pool = build_pool(&setup, size)?;
        Ok(LuaHooks {
            setup: Arc::new(setup),
            size,
            pool: ArcSwap::from_pointee(pool),
            reloading: Mutex::new(()),
            stats: Arc::default(),
        })
    }

    /// Whether a file the script read changed since it loaded.
    pub fn changed(&self) -> bool {
        self.pool
            .load()
            .stamps
            .lock()
            .iter()
            .any(|(path, when)| files::modified(path) != *when)
    }

    /// Loads the script afresh into new states and swaps them in; on failure the running
    /// states stay and the error is returned (and logged).
    ///
    /// # Errors
    /// The [`LoadError`] of the new script.
    pub fn reload(&self) -> Result<(), LoadError> {
        let _one = self.reloading.lock();
        match build_pool(&self.setup, self.size) {
            Ok(pool) => {
                self.pool.store(Arc::new(pool));
                self.setup.cache.clear();
                tracing::info!(target: "sipreg::hooks", script = %self.setup.name, "script reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(target: "sipreg::hooks", script = %self.setup.name, error = %e, "script refused; the previous version keeps serving");
                for (path, when) in self.pool.load().stamps.lock().iter_mut() {
                    *when = files::modified(path);
                }
                Err(e)
            }
        }
    }

    fn with_state<R>(
        &self,
        f: impl FnOnce(&mut State) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        let pool = self.pool.load_full();
        let (_, mut guard) = pick(&pool);
        let result = f(&mut guard);
        replace_after(result.as_ref().err(), &self.setup, &pool, &mut guard);
        result
    }

    fn failed(&self, hook: Hook, f: Failure) -> HookError {
        failed(&self.setup, &self.stats, hook, f)
    }

    /// A call that may wait: begun in a state, run until it ends or waits; a call that
    /// waits goes on as [`Waiting`], in the same state.
    fn start<A: IntoLuaMulti, T: FromLuaMulti + Send + 'static, R: Send + 'static>(
        &self,
        hook: Hook,
        req: &RequestInfo<'_>,
        args: impl FnOnce(&mlua::Lua, Function, Option<Table>) -> mlua::Result<A>,
        finish: impl FnOnce(T) -> mlua::Result<R> + Send + 'static,
    ) -> Answer<Option<R>> {
        let pool = self.pool.load_full();
        let (slot, mut guard) = pick(&pool);
        let begun = call::begin(&guard, Phase::In(hook), self.setup.budget, req, args);
        let thread = match begun {
            Ok(Some(t)) => t,
            Ok(None) => return Answer::Now(Ok(None)),
            Err(f) => {
                replace_after(Some(&f), &self.setup, &pool, &mut guard);
                return Answer::Now(Err(self.failed(hook, f)));
            }
        };
        let generation = guard.generation;
        let mut waiting = Waiting {
            thread: Some(thread),
            saved: None,
            vars: req.vars.share(),
            finish: Some(Box::new(finish)),
            pool: pool.clone(),
            slot,
            generation,
            setup: self.setup.clone(),
            stats: self.stats.clone(),
            hook,
        };
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match waiting.poll_in(&mut guard, &mut cx) {
            std::task::Poll::Ready(r) => Answer::Now(r),
            std::task::Poll::Pending => {
                drop(guard);
                Answer::Later(Box::pin(waiting))
            }
        }
    }

    fn decide<A: IntoLuaMulti>(
        &self,
        hook: Hook,
        req: &RequestInfo<'_>,
        args: impl FnOnce(&mlua::Lua, Function, Option<Table>) -> mlua::Result<A>,
    ) -> Result<Verdict, HookError> {
        let phase = Phase::In(hook);
        self.with_state(|st| {
            call::run(st, phase, self.setup.budget, Some(req), args, |d: Flat| {
                read(phase, d)
            })
        })
        .map(|v| v.unwrap_or(Verdict::Continue))
        .map_err(|f| self.failed(hook, f))
    }
}

/// A free state of the pool (the one this thread used last when it is free), locked.
fn pick(pool: &Pool) -> (usize, parking_lot::MutexGuard<'_, State>) {
    let n = pool.states.len();
    let slot = SLOT.with(Cell::get) % n;
    (0..n)
        .find_map(|i| {
            pool.states[(slot + i) % n]
                .try_lock()
                .map(|g| ((slot + i) % n, g))
        })
        .unwrap_or_else(|| (slot, pool.states[slot].lock()))
}

/// After a call that hit a limit: the state may hold anything now (a half-built table, a
/// suspended coroutine), so a fresh one from the same files takes its place.
fn replace_after(failure: Option<&Failure>, setup: &Setup, pool: &Pool, state: &mut State) {
    if let Some(Failure { limit: Some(_), .. }) = failure {
        match state::build(setup, &pool.files) {
            Ok(fresh) => *state = fresh,
            Err(e) => {
                tracing::error!(target: "sipreg::hooks", script = %setup.name, error = %e, "could not replace a Lua state");
            }
        }
    }
}

fn failed(setup: &Setup, stats: &Stats, hook: Hook, f: Failure) -> HookError {
    if let Some(limit) = f.limit {
        match limit {
            Limit::Instructions(_) => &stats.over_budget,
            Limit::Memory(_) => &stats.over_memory,
            Limit::Time(_) => &stats.over_time,
        }
        .fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            target: "sipreg::hooks",
            script = %setup.name,
            function = hook.name(),
            limit = %limit,
            "Lua limit exceeded; request failed and the state replaced"
        );
    }
    let (answer, retry_after) = setup.on_outage;
    HookError {
        implementation: setup.name.to_string(),
        hook,
        message: f.message,
        outage: f.outage.map(|service| Outage {
            service,
            answer,
            retry_after,
        }),
    }
}

type Finish<T, R> = Box<dyn FnOnce(T) -> mlua::Result<R> + Send>;

/// The rest of a call that waits (`sip.http`): polled in the state it began in, which it
/// locks for each poll only, so other calls run in that state while it waits.
struct Waiting<T: 'static, R> {
    thread: Option<call::Thread<T>>,
    saved: Option<call::Saved>,
    vars: crate::hooks::Vars,
    finish: Option<Finish<T, R>>,
    pool: Arc<Pool>,
    slot: usize,
    /// The state's build: a state replaced meanwhile (another call hit a limit in it)
    /// cannot go on with this call.
    generation: u64,
    setup: Arc<Setup>,
    stats: Arc<Stats>,
    hook: Hook,
}

impl<T: 'static, R> Waiting<T, R> {
    fn poll_in(
        &mut self,
        state: &mut State,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Option<R>, HookError>> {
        use std::task::Poll;
        let Some(thread) = self.thread.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        let finish = |t: T| match self.finish.take() {
            Some(f) => f(t),
            None => Err(mlua::Error::runtime("a hook call ended twice")),
        };
        let Poll::Ready(result) =
            call::poll(state, thread, &mut self.saved, cx, &self.vars, finish)
        else {
            return Poll::Pending;
        };
        self.thread = None;
        replace_after(result.as_ref().err(), &self.setup, &self.pool, state);
        Poll::Ready(
            result
                .map(Some)
                .map_err(|f| failed(&self.setup, &self.stats, self.hook, f)),
        )
    }
}

impl<T: 'static, R> std::future::Future for Waiting<T, R> {
    type Output = Result<Option<R>, HookError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        let pool = this.pool.clone();
        let mut state = pool.states[this.slot].lock();
        if state.generation != this.generation {
            this.thread = None;
            return std::task::Poll::Ready(Err(HookError::new(
                this.setup.name.to_string(),
                this.hook,
                "its Lua state was replaced while it waited (another call hit a limit)",
            )));
        }
        this.poll_in(&mut state, cx)
    }
}

impl<T: 'static, R> Drop for Waiting<T, R> {
    fn drop(&mut self) {
        // A call given up (its request's deadline) ends in its state, under its lock.
        // Unwinding from a panic while polling it, this thread holds that lock already:
        // the call is left to the state's collector (a leaked reference) rather than
        // waited for forever.
        if let Some(thread) = self.thread.take() {
            if std::thread::panicking() {
                std::mem::forget(thread);
                return;
            }
            let _state = self.pool.states[self.slot].lock();
            drop(thread);
        }
    }
}

/// A decision as a caller returns it: kind and three arguments.
type Flat = (i64, Value, Value, Value);

/// The decision a caller returned.
fn read(phase: Phase, (kind, a, b, c): Flat) -> mlua::Result<Verdict> {
    decision::read(phase, kind, a, b, c).map_err(mlua::Error::runtime)
}

impl Hooks for LuaHooks {
    fn name(&self) -> &str {
        &self.setup.name
    }

    fn reload(&self) -> Option<Result<(), String>> {
        Some(LuaHooks::reload(self).map_err(|e| e.to_string()))
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            (
                "instruction_budget_exceeded",
                self.stats.over_budget.load(Ordering::Relaxed),
            ),
            (
                "memory_limit_exceeded",
                self.stats.over_memory.load(Ordering::Relaxed),
            ),
            (
                "time_limit_exceeded",
                self.stats.over_time.load(Ordering::Relaxed),
            ),
            ("kv_over_quota", self.setup.shared.kv.refused()),
        ]
    }

    fn on_request(&self, req: &RequestInfo<'_>) -> Result<Decision, HookError> {
        self.decide(Hook::OnRequest, req, |_, f, vars| Ok((f, vars)))
            .map(Verdict::into_decision)
    }

    fn authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Result<AuthDecision, HookError> {
        self.decide(Hook::Authenticate, req, |_, f, vars| {
            Ok((f, vars, auth.aor, auth.username, auth.realm))
        })
        .map(Verdict::into_auth)
    }

    fn bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Result<Decision, HookError> {
        let kind = bind_kind(bind.kind);
        let (hook, phase) = (Hook::Bind, Phase::In(Hook::Bind));
        let n = bind.bindings.len();
        let result = {
            let bind = &*bind;
            self.with_state(|st| {
                call::run(
                    st,
                    phase,
                    self.setup.budget,
                    Some(req),
                    |lua, f, vars| bind_args(lua, f, vars, req, bind, kind),
                    |r: BindOut| read_bind(phase, n, r),
                )
            })
        };
        let (verdict, changed) = match result {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Decision::Continue),
            Err(f) => return Err(self.failed(hook, f)),
        };
        bind.apply(changed);
        Ok(verdict.into_decision())
    }

    fn expire(&self, event: &ExpireEvent<'_>) -> Result<(), HookError> {
        let hook = Hook::Expire;
        let phase = Phase::In(hook);
        self.with_state(|st| {
            call::run(
                st,
                phase,
                self.setup.budget,
                None,
                |lua, f, vars| Ok((f, vars, convert::expired(lua, event)?)),
                |()| Ok(()),
            )
            .map(|_| ())
        })
        .map_err(|f| self.failed(hook, f))
    }

    fn route(&self, req: &RequestInfo<'_>) -> Result<RouteDecision, HookError> {
        self.decide(Hook::Route, req, |_, f, vars| Ok((f, vars)))
            .map(Verdict::into_route)
    }

    fn may_wait(&self) -> bool {
        self.setup.http.is_some()
    }

    fn start_on_request(&self, req: &RequestInfo<'_>) -> Answer<Decision> {
        if !self.may_wait() {
            return self.on_request(req).into();
        }
        let phase = Phase::In(Hook::OnRequest);
        self.start(
            Hook::OnRequest,
            req,
            |_, f, vars| Ok((f, vars)),
            move |d: Flat| read(phase, d),
        )
        .map(|v| v.unwrap_or(Verdict::Continue).into_decision())
    }

    fn start_authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Answer<AuthDecision> {
        if !self.may_wait() {
            return self.authenticate(req, auth).into();
        }
        let phase = Phase::In(Hook::Authenticate);
        self.start(
            Hook::Authenticate,
            req,
            |_, f, vars| Ok((f, vars, auth.aor, auth.username, auth.realm)),
            move |d: Flat| read(phase, d),
        )
        .map(|v| v.unwrap_or(Verdict::Continue).into_auth())
    }

    fn start_bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Answer<(Decision, Option<BindChanges>)> {
        if !self.may_wait() {
            return self.bind(req, bind).map(|d| (d, None)).into();
        }
        let kind = bind_kind(bind.kind);
        let phase = Phase::In(Hook::Bind);
        let proposed = &bind.bindings;
        let n = proposed.len();
        self.start(
            Hook::Bind,
            req,
            |lua, f, vars| bind_args(lua, f, vars, req, bind, kind),
            move |r: BindOut| read_bind(phase, n, r),
        )
        .map(|r| match r {
            Some((v, changed)) => (v.into_decision(), Some(changed)),
            None => (Decision::Continue, None),
        })
    }

    fn start_route(&self, req: &RequestInfo<'_>) -> Answer<RouteDecision> {
        if !self.may_wait() {
            return self.route(req).into();
        }
        let phase = Phase::In(Hook::Route);
        self.start(
            Hook::Route,
            req,
            |_, f, vars| Ok((f, vars)),
            move |d: Flat| read(phase, d),
        )
        .map(|v| v.unwrap_or(Verdict::Continue).into_route())
    }
}

/// The name scripts see for a REGISTER's kind.
fn bind_kind(kind: BindKind) -> &'static str {
    match kind {
        BindKind::Query => "query",
        BindKind::Update => "update",
        BindKind::RemoveAll => "remove-all",
    }
}

/// What the `bind` caller returns: the decision, ctx.limits, ctx.reply_headers, then each
/// binding's expires and q.
type BindOut = (i64, Value, Value, Value, Value, Value, MultiValue);

/// The `bind` caller's arguments: the AOR, the identity, the kind, the source, the
/// transport and the proposed bindings.
fn bind_args(
    lua: &mlua::Lua,
    f: Function,
    vars: Option<Table>,
    req: &RequestInfo<'_>,
    bind: &BindRequest<'_>,
    kind: &'static str,
) -> mlua::Result<impl IntoLuaMulti + use<>> {
    let mut bindings = MultiValue::new();
    for p in &bind.bindings {
        convert::proposed(lua, p, &mut bindings)?;
    }
    Ok((
        f,
        vars,
        bind.aor.to_owned(),
        bind.identity.map(|i| i.username.clone()),
        kind,
        req.source.to_string(),
        req.transport.as_str(),
        bind.bindings.len(),
        bindings,
    ))
}

/// The `bind` caller's answer: the verdict, the limits and headers, and `n` bindings'
/// expires and q.
fn read_bind(
    phase: Phase,
    n: usize,
    (kind, a, b, c, limits, headers, mut rest): BindOut,
) -> mlua::Result<(Verdict, BindChanges)> {
    let v = read(phase, (kind, a, b, c))?;
    let mut bindings = Vec::with_capacity(n);
    for _ in 0..n {
        let expires = rest.pop_front().unwrap_or(Value::Nil);
        let q = rest.pop_front().unwrap_or(Value::Nil);
        bindings.push(convert::read_back(expires, q)?);
    }
    let changes = BindChanges {
        bindings,
        policy: super::bind::limits(limits)?,
        reply_headers: super::bind::reply_headers(headers)?,
    };
    Ok((v, changes))
}
