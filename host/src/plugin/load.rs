//! Opening a plugin: the file, the ABI version symbol, the entry point, the function
//! table's size, and then the plugin's own `create`.

use plugin_api::ffi::{ABI_SYMBOL, ABI_VERSION, ENTRY_SYMBOL, PluginTable};
use std::fmt;
use std::path::Path;

/// A plugin that cannot be used, with the path in its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError(pub String);

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PluginError {}

/// The smallest function table this host can use (ABI 1's, before `authenticate_later`).
pub(crate) const MIN_TABLE: usize = plugin_api::ffi::FIRST_TABLE_SIZE;

/// A plugin's `authenticate_later`.
pub(crate) type AuthenticateLater = extern "C" fn(
    *mut std::ffi::c_void,
    *const plugin_api::ffi::RequestC,
    *const plugin_api::ffi::AuthC,
    *mut plugin_api::ffi::AnswerC,
    u64,
) -> u32;

/// The plugin's `authenticate_later`, when its table is new enough to have the field.
pub(crate) fn authenticate_later(table: &'static PluginTable) -> Option<AuthenticateLater> {
    let end = std::mem::size_of::<PluginTable>();
    if table.size < end {
        return None;
    }
    // SAFETY: the table's size covers the field (checked above).
    unsafe { std::ptr::addr_of!(table.authenticate_later).read() }
}

/// Opens `path` and returns its function table; the library stays loaded for the life of
/// the process.
///
/// # Errors
/// A missing file, a file that is no plugin, another ABI version, a short table.
pub(crate) fn open(path: &Path) -> Result<&'static PluginTable, PluginError> {
    let shown = path.display();
    if !path.is_file() {
        return Err(PluginError(format!("{shown}: no such plugin file")));
    }
    // SAFETY: loading a library runs its initialisers; a plugin is code the operator chose
    // to run, built against plugin-api (whose crate has no initialisers).
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| PluginError(format!("{shown} is not a loadable library: {e}")))?;
    let lib: &'static libloading::Library = Box::leak(Box::new(lib)); // never unloaded
    // SAFETY: the symbol, when present, is the `u32` `declare_plugin!` exports.
    let version = unsafe { lib.get::<*const u32>(ABI_SYMBOL) }.map_err(|_| {
        PluginError(format!(
            "{shown} is not a sipreg plugin: it has no sipreg_plugin_abi_version symbol"
        ))
    })?;
    // SAFETY: the symbol points to a static u32 in the library, which stays loaded.
    let version = unsafe { **version };
    if version != ABI_VERSION {
        return Err(PluginError(format!(
            "{shown} was built for plugin ABI {version}, and this sipreg speaks ABI {ABI_VERSION}: rebuild the plugin against this sipreg's plugin-api"
        )));
    }
    // SAFETY: with ABI_VERSION, the entry point has this signature.
    let entry = unsafe { lib.get::<extern "C" fn() -> *const PluginTable>(ENTRY_SYMBOL) }.map_err(
        |_| {
            PluginError(format!(
                "{shown} says plugin ABI {version} but has no sipreg_plugin_entry function"
            ))
        },
    )?;
    let table = entry();
    if table.is_null() {
        return Err(PluginError(format!(
            "{shown}: its entry point returned no table"
        )));
    }
    // SAFETY: the entry returns a table that lives as long as the library; only its size
    // is read before the size is known to cover the rest.
    let size = unsafe { (*table).size };
    if size < MIN_TABLE {
        return Err(PluginError(format!(
            "{shown}: its function table has {size} bytes; plugin ABI {ABI_VERSION} needs at least {MIN_TABLE}"
        )));
    }
    // SAFETY: checked above: the table covers every field this host reads.
    Ok(unsafe { &*table })
}
