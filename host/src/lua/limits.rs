//! The limits of a Lua state: a memory cap (mlua's allocator refuses allocations past
//! it), an instruction budget per call (a VM hook counts instructions) and a wall-clock
//! deadline per call (the same hook looks at the clock). Work inside C functions escapes a
//! VM hook, so the only C functions that could run long (pattern matching, `string.rep`)
//! are replaced by bounded ones (`strings.rs`) that burn the same budget and watch the
//! same deadline.
//!
//! Either limit, once hit, is final for the call: the sandbox's `pcall`, `xpcall` and
//! `coroutine.resume` hand the error on instead of catching it (`sandbox.rs`), so an endless
//! loop or an allocation bomb wrapped in `pcall` still ends the call. The state is then
//! replaced (`pool.rs`).

use mlua::{HookTriggers, Lua, VmState};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// The message Lua gives a failed allocation.
pub(crate) const MEMORY_MESSAGE: &str = "not enough memory";

/// Which limit a call hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Instructions(u64),
    Memory(usize),
    Time(Duration),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Instructions(n) => write!(f, "instruction budget of {n} exceeded"),
            Limit::Memory(n) => write!(f, "memory limit of {} MiB exceeded", n >> 20),
            Limit::Time(d) => write!(f, "time limit of {} ms exceeded", d.as_millis()),
        }
    }
}

/// A waiting call's share of the counters, kept while another call runs in the state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paused {
    used: u64,
    budget: u64,
    allowed: Duration,
    left: Duration,
}

/// The state's counters (Lua app data).
#[derive(Debug)]
pub(crate) struct Meter {
    used: Cell<u64>,
    budget: Cell<u64>,
    step: u64,
    pub memory: usize,
    time_limit: Duration,
    allowed: Cell<Duration>,
    deadline: Cell<Instant>,
    tripped: Cell<Option<Limit>>,
}

impl Meter {
    /// Starts a call (or the load) with this budget and the time limit of a call times
    /// `time_factor`.
    pub fn start(&self, budget: u64, time_factor: u32) {
        self.used.set(0);
        self.budget.set(budget);
        let allowed = self.time_limit.saturating_mul(time_factor);
        self.allowed.set(allowed);
        self.deadline.set(Instant::now() + allowed);
        self.tripped.set(None);
    }

    /// Stops the clock of a call that waits: what it had used and what time it has left.
    pub fn pause(&self) -> Paused {
        Paused {
            used: self.used.get(),
            budget: self.budget.get(),
            allowed: self.allowed.get(),
            left: self
                .deadline
                .get()
                .saturating_duration_since(Instant::now()),
        }
    }

    /// Goes on with a call that waited: its budget as it left it, its time left from now
    /// (waiting does not count).
    pub fn resume(&self, p: &Paused) {
        self.used.set(p.used);
        self.budget.set(p.budget);
        self.allowed.set(p.allowed);
        self.deadline.set(Instant::now() + p.left);
        self.tripped.set(None);
    }

    /// What is left of the budget.
    pub fn fuel(&self) -> u64 {
        self.budget.get().saturating_sub(self.used.get())
    }

    /// When the call must have ended.
    pub fn deadline(&self) -> Instant {
        self.deadline.get()
    }

    /// Counts work done outside the VM (a pattern match) against the budget.
    pub fn burn(&self, units: u64) {
        self.used.set(self.used.get().saturating_add(units));
    }

    /// Counts `units` of work against the budget; the error that ends the call once the
    /// budget is spent or the deadline passed.
    pub fn charge(&self, units: u64) -> mlua::Result<()> {
        let used = self.used.get().saturating_add(units);
        self.used.set(used);
        if used > self.budget.get() {
            return Err(self.trip_budget());
        }
        if Instant::now() >= self.deadline.get() {
            return Err(self.trip_time());
        }
        Ok(())
    }

    /// Marks the budget as spent: the error that ends the call.
    pub fn trip_budget(&self) -> mlua::Error {
        self.trip(Limit::Instructions(self.budget.get()))
    }

    /// Marks the deadline as passed: the error that ends the call.
    pub fn trip_time(&self) -> mlua::Error {
        self.trip(Limit::Time(self.allowed.get()))
    }

    fn trip(&self, limit: Limit) -> mlua::Error {
        self.tripped.set(Some(limit));
        mlua::Error::runtime(limit)
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

/// The limits of a state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub memory: usize,
    pub budget: u64,
    pub time: Duration,
}

/// Installs the cap, the instruction counter and the clock on a new state.
pub(crate) fn install(lua: &Lua, limits: Limits) -> mlua::Result<()> {
    let Limits {
        memory,
        budget,
        time,
    } = limits;
    let step = (budget / 10).clamp(1, 1000);
    lua.set_app_data(Meter {
        used: Cell::new(0),
        budget: Cell::new(budget),
        step,
        memory,
        time_limit: time,
        allowed: Cell::new(time),
        deadline: Cell::new(Instant::now() + time),
        tripped: Cell::new(None),
    });
    lua.set_global_hook(
        HookTriggers::new().every_nth_instruction(step as u32),
        |lua, _| {
            let Some(m) = lua.app_data_ref::<Meter>() else {
                return Ok(VmState::Continue);
            };
            m.charge(m.step)?;
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
