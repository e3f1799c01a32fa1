//! The one wiring point: a configuration in, the application out. [`App::build`] opens
//! the stores (or makes them in memory), loads the configured hook implementations over
//! them, puts the built-in one last in the chain, and builds the core on the same stores
//! and clock. `sipreg run`, `sipreg check`, `sipreg try` and the tests all build through
//! it, so what they run is assembled one way.

pub mod hooks;

use crate::clock::Clock;
use crate::config::Config;
use crate::core::Core;
use crate::hooks::builtin::Builtin;
use crate::hooks::{HookChain, Hooks};
use crate::lua::LuaHooks;
use crate::services::Services;
use crate::store::{self, StoreError, Stores};
use std::sync::Arc;

/// Where the bindings and `sip.kv` live.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// As `[store]` says (the embedded file, Redis, or memory).
    Configured,
    /// Fresh ones in memory, whatever `[store]` says (`sipreg try`, `sipreg check`).
    Memory,
    /// These (a test that keeps a store across two builds), on the options' clock.
    Given(Stores),
}

/// How to build.
#[derive(Clone)]
pub struct Options {
    pub stores: StoreChoice,
    pub clock: Clock,
    /// Lua states per script.
    pub states_per_script: usize,
    /// Rust implementations asked ahead of the configured ones (tests, embedders).
    pub extra: Vec<Arc<dyn Hooks>>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("stores", &self.stores)
            .field("clock", &self.clock)
            .field("states_per_script", &self.states_per_script)
            .field(
                "extra",
                &self.extra.iter().map(|h| h.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Options {
    /// A server's: the configured stores, the system's clock, a Lua state per core.
    pub fn server() -> Options {
        Options {
            stores: StoreChoice::Configured,
            clock: Clock::system(),
            states_per_script: hooks::states_per_script(),
            extra: Vec::new(),
        }
    }

    /// One request at a time, in memory (`sipreg try`, `sipreg check`).
    pub fn offline() -> Options {
        Options {
            stores: StoreChoice::Memory,
            clock: Clock::system(),
            states_per_script: 1,
            extra: Vec::new(),
        }
    }
}

/// Why the application could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// The location store could not be opened.
    Store(StoreError),
    /// Hook implementations that failed to load, one message each (`file:line: message`).
    Hooks(Vec<String>),
}

/// The application: the core over its stores, and what the server and the CLI need to
/// reach besides (the scripts, for reloads).
#[derive(Debug)]
pub struct App {
    pub core: Arc<Core>,
    pub stores: Stores,
    /// The Lua scripts of the chain.
    pub scripts: Vec<Arc<LuaHooks>>,
    /// How many native plugins the chain holds.
    pub plugins: usize,
}

impl App {
    /// Builds the application `config` describes.
    ///
    /// # Errors
    /// [`BuildError`]: a store that cannot be opened, hooks that do not load.
    pub fn build(config: &Config, options: Options) -> Result<App, BuildError> {
        let stores = match options.stores {
            StoreChoice::Configured => {
                store::open(config, options.clock.clone()).map_err(BuildError::Store)?
            }
            StoreChoice::Memory => Stores::memory(options.clock.clone()),
            StoreChoice::Given(s) => Stores {
                clock: options.clock.clone(),
                ..s
            },
        };
        let ca = config.tls.as_ref().and_then(|t| t.ca.as_ref());
        let services = Arc::new(Services::new(ca.map(|c| config.base_dir.join(c))));
        let configured = hooks::load(config, &stores, &services, options.states_per_script)
            .map_err(BuildError::Hooks)?;
        let mut chain = options.extra;
        chain.extend(configured.chain);
        chain.push(Arc::new(Builtin::new(config)));
        let chain = HookChain::new(chain)
            .with_wait_deadline(std::time::Duration::from_millis(
                config.server.wait_deadline_ms,
            ))
            .with_services(services);
        let core = Arc::new(Core::new(config, chain, &stores));
        Ok(App {
            core,
            stores,
            scripts: configured.scripts,
            plugins: configured.plugins,
        })
    }
}
