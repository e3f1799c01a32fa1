//! Lua hooks: a policy script (Lua 5.4, mlua) as one [`Hooks`] implementation.
//!
//! A script returns a module table with any of the five hook functions. It runs in a pool
//! of sandboxed states (`sandbox.rs`), one per worker, each with a memory cap and an
//! instruction budget per call (`limits.rs`). The `sip` table the script sees is built from
//! one registry (`api.rs`), which also writes `docs/lua-api.md`. A reload compiles the
//! script in fresh states and swaps the pool only when every state loaded (`pool.rs`).

mod api;
mod bind;
mod cache;
mod call;
mod context;
mod convert;
mod decision;
mod error;
mod files;
mod functions;
mod http;
mod json;
mod limits;
mod patterns;
mod pool;
pub mod reload;
mod sandbox;
mod state;
mod strings;

pub use api::markdown as api_markdown;
pub use error::LoadError;
pub use pool::LuaHooks;

use crate::hooks::Hook;

/// Where a script runs: while it loads, or in one of the five hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Load,
    In(Hook),
}

impl Phase {
    /// The name a script uses (`on_request`, ...), or `load`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Load => "load",
            Phase::In(h) => h.name(),
        }
    }

    /// The phase's bit in a set of phases.
    pub(crate) const fn bit(self) -> u8 {
        match self {
            Phase::Load => 1,
            Phase::In(h) => 2 << h.index(),
        }
    }

    /// The index of a hook in [`Hook::ALL`].
    pub(crate) fn hook_index(self) -> Option<usize> {
        match self {
            Phase::Load => None,
            Phase::In(h) => Some(h.index()),
        }
    }
}
