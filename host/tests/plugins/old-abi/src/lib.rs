//! A library that exports the ABI version symbol of another plugin ABI (as a plugin
//! built against an older or newer `plugin-api` would): the host must refuse it before
//! calling anything else.

/// ABI 999: not this sipreg's.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub static sipreg_plugin_abi_version: u32 = 999;
