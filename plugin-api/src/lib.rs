//! The crate sipreg plugin authors depend on.
//!
//! A plugin is a Rust type that implements [`Plugin`], whose methods carry the names of
//! sipreg's five hooks, and one line that exports it:
//!
//! ```ignore
//! use plugin_api::{Plugin, Host, Request, Auth, AuthDecision};
//!
//! struct Directory { /* ... */ }
//!
//! impl Plugin for Directory {
//!     const NAME: &'static str = "directory";
//!     fn create(config: &str, host: Host) -> Result<Self, String> { /* ... */ }
//!     fn authenticate(&self, req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
//!         AuthDecision::Challenge
//!     }
//! }
//!
//! plugin_api::declare_plugin!(Directory);
//! ```
//!
//! Build it as a `cdylib` with `panic = "unwind"` (the default) and name its file in
//! `[[hooks]] type = "plugin"`. `declare_plugin!` exports the ABI version and the entry
//! point (module [`ffi`]); every exported function catches panics, so a panicking plugin
//! fails one request and never the server. Plugins are never unloaded.

#![allow(unsafe_code)] // the C boundary: every unsafe block says what it relies on

mod answer;
mod decision;
pub mod ffi;
mod glue;
mod host;
mod later;
mod limits;
mod request;

pub use decision::{AuthDecision, Decision, Reply, RouteDecision, Secret};
pub use host::{Host, KvValue, Level, StoredBinding};
pub use later::{Completes, Done, Started};
pub use limits::{Evict, Limits};
pub use request::{Auth, Bind, BindKind, Binding, Expire, ExpireReason, Request, Transport};

#[doc(hidden)]
pub use glue::table_for;

/// A plugin: the five hooks, each with a no-opinion default. Calls come from several
/// threads at once, hence `Sync`; keep them short (they run on the request path).
pub trait Plugin: Send + Sync + Sized + 'static {
    /// The name in sipreg's logs.
    const NAME: &'static str;

    /// Creates the plugin from its `config` table (TOML text) and the host's services.
    ///
    /// # Errors
    /// A message: sipreg refuses to start and prints it.
    fn create(config: &str, host: Host) -> Result<Self, String>;

    /// Every request.
    fn on_request(&self, req: &Request<'_>) -> Decision {
        let _ = req;
        Decision::Continue
    }

    /// Who sends this REGISTER.
    fn authenticate(&self, req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
        let _ = (req, auth);
        AuthDecision::Pass
    }

    /// Whether [`Plugin::start_authenticate`] may answer later: sipreg then asks it
    /// instead of `authenticate`, and a request whose answer is pending waits without
    /// holding a thread (`[server] wait_deadline_ms` bounds the wait).
    const WAITS: bool = false;

    /// `authenticate` that may answer later (with [`Plugin::WAITS`]): answer
    /// [`Started::Now`], or copy what the lookup needs (the request is valid during this
    /// call only), move `done` to the thread or runtime that does it, return
    /// [`Started::Later`] and call [`Done::complete`] with the decision there.
    fn start_authenticate(
        &self,
        req: &Request<'_>,
        auth: &Auth<'_>,
        done: Done<AuthDecision>,
    ) -> Started<AuthDecision> {
        drop(done);
        Started::Now(self.authenticate(req, auth))
    }

    /// May this identity change these bindings? `expires` and `q` may be changed, the
    /// AOR's limits set ([`Bind::limits_mut`]) and headers added to the 200
    /// ([`Bind::add_reply_header`]).
    fn bind(&self, req: &Request<'_>, bind: &mut Bind<'_>) -> Decision {
        let _ = (req, bind);
        Decision::Continue
    }

    /// A binding went away.
    fn expire(&self, event: &Expire<'_>) {
        let _ = event;
    }

    /// Where a request that is not for the registrar goes.
    fn route(&self, req: &Request<'_>) -> RouteDecision {
        let _ = req;
        RouteDecision::Pass
    }
}

/// Exports a [`Plugin`] type: the ABI version symbol and the entry point.
#[macro_export]
macro_rules! declare_plugin {
    ($plugin:ty) => {
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub static sipreg_plugin_abi_version: u32 = $crate::ffi::ABI_VERSION;

        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn sipreg_plugin_entry() -> *const $crate::ffi::PluginTable {
            $crate::table_for::<$plugin>()
        }
    };
}
