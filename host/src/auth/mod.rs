//! Digest authentication (RFC 7616, RFC 8760): response computation, stateless nonces and
//! nonce-count replay protection, the failed-authentication guard, and the signed
//! Service-Route values a device may preload.

pub mod digest;
pub mod guard;
pub mod nonce;
pub mod replay;
pub mod service_route;

pub use digest::Secret;
