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

pub mod ffi;
mod glue;
mod host;
mod request;

pub use host::{Host, KvValue, Level, StoredBinding};
pub use request::{Auth, Bind, BindKind, Binding, Expire, ExpireReason, Request, Transport};

#[doc(hidden)]
pub use glue::table_for;

/// The answer of `on_request` and `bind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No opinion: the next hook decides.
    Continue,
    /// Yes; the hooks after this one are not asked.
    Accept,
    /// Answer now.
    Respond(Reply),
    /// Send nothing.
    Drop,
}

/// A reply: status code (300 to 699), reason phrase, extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Empty: the standard phrase.
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A reply with the standard reason phrase.
    pub fn new(code: u16) -> Reply {
        Reply {
            code,
            reason: String::new(),
            headers: Vec::new(),
        }
    }

    /// A reply with its own reason phrase.
    pub fn with_reason(code: u16, reason: impl Into<String>) -> Reply {
        Reply {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A secret for the host's digest check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    /// HA1 in hex for the configured realm: 32 digits for MD5, 64 for SHA-256.
    Ha1(String),
}

/// The answer of `authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// No opinion.
    Pass,
    /// Send a digest challenge.
    Challenge,
    /// Check the request's digest against this user's secret.
    Credentials { username: String, secret: Secret },
    /// Trust the request as this user, without digest.
    Authenticated(String),
    /// Answer now.
    Respond(Reply),
}

/// The answer of `route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision {
    /// No opinion.
    Pass,
    /// Forward to these URIs, best first.
    Targets(Vec<String>),
    /// Answer now.
    Respond(Reply),
}

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

    /// May this identity change these bindings? `expires` and `q` may be changed.
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
