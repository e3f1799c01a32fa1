//! One call of a hook function: the phase and request the `sip` functions read (for
//! exactly the call), the instruction budget, and `ctx.vars` in and out.

use super::Phase;
use super::context::CallData;
use super::convert;
use super::error::describe;
use super::limits::{Limit, Meter, Paused, Uncapped};
use super::state::State;
use crate::hooks::{RequestInfo, Vars};
use mlua::{FromLuaMulti, Function, IntoLuaMulti, Lua, Table};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A failed call: the message for the log, the limit hit, if that was the cause, and the
/// outside service that failed, if that was.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub message: String,
    pub limit: Option<Limit>,
    pub outage: Option<String>,
}

/// Calls the state's function for `phase` through its caller (`callers.lua`): `args`
/// gives the caller's arguments from the function and `ctx.vars` on (a tuple is pushed
/// straight onto Lua's stack), `finish` reads what the caller returns after `ctx.vars`:
/// the decision (kind and three arguments, as `decisions.lua` flattens it) and, for
/// `bind`, the bindings' `expires` and `q`.
pub(crate) fn run<A: IntoLuaMulti, T: FromLuaMulti, R>(
    state: &State,
    phase: Phase,
    budget: u64,
    req: Option<&RequestInfo<'_>>,
    args: impl FnOnce(&Lua, Function, Option<Table>) -> mlua::Result<A>,
    finish: impl FnOnce(T) -> mlua::Result<R>,
) -> Result<Option<R>, Failure> {
    let Some((i, f)) = enter(state, phase, budget, req) else {
        return Ok(None);
    };
    let lua = &state.lua;
    let uncapped = Uncapped::new(lua);
    let result = (|| {
        let vars = vars_in(lua, req)?;
        let call_args = args(lua, f.clone(), vars)?;
        let (vars, out): (Option<Table>, T) = capped(lua, || state.callers[i].call(call_args))?;
        if let Some(r) = req {
            vars_out(vars, r.vars)?;
        }
        finish(out)
    })();
    if let Some(mut c) = lua.app_data_mut::<CallData>() {
        c.msg = None;
    }
    drop(uncapped);
    result.map(Some).map_err(|e| failure(lua, &e))
}

/// Readies `state` for a call of `phase`: the function to call through caller `i` (none
/// when the script has no such hook), the call's values for the `sip` functions, its
/// budget and time limit.
fn enter<'s>(
    state: &'s State,
    phase: Phase,
    budget: u64,
    req: Option<&RequestInfo<'_>>,
) -> Option<(usize, &'s Function)> {
    let i = phase.hook_index()?;
    let f = state.fns[i].as_ref()?;
    let lua = &state.lua;
    if let Some(mut c) = lua.app_data_mut::<CallData>() {
        c.phase = phase;
        c.msg = req.map(|r| r.msg.clone());
        c.source = req.map(|r| r.source);
        c.transport = req.map(|r| r.transport);
        c.peer_cert = req.and_then(|r| r.peer_cert.cloned());
        c.now_ms = req.map(|r| r.now_ms);
        c.answered.clear();
    }
    if let Some(m) = lua.app_data_ref::<Meter>() {
        m.start(budget, 1);
    }
    Some((i, f))
}

/// `ctx.vars` for the call: a table of the request's values, none while it has none.
fn vars_in(lua: &Lua, req: Option<&RequestInfo<'_>>) -> mlua::Result<Option<Table>> {
    match req {
        Some(r) if !r.vars.is_empty() => convert::vars_table(lua, r.vars).map(Some),
        _ => Ok(None),
    }
}

/// `ctx.vars` as the call left it, back into the request's values.
fn vars_out(t: Option<Table>, vars: &Vars) -> mlua::Result<()> {
    match t {
        Some(t) => convert::store_vars(&t, vars),
        None if !vars.is_empty() => {
            vars.replace(Vec::new());
            Ok(())
        }
        None => Ok(()),
    }
}

/// What a call's error was: a limit hit, or the script's error.
fn failure(lua: &Lua, e: &mlua::Error) -> Failure {
    let tripped = lua.app_data_ref::<Meter>().and_then(|m| m.tripped());
    let limit = tripped.or_else(|| {
        is_memory_error(e).then(|| {
            lua.app_data_ref::<Meter>().map(|m| {
                m.trip_memory();
                m.tripped()
            })
        })??
    });
    let outage = match limit {
        Some(_) => None,
        None => super::http::outage_of(e).map(|u| u.service.clone()),
    };
    Failure {
        message: match limit {
            Some(l) => l.to_string(),
            None => describe(e),
        },
        limit,
        outage,
    }
}

