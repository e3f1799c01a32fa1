//! The Service-Route values this server hands out in a 200 to REGISTER (RFC 3608), signed:
//! each URI gets a parameter `sr` with an HMAC of the URI as written. A device preloads its
//! Service-Route as the Route of its requests outside a dialog; the proxy lets a preloaded
//! Route through when its first hop carries a valid `sr` (a route this server handed out),
//! and refuses any other preloaded Route (an open relay otherwise). Stateless: any node
//! with the same `[auth] nonce_secret` checks what another handed out.

use crate::sip::params::split_outside_quotes;
use crate::sip::scan::trim;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The URI parameter that carries the signature.
const PARAM: &str = ";sr=";
/// Hex digits of HMAC-SHA256 kept (64 bits).
const MAC_HEX: usize = 16;

/// Signs and checks Service-Route URIs with one key.
#[derive(Clone)]
pub struct ServiceRoutes {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for ServiceRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceRoutes")
    }
}

impl ServiceRoutes {
    /// Signatures with this key.
    pub fn new(key: &[u8]) -> ServiceRoutes {
        let mut mac = Hmac::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"service-route\0");
        ServiceRoutes { mac }
    }

    /// The configured one: from `[auth] nonce_secret`, else a random key for this process.
    pub fn configured(nonce_secret: Option<&str>) -> ServiceRoutes {
        match nonce_secret {
            Some(s) => ServiceRoutes::new(s.as_bytes()),
            None => ServiceRoutes::new(&rand::random::<[u8; 32]>()),
        }
    }

    fn tag(&self, uri: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(uri.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut out = String::with_capacity(MAC_HEX);
        for b in &bytes[..MAC_HEX / 2] {
            crate::text::push_hex(&mut out, u64::from(*b), 2);
        }
        out
    }

    /// A Service-Route header value with the URI of each of its values signed. A value
    /// not in name-addr form (RFC 3608 requires it) is left as it is.
    pub fn stamp(&self, value: &str) -> String {
        let mut out = String::with_capacity(value.len() + 24);
        for (i, part) in split_outside_quotes(value, b',').map(trim).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match (part.find('<'), part.rfind('>')) {
                (Some(open), Some(close)) if open < close => {
                    let uri = &part[open + 1..close];
                    out.push_str(&part[..close]);
                    out.push_str(PARAM);
                    out.push_str(&self.tag(uri));
                    out.push_str(&part[close..]);
                }
                _ => out.push_str(part),
            }
        }
        out
    }

    /// Whether a Route's URI (as written between its angle brackets) is one
    /// [`ServiceRoutes::stamp`] signed.
    pub fn vouches(&self, uri: &str) -> bool {
        let Some(at) = uri.rfind(PARAM) else {
            return false;
        };
        let given = &uri[at + PARAM.len()..];
        if given.len() != MAC_HEX {
            return false;
        }
        let expected = self.tag(&uri[..at]);
        subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inside(value: &str) -> &str {
        &value[value.find('<').unwrap() + 1..value.rfind('>').unwrap()]
    }

    #[test]
    fn a_stamped_route_is_vouched_for_and_nothing_else() {
        let s = ServiceRoutes::new(b"key");
        let v = s.stamp("<sip:edge.example.com;lr>");
        assert!(v.starts_with("<sip:edge.example.com;lr;sr="), "{v}");
        assert!(s.vouches(inside(&v)));
        assert!(!s.vouches("sip:edge.example.com;lr"));
        assert!(!s.vouches(&inside(&v).replace("edge", "evil")));
        assert!(!ServiceRoutes::new(b"other").vouches(inside(&v)));
        let two = s.stamp("<sip:a.example.com;lr>, \"b\" <sip:b.example.com;lr>;x=1");
        let parts: Vec<&str> = two.split(", ").collect();
        assert_eq!(parts.len(), 2, "{two}");
        assert!(parts.iter().all(|p| s.vouches(inside(p))), "{two}");
        assert!(
            parts[1].starts_with("\"b\" <sip:b.example.com;lr;sr=") && parts[1].ends_with(">;x=1")
        );
        assert_eq!(s.stamp("sip:bare.example.com"), "sip:bare.example.com");
    }
}
