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
/// `print`; returns `freeze(table, name)` and `in_coroutine()`.
pub(crate) fn run_prelude(
    lua: &Lua,
    require: Function,
    print: Function,
) -> mlua::Result<(Function, Function)> {
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
    let charge = lua.create_function(|lua, units: u64| {
        lua.app_data_ref::<limits::Meter>()
            .map_or(Ok(()), |m| m.charge(units))
    })?;
    lua.load(PRELUDE).set_name("=sipreg sandbox").call((
        must_propagate,
        plain_error,
        require,
        print,
        charge,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `table.move` in chunks moves what Lua's own moves, overlapping both ways, between
    /// tables, and refuses what it refuses.
    #[test]
    fn table_move_in_chunks_moves_as_lua_does() {
        let ours = base_state(limits::Limits {
            memory: 64 << 20,
            budget: 100_000_000,
            time: std::time::Duration::from_secs(10),
        })
        .unwrap();
        let nothing = ours.create_function(|_, ()| Ok(())).unwrap();
        run_prelude(&ours, nothing.clone(), nothing).unwrap();
        let theirs = Lua::new();
        let fill = "local t = {} for i = 1, 300 do t[i] = i end ";
        let show = " local out = {} for i = 1, 700 do out[#out + 1] = tostring(t[i]) end return table.concat(out, ',')";
        let cases = [
            "table.move(t, 1, 300, 101)",
            "table.move(t, 101, 300, 1)",
            "table.move(t, 1, 300, 1)",
            "table.move(t, 50, 250, 60)",
            "table.move(t, 60, 250, 50)",
            "table.move(t, 1, 200, 2)",
            "table.move(t, 1, 100, 400)",
            "table.move(t, 1, 0, 5)",
            "table.move(t, 1.0, '200', 3)",
            "local u = {} table.move(t, 1, 300, 5, u) t = u",
        ];
        for case in cases {
            let chunk = format!("{fill}{case}{show}");
            let want: String = theirs.load(&chunk).eval().unwrap();
            let got: String = ours.load(&chunk).eval().unwrap();
            assert_eq!(got, want, "{case}");
        }
        for bad in [
            "table.move({}, math.mininteger, math.maxinteger, 1)",
            "table.move({}, 1, 100, math.maxinteger)",
        ] {
            let err = |lua: &Lua| lua.load(bad).exec().unwrap_err().to_string();
            let (want, got) = (err(&theirs), err(&ours));
            let message = |e: &str| {
                let first = e.lines().next().unwrap_or("");
                first
                    .split_once("bad argument")
                    .map_or("", |(_, m)| m)
                    .to_owned()
            };
            assert_eq!(message(&got), message(&want), "{bad}: {got} / {want}");
        }
    }
}