/// A call that may wait, as a Lua thread (mlua's async call): it yields while a
/// `sip.http` request is on its way.
pub(crate) type Thread<T> = Pin<Box<dyn Future<Output = mlua::Result<(Option<Table>, T)>> + Send>>;

/// What a waiting call keeps of the state's per-call values while others run in it.
#[derive(Debug)]
pub(crate) struct Saved {
    data: CallData,
    meter: Paused,
}

/// Begins a call that may wait, as [`run`] begins one (`None`: the script has no such
/// function); [`poll`] runs it.
pub(crate) fn begin<A: IntoLuaMulti, T: FromLuaMulti + Send + 'static>(
    state: &State,
    phase: Phase,
    budget: u64,
    req: &RequestInfo<'_>,
    args: impl FnOnce(&Lua, Function, Option<Table>) -> mlua::Result<A>,
) -> Result<Option<Thread<T>>, Failure> {
    let Some((i, f)) = enter(state, phase, budget, Some(req)) else {
        return Ok(None);
    };
    let lua = &state.lua;
    let _uncapped = Uncapped::new(lua);
    let begun = (|| {
        let vars = vars_in(lua, Some(req))?;
        let call_args = args(lua, f.clone(), vars)?;
        Ok(state.callers[i].call_async::<(Option<Table>, T)>(call_args))
    })();
    match begun {
        Ok(thread) => Ok(Some(Box::pin(thread))),
        Err(e) => Err(failure(lua, &e)),
    }
}

/// Runs a call [`begin`] began until it ends or waits, in its state (the caller holds
/// it): the state's per-call values are its own while it runs, and kept in `saved` while
/// it waits. Once it ends, `ctx.vars` goes back into `vars` and `finish` reads its answer.
pub(crate) fn poll<T, R>(
    state: &State,
    thread: &mut Thread<T>,
    saved: &mut Option<Saved>,
    cx: &mut Context<'_>,
    vars: &Vars,
    finish: impl FnOnce(T) -> mlua::Result<R>,
) -> Poll<Result<R, Failure>> {
    let lua = &state.lua;
    if let Some(s) = saved.take() {
        if let Some(mut c) = lua.app_data_mut::<CallData>() {
            *c = s.data;
        }
        if let Some(m) = lua.app_data_ref::<Meter>() {
            m.resume(&s.meter);
        }
    }
    let uncapped = Uncapped::new(lua);
    let polled = capped(lua, || thread.as_mut().poll(cx));
    let Poll::Ready(result) = polled else {
        let data = lua
            .app_data_mut::<CallData>()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        let meter = lua.app_data_ref::<Meter>().map(|m| m.pause());
        if let Some(meter) = meter {
            *saved = Some(Saved { data, meter });
        }
        return Poll::Pending;
    };
    let result = result.and_then(|(t, out)| {
        vars_out(t, vars)?;
        finish(out)
    });
    let answered = lua.app_data_mut::<CallData>().map(|mut c| {
        c.msg = None;
        std::mem::take(&mut c.answered)
    });
    drop(uncapped);
    let result = result.map_err(|e| failure(lua, &e));
    // The services that answered served, unless the call ended in an outage (an answer
    // that did not read is one).
    if !matches!(
        &result,
        Err(Failure {
            outage: Some(_),
            ..
        })
    ) {
        for s in answered.into_iter().flatten() {
            s.healthy();
        }
    }
    Poll::Ready(result)
}

/// Runs script code with the cap in force (inside an [`Uncapped`] stretch).
fn capped<R>(lua: &Lua, f: impl FnOnce() -> R) -> R {
    let cap = lua.app_data_ref::<Meter>().map_or(0, |m| m.memory);
    let _ = lua.set_memory_limit(cap);
    let r = f();
    let _ = lua.set_memory_limit(0);
    r
}

fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_memory_error(cause)
        }
        mlua::Error::RuntimeError(m) => m.starts_with(super::limits::MEMORY_MESSAGE),
        _ => false,
    }
}
