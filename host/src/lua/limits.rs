//! The two limits of a Lua state: a memory cap (mlua's allocator refuses allocations past
//! it) and an instruction budget per call (a VM hook counts instructions).
//!
//! Either limit, once hit, is final for the call: the sandbox's `pcall`, `xpcall` and
//! `coroutine.resume` hand the error on instead of catching it (`sandbox.rs`), so an endless
//! loop or an allocation bomb wrapped in `pcall` still ends the call. The state is then
//! replaced (`pool.rs`).

use mlua::{HookTriggers, Lua, VmState};
use std::cell::Cell;

/// The message Lua gives a failed allocation.
pub(crate) const MEMORY_MESSAGE: &str = "not enough memory";

/// Which limit a call hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Instructions(u64),
    Memory(usize),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Instructions(n) => write!(f, "instruction budget of {n} exceeded"),
            Limit::Memory(n) => write!(f, "memory limit of {} MiB exceeded", n >> 20),
        }
    }
}

/// The state's counters (Lua app data).
#[derive(Debug)]
pub(crate) struct Meter {
    used: Cell<u64>,
    budget: Cell<u64>,
    step: u64,
    pub memory: usize,
    tripped: Cell<Option<Limit>>,
}

impl Meter {
    /// Starts a call (or the load) with this budget.
    pub fn start(&self, budget: u64) {
        self.used.set(0);
        self.budget.set(budget);
        self.tripped.set(None);
    }

    /// The limit hit since [`Meter::start`], if any.
    pub fn tripped(&self) -> Option<Limit> {
        self.tripped.get()
    }

    /// Marks the memory cap as hit.
    pub fn trip_memory(&self) {
        self.tripped.set(Some(Limit::Memory(self.memory)));
    }
}

/// Installs the cap and the instruction counter on a new state.
pub(crate) fn install(lua: &Lua, memory: usize, budget: u64) -> mlua::Result<()> {
    let step = (budget / 10).clamp(1, 1000);
    lua.set_app_data(Meter {
        used: Cell::new(0),
        budget: Cell::new(budget),
        step,
        memory,
        tripped: Cell::new(None),
    });
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(step as u32),
        |lua, _| {
            let Some(m) = lua.app_data_ref::<Meter>() else {
                return Ok(VmState::Continue);
            };
            let used = m.used.get() + m.step;
            m.used.set(used);
            if used > m.budget.get() {
                let limit = Limit::Instructions(m.budget.get());
                m.tripped.set(Some(limit));
                return Err(mlua::Error::runtime(limit));
            }
            Ok(VmState::Continue)
        },
    )?;
    lua.set_memory_limit(memory)?;
    Ok(())
}

/// The memory cap lifted while Rust code builds or reads Lua values, restored when
/// dropped. While a cap is set, mlua runs every allocation of the Rust side in a protected
/// call, which costs more than the work itself; script code always runs capped.
pub(crate) struct Uncapped<'a> {
    lua: &'a Lua,
    cap: usize,
}

impl<'a> Uncapped<'a> {
    pub fn new(lua: &'a Lua) -> Uncapped<'a> {
        let cap = lua.app_data_ref::<Meter>().map_or(0, |m| m.memory);
        let _ = lua.set_memory_limit(0);
        Uncapped { lua, cap }
    }
}

impl Drop for Uncapped<'_> {
    fn drop(&mut self) {
        let _ = self.lua.set_memory_limit(self.cap);
    }
}

/// Whether an error caught by a sandboxed `pcall` must go on: a limit was hit.
pub(crate) fn must_propagate(lua: &Lua, error: &mlua::Value) -> bool {
    let Some(m) = lua.app_data_ref::<Meter>() else {
        return false;
    };
    if m.tripped().is_some() {
        return true;
    }
    if let mlua::Value::Error(e) = error
        && matches!(**e, mlua::Error::MemoryError(_))
    {
        m.trip_memory();
        return true;
    }
    if let mlua::Value::String(s) = error
        && s.as_bytes().as_ref() == MEMORY_MESSAGE.as_bytes()
    {
        m.trip_memory();
        return true;
    }
    false
}
