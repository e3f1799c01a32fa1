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
    AuthDecision, AuthRequest, BindKind, BindRequest, Decision, ExpireEvent, HookError, Hooks,
    RequestInfo, RouteDecision,
};
use crate::store::Stores;
use arc_swap::ArcSwap;
use mlua::{Function, IntoLuaMulti, MultiValue, Table, Value};
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
    setup: Setup,
    size: usize,
    pool: ArcSwap<Pool>,
    /// Serialises reloads (a file change and a SIGHUP at once build one pool, not two).
    reloading: Mutex<()>,
    /// Calls that exceeded the instruction budget, the memory limit and the time limit.
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
        size: usize,
    ) -> Result<LuaHooks, LoadError> {
        let setup = Setup {
            name: Arc::from(entry.file(base_dir).display().to_string()),
            path: entry.file(base_dir),
            base_dir: base_dir.to_path_buf(),
            config: entry.config.clone(),
            memory: (entry.memory_limit_mib as usize) << 20,
            budget: entry.instruction_budget,
            time: std::time::Duration::from_millis(entry.time_limit_ms),
            shared,
        };
        let size = size.max(1);
        let pool = build_pool(&setup, size)?;
        Ok(LuaHooks {
            setup,
            size,
            pool: ArcSwap::from_pointee(pool),
            reloading: Mutex::new(()),
            over_budget: AtomicU64::new(0),
            over_memory: AtomicU64::new(0),
            over_time: AtomicU64::new(0),
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
        let n = pool.states.len();
        let slot = SLOT.with(Cell::get) % n;
        let mut guard = (0..n)
            .find_map(|i| pool.states[(slot + i) % n].try_lock())
            .unwrap_or_else(|| pool.states[slot].lock());
        let result = f(&mut guard);
        if let Err(Failure { limit: Some(_), .. }) = &result {
            // The state may hold anything now (a half-built table, a suspended coroutine):
            // a fresh one from the same files takes its place.
            match state::build(&self.setup, &pool.files) {
                Ok(fresh) => *guard = fresh,
                Err(e) => {
                    tracing::error!(target: "sipreg::hooks", script = %self.setup.name, error = %e, "could not replace a Lua state");
                }
            }
        }
        result
    }

    fn failed(&self, hook: Hook, f: Failure) -> HookError {
        if let Some(limit) = f.limit {
            match limit {
                Limit::Instructions(_) => &self.over_budget,
                Limit::Memory(_) => &self.over_memory,
                Limit::Time(_) => &self.over_time,
            }
            .fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                target: "sipreg::hooks",
                script = %self.setup.name,
                function = hook.name(),
                limit = %limit,
                "Lua limit exceeded; request failed and the state replaced"
            );
        }
        HookError {
            implementation: self.setup.name.to_string(),
            hook,
            message: f.message,
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
                self.over_budget.load(Ordering::Relaxed),
            ),
            (
                "memory_limit_exceeded",
                self.over_memory.load(Ordering::Relaxed),
            ),
            (
                "time_limit_exceeded",
                self.over_time.load(Ordering::Relaxed),
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
        let kind = match bind.kind {
            BindKind::Query => "query",
            BindKind::Update => "update",
            BindKind::RemoveAll => "remove-all",
        };
        let (hook, phase) = (Hook::Bind, Phase::In(Hook::Bind));
        let proposed = &bind.bindings;
        let result = self.with_state(|st| {
            call::run(
                st,
                phase,
                self.setup.budget,
                Some(req),
                |lua, f, vars| {
                    let mut bindings = MultiValue::new();
                    for p in proposed {
                        convert::proposed(lua, p, &mut bindings)?;
                    }
                    Ok((
                        f,
                        vars,
                        bind.aor,
                        bind.identity.map(|i| i.username.as_str()),
                        kind,
                        req.source.to_string(),
                        req.transport.as_str(),
                        proposed.len(),
                        bindings,
                    ))
                },
                |(kind, a, b, c, mut rest): (i64, Value, Value, Value, MultiValue)| {
                    let v = read(phase, (kind, a, b, c))?;
                    let mut changed = Vec::with_capacity(proposed.len());
                    for _ in 0..proposed.len() {
                        let expires = rest.pop_front().unwrap_or(Value::Nil);
                        let q = rest.pop_front().unwrap_or(Value::Nil);
                        changed.push(convert::read_back(expires, q)?);
                    }
                    Ok((v, changed))
                },
            )
        });
        let (verdict, changed) = match result {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Decision::Continue),
            Err(f) => return Err(self.failed(hook, f)),
        };
        for (p, (expires, q)) in bind.bindings.iter_mut().zip(changed) {
            p.expires = expires;
            p.q = q;
        }
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
}
