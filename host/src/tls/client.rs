//! The client side of TLS: connections this server opens (a request forwarded to a
//! `sips:` or `transport=tls` target) verify the server against the system's trust
//! anchors and `[tls] ca`, with the name RFC 5922 says (the target's host, sent as SNI).

use std::path::Path;
use std::sync::Arc;

/// The client configuration for outgoing TLS.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
}

impl ClientTls {
    /// Trust anchors from the system (`rustls-native-certs`) and, if given, `ca`.
    ///
    /// # Errors
    /// `ca` cannot be read or holds no usable anchor.
    pub fn new(ca: Option<&Path>) -> Result<ClientTls, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for c in native.certs {
            let _ = roots.add(c); // one odd system anchor does not stop the others
        }
        if let Some(ca) = ca {
            for c in super::server::roots(ca)?.roots {
                roots.roots.push(c);
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(super::provider())
            .with_protocol_versions(super::VERSIONS)
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }
}
