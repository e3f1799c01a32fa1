//! The implementations `[[hooks]]` names, built in configured order (the built-in one is
//! added by the core, last).

use super::Hooks;
use crate::config::{Config, HookKind};
use crate::lua::{LuaHooks, Shared};
use std::sync::Arc;

/// The configured implementations, in order.
#[derive(Debug, Default)]
pub struct Configured {
    /// The Lua scripts (kept apart from the chain for reloads).
    pub scripts: Vec<Arc<LuaHooks>>,
}

impl Configured {
    /// The implementations for the chain, in configured order.
    pub fn hooks(&self) -> Vec<Arc<dyn Hooks>> {
        self.scripts
            .iter()
            .map(|s| s.clone() as Arc<dyn Hooks>)
            .collect()
    }
}

/// Lua states per script: one per core the process may use (transports run at most
/// that many requests at once), at least two.
pub fn states_per_script() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 16))
}

/// Loads every `[[hooks]]` entry.
///
/// # Errors
/// Every entry that failed, one message each (`file:line: message`).
pub fn load(config: &Config, shared: &Shared, states: usize) -> Result<Configured, Vec<String>> {
    let mut out = Configured::default();
    let mut errors = Vec::new();
    for entry in &config.hooks {
        match entry.kind {
            HookKind::Lua => {
                match LuaHooks::load(entry, &config.base_dir, shared.clone(), states) {
                    Ok(h) => out.scripts.push(Arc::new(h)),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
