//! A sandboxed Lua 5.4 state: the base, string, table, math, utf8 and coroutine libraries;
//! of `os` only `time`, `date`, `clock` and `difftime`; no `io`, `debug` or `package`; `load`
//! of source text only; no `dofile`, `loadfile` or `string.dump`; `require` of Lua modules
//! under the script's folder (`state.rs`); `print` into the log. The limits of `limits.rs`
//! are installed before any script code runs, and the prelude (`prelude.lua`) makes them
//! impossible to catch with `pcall`.

use super::error::describe;
use super::limits;
use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};

const PRELUDE: &str = include_str!("prelude.lua");

/// The `os` functions a script keeps.
const OS_KEPT: [&str; 4] = ["time", "date", "clock", "difftime"];

/// A state with the kept libraries and the limits installed, before the prelude.
pub(crate) fn base_state(limits: limits::Limits) -> mlua::Result<Lua> {
    let libs = StdLib::TABLE
        | StdLib::STRING
        | StdLib::MATH
        | StdLib::UTF8
        | StdLib::COROUTINE
        | StdLib::OS;
    let lua = Lua::new_with(libs, LuaOptions::new())?;
    limits::install(&lua, limits)?;
    super::strings::install(&lua)?;
    // Generational: the garbage of a hook call dies young, and the tables a script builds
    // at load (a password table, say) are not traversed again at every cycle.
    lua.gc_gen(0, 0);
    Ok(lua)
}

/// Runs the prelude in a state made by [`base_state`], with the state's own `require` and
/// `print`; returns `freeze(table, name)`.
pub(crate) fn run_prelude(lua: &Lua, require: Function, print: Function) -> mlua::Result<Function> {
    let g = lua.globals();
    let os: Table = g.get("os")?;
    let kept = lua.create_table()?;
    for name in OS_KEPT {
        kept.set(name, os.get::<Value>(name)?)?;
    }
    g.set("os", kept)?;
    let must_propagate =
        lua.create_function(|lua, err: Value| Ok(limits::must_propagate(lua, &err)))?;
    let plain_error = lua.create_function(|lua, err: Value| match err {
        Value::Error(e) => Ok(Value::String(lua.create_string(describe(&e))?)),
        other => Ok(other),
    })?;
    lua.load(PRELUDE).set_name("=sipreg sandbox").call((
        must_propagate,
        plain_error,
        require,
        print,
    ))
}
