//! sipreg's integration tests: one binary, one module per concern.
//!
//! `support` drives the core in process (bytes in, reply out); `sipp` and `transport` talk
//! to a real server over loopback sockets, `cli` runs the `sipreg` binary.

mod cli;
mod digest;
mod hooks;
mod logs;
mod lua;
mod plugins;
mod register;
mod robustness;
mod scripts;
mod sipp;
mod support;
mod torture;
mod transport;
