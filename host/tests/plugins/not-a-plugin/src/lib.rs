//! A shared library with no sipreg symbols: the host must say it is not a plugin.

/// Something else entirely.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn not_a_plugin() -> u32 {
    42
}
