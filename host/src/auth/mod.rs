//! Digest authentication (RFC 7616, RFC 8760): response computation, stateless nonces and
//! nonce-count replay protection, and the failed-authentication guard.

pub mod digest;
pub mod guard;
pub mod nonce;
pub mod replay;

pub use digest::Secret;
