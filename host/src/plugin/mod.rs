//! Native plugins: shared libraries built against `plugin-api`, loaded with libloading,
//! each one more [`crate::hooks::Hooks`] implementation.
//!
//! `load.rs` opens the file and checks, before anything else, the ABI version symbol and
//! the size of the function table; `services.rs` is the table of host services a plugin
//! gets (logging, the shared store, location lookups, the end of a call that answers
//! later); `native.rs` turns hook calls into C calls, `answer.rs` the plugin's answers
//! back into decisions, refusing garbage; `later.rs` keeps the calls that answer later
//! (`status::PENDING`). Libraries are never unloaded.
//!
//! This is the one place of the host that needs `unsafe`: calling into a library through
//! the C ABI. Every block says what it relies on.

#![allow(unsafe_code)]

mod answer;
mod later;
mod load;
mod native;
mod services;

pub use load::PluginError;
pub use native::NativeHooks;
