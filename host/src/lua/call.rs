//! One call of a hook function: the phase and request the `sip` functions read, the `ctx`
//! table, the instruction budget, and the request borrowed for exactly the call (a scoped
//! userdata: a script that keeps it sees an error, never a dangling request).

use super::Phase;
use super::convert;
use super::limits::{Limit, Meter};
use super::state::{State, describe};
use crate::config::Transport;
use crate::hooks::RequestInfo;
use mlua::{AnyUserData, Lua, Table, Value};
use std::net::SocketAddr;

/// What the `sip` functions of a state know about the running call (Lua app data).
#[derive(Debug, Default)]
pub(crate) struct CallData {
    pub phase: Phase,
    /// The request (a scoped userdata over [`crate::sip::Message`]), in request hooks.
    pub msg: Option<AnyUserData>,
    pub source: Option<SocketAddr>,
    pub transport: Option<Transport>,
    /// The request's time; the clock's outside requests.
    pub now_ms: Option<u64>,
}

impl CallData {
    /// The time the call's `sip` functions use.
    pub fn now_ms(&self) -> u64 {
        self.now_ms.unwrap_or_else(crate::core::now_ms)
    }
}

/// A failed call: the message for the log, and the limit hit, if that was the cause.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub message: String,
    pub limit: Option<Limit>,
}

/// Calls the state's function for `phase` with a `ctx` table: `fill` adds the hook's own
/// fields, `finish` reads the result (and `ctx`) after the call.
pub(crate) fn run<R>(
    state: &State,
    phase: Phase,
    budget: u64,
    req: Option<&RequestInfo<'_>>,
    fill: impl FnOnce(&Lua, &Table) -> mlua::Result<()>,
    finish: impl FnOnce(&Lua, &Table, Value) -> mlua::Result<R>,
) -> Result<Option<R>, Failure> {
    let Some(f) = phase.hook_index().and_then(|i| state.fns[i].as_ref()) else {
        return Ok(None);
    };
    let lua = &state.lua;
    if let Some(mut c) = lua.app_data_mut::<CallData>() {
        c.phase = phase;
        c.msg = None;
        c.source = req.map(|r| r.source);
        c.transport = req.map(|r| r.transport);
        c.now_ms = req.map(|r| r.now_ms);
    }
    if let Some(m) = lua.app_data_ref::<Meter>() {
        m.start(budget);
    }
    let result = (|| {
        let ctx = lua.create_table_with_capacity(0, 6)?;
        ctx.raw_set("hook", phase.name())?;
        let vars = convert::vars_table(lua, req.map(|r| r.vars))?;
        ctx.raw_set("vars", &vars)?;
        fill(lua, &ctx)?;
        let out: Value = match req {
            Some(r) => lua.scope(|scope| {
                let ud = scope.create_any_userdata_ref(r.msg)?;
                if let Some(mut c) = lua.app_data_mut::<CallData>() {
                    c.msg = Some(ud);
                }
                let out = f.call::<Value>(&ctx);
                if let Some(mut c) = lua.app_data_mut::<CallData>() {
                    c.msg = None;
                }
                out
            })?,
            None => f.call(&ctx)?,
        };
        if let Some(r) = req {
            // ctx.vars may have been replaced by another table
            let vars: Value = ctx.raw_get("vars")?;
            if let Value::Table(t) = vars {
                convert::store_vars(&t, r.vars)?;
            }
        }
        finish(lua, &ctx, out)
    })();
    result.map(Some).map_err(|e| {
        let tripped = lua.app_data_ref::<Meter>().and_then(|m| m.tripped());
        let limit = tripped.or_else(|| {
            is_memory_error(&e).then(|| {
                lua.app_data_ref::<Meter>().map(|m| {
                    m.trip_memory();
                    m.tripped()
                })
            })??
        });
        Failure {
            message: match limit {
                Some(l) => l.to_string(),
                None => describe(&e),
            },
            limit,
        }
    })
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
