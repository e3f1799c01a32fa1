//! Lua hooks: a policy script (Lua 5.4, mlua) as one [`Hooks`] implementation.
//!
//! A script returns a module table with any of the five hook functions. It runs in a pool
//! of sandboxed states (`sandbox.rs`), one per worker, each with a memory cap and an
//! instruction budget per call (`limits.rs`). The `sip` table the script sees is built from
//! one registry (`api.rs`), which also writes `docs/lua-api.md`. A reload compiles the
//! script in fresh states and swaps the pool only when every state loaded (`pool.rs`).

mod api;
mod call;
mod convert;
mod decision;
mod limits;
mod pool;
pub mod reload;
mod sandbox;
mod state;

pub use api::markdown as api_markdown;
pub use pool::LuaHooks;
pub use state::LoadError;

/// Where a script runs: while it loads, or in one of the five hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Load,
    OnRequest,
    Authenticate,
    Bind,
    Expire,
    Route,
}

impl Phase {
    /// The five hooks, in the order of the module table's documentation.
    pub const HOOKS: [Phase; 5] = [
        Phase::OnRequest,
        Phase::Authenticate,
        Phase::Bind,
        Phase::Expire,
        Phase::Route,
    ];

    /// The name a script uses (`on_request`, ...), or `load`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Load => "load",
            Phase::OnRequest => "on_request",
            Phase::Authenticate => "authenticate",
            Phase::Bind => "bind",
            Phase::Expire => "expire",
            Phase::Route => "route",
        }
    }

    pub(crate) const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The index of a hook in [`Phase::HOOKS`].
    pub(crate) fn hook_index(self) -> Option<usize> {
        Phase::HOOKS.iter().position(|p| *p == self)
    }
}
