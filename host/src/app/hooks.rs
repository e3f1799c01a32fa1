//! The implementations `[[hooks]]` names (Lua scripts, native plugins), built in
//! configured order over the server's stores.

use crate::config::{Config, HookKind};
use crate::hooks::Hooks;
use crate::kv_quota as quota;
use crate::lua::LuaHooks;
use crate::plugin::NativeHooks;
use crate::services::Services;
use crate::store::Stores;
use std::sync::Arc;

/// The configured implementations, in order.
#[derive(Default)]
pub struct Configured {
    pub chain: Vec<Arc<dyn Hooks>>,
    /// The Lua scripts among them (for reloads).
    pub scripts: Vec<Arc<LuaHooks>>,
    /// How many native plugins were loaded.
    pub plugins: usize,
}

impl std::fmt::Debug for Configured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.chain.iter().map(|h| h.name()))
            .finish()
    }
}

/// Lua states per script: one per core the process may use (transports run at most
/// that many requests at once), at least two.
pub fn states_per_script() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 16))
}

/// Loads every `[[hooks]]` entry; the ones that reach outside services record them in
/// `services`.
///
/// # Errors
/// Every entry that failed, one message each (`file:line: message`).
pub fn load(
    config: &Config,
    stores: &Stores,
    services: &Arc<Services>,
    states: usize,
) -> Result<Configured, Vec<String>> {
    let mut out = Configured::default();
    let mut errors = Vec::new();
    for entry in &config.hooks {
        // Each implementation sees sip.kv through a quota of its own.
        let limits = quota::Limits {
            keys: entry.kv_max_keys,
            bytes: entry.kv_max_bytes,
            value_bytes: entry.kv_max_value_bytes,
        };
        let stores = &Stores {
            kv: Arc::new(quota::Quota::new(stores.kv.clone(), limits)),
            ..stores.clone()
        };
        match entry.kind {
            HookKind::Lua => {
                match LuaHooks::load(entry, &config.base_dir, stores.clone(), services, states) {
                    Ok(h) => {
                        let h = Arc::new(h);
                        out.chain.push(h.clone());
                        out.scripts.push(h);
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            HookKind::Plugin => match NativeHooks::load(entry, &config.base_dir, stores.clone()) {
                Ok(h) => {
                    out.chain.push(Arc::new(h));
                    out.plugins += 1;
                }
                Err(e) if entry.origin.is_empty() => errors.push(e.to_string()),
                Err(e) => errors.push(format!("{}: {e}", entry.origin)),
            },
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
