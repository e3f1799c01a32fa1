//! The crate sipreg plugin authors depend on.
//!
//! The plugin ABI (the `Plugin` trait, `declare_plugin!`, the versioned C function table)
//! is not written yet: it is the subject of the "Rust plugins" issue. Until then this crate
//! only reserves its name and place in the workspace.
