//! TLS, through rustls (ring): the server's certificates (`material.rs`), chosen by SNI
//! and reloaded when their files change (`server.rs`), what the registrar learns of a
//! client's certificate (`peer.rs`), the client side of outgoing TLS (`client.rs`), and
//! a self-signed pair to try it out (`self_signed.rs`). TLS 1.2 and 1.3 only.

pub mod client;
pub mod material;
pub mod peer;
pub mod self_signed;
pub mod server;

pub use client::ClientTls;
pub use peer::PeerCert;
pub use server::ServerTls;

use std::sync::Arc;

/// The one crypto provider (ring).
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions offered and accepted.
pub(crate) const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
