//! sipreg: a strict, scriptable SIP registrar (RFC 3261 section 10).
//!
//! A request goes through [`core::Core::handle`]: the [`sip`] layer parses and checks it,
//! the [`hooks`] chain (`on_request`, `authenticate`, `bind`, `route`) decides, the
//! [`registrar`] updates the location store, and a reply is written. [`server`] runs the
//! UDP and TCP transports and the expiry timer around one shared core.

pub mod admin;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod core;
pub mod flows;
pub mod history;
pub mod hooks;
pub mod kv;
pub mod kv_quota;
pub mod log_gate;
pub mod lua;
pub mod metrics;
pub mod plugin;
pub mod proxy;
pub mod qualify;
pub mod registrar;
pub mod server;
pub mod services;
pub mod sip;
pub mod store;
pub mod stun;
pub mod text;
pub mod tls;
pub mod transport;
pub mod trial;
