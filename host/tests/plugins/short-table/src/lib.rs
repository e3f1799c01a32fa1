//! A library that says plugin ABI 1 but whose entry point returns a table that claims to
//! be shorter than ABI 1's (a table from a broken or truncated build): the host must
//! refuse it without reading past the size.

use plugin_api::ffi::ABI_VERSION;

/// The ABI this library claims.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub static sipreg_plugin_abi_version: u32 = ABI_VERSION;

/// A table that is only its size field.
#[repr(C)]
#[derive(Debug)]
pub struct Short {
    size: usize,
}

static TABLE: Short = Short {
    size: std::mem::size_of::<usize>(),
};

/// The entry point, returning the short table.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn sipreg_plugin_entry() -> *const Short {
    &TABLE
}
