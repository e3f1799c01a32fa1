//! The registrar (RFC 3261 section 10.3): the REGISTER procedure around the hook chain and
//! the location store, and the timer that expires bindings.

mod authenticate;
mod date;
mod log;
pub mod register;

pub use register::Registrar;
