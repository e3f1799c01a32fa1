//! sipreg's integration tests: one binary, one module per concern.
//!
//! `support` drives the core in process (bytes in, reply or forwarded message out);
//! `sipp`, `calls` and `transport` talk to a real server over loopback sockets (`sippkit`
//! runs SIPp), `cli` runs the `sipreg` binary.

mod admin;
mod baresip;
mod battery;
mod browser;
mod calls;
mod cli;
mod digest;
mod guard;
mod hooks;
mod logs;
mod lua;
mod mutual_tls;
mod page;
mod pjsua2;
mod plugin_waits;
mod plugins;
mod postgres_server;
mod process;
mod proxy;
mod qualify;
mod redis;
mod redis_rules;
mod redis_server;
mod register;
mod robustness;
mod scripts;
mod secure;
mod secure_client;
mod secure_limits;
mod sipp;
mod sippkit;
mod sips;
mod sipvicious;
mod sql_directory;
mod store;
mod stun;
mod support;
mod tcp_limits;
mod tls_certs;
mod torture;
mod transport;
mod waiting;
mod webrtc;
