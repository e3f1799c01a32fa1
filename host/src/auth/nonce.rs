//! Stateless nonces: `time . offer . random . HMAC(realm . time . offer . random)` in hex.
//! Any node holding the key can check a nonce and tell its age and the algorithms its
//! challenge offered (`offer`, one byte: [`Algorithm::pack`]) without having stored
//! it; the realm is in the MAC, so a nonce issued for another realm (by a node with the
//! same key) is not ours.

#[cfg(doc)]
use crate::sip::digest::Algorithm;
use crate::text::push_hex;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const TIME_HEX: usize = 12;
const RANDOM_HEX: usize = 16;
const MAC_HEX: usize = 32;
/// The length of every nonce this module issues.
pub const NONCE_LEN: usize = TIME_HEX + RANDOM_HEX + MAC_HEX;

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and fresh; `id` names it for the nonce-count table; `offered` the algorithms
    /// its challenge offered ([`Algorithm::pack`]).
    Fresh { id: u64, offered: u8 },
    /// Ours, but older than the TTL (answered with `stale=true`).
    Stale { offered: u8 },
    /// Not ours, or tampered with.
    Invalid,
}

/// Issues and checks nonces with one secret key.
#[derive(Clone)]
pub struct Nonces {
    mac: HmacSha256,
    ttl_ms: u64,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("ttl_ms", &self.ttl_ms)
            .finish()
    }
}

impl Nonces {
    /// A nonce issuer for `realm` with this key and lifetime in seconds.
    pub fn new(key: &[u8], realm: &str, ttl_secs: u64) -> Nonces {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(realm.as_bytes());
        mac.update(b"\0");
        Nonces {
            mac,
            ttl_ms: ttl_secs.saturating_mul(1000),
        }
    }

    fn tag(&self, prefix: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(prefix.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A new nonce for the time `now_ms` (milliseconds since the Unix epoch), for a
    /// challenge offering the algorithms `offered` ([`Algorithm::pack`]).
    pub fn issue(&self, now_ms: u64, offered: u8) -> String {
        let mut s = String::with_capacity(NONCE_LEN);
        push_hex(&mut s, now_ms, TIME_HEX);
        let random = rand::random::<u64>() >> 8 | u64::from(offered) << 56;
        push_hex(&mut s, random, RANDOM_HEX);
        let tag = self.tag(&s);
        for b in &tag[..MAC_HEX / 2] {
            push_hex(&mut s, u64::from(*b), 2);
        }
        s
    }

    /// Checks a nonce at the time `now_ms`.
    pub fn check(&self, nonce: &str, now_ms: u64) -> NonceCheck {
        if nonce.len() != NONCE_LEN || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return NonceCheck::Invalid;
        }
        let (prefix, mac_hex) = nonce.split_at(TIME_HEX + RANDOM_HEX);
        let tag = self.tag(prefix);
        let mut expected = String::with_capacity(MAC_HEX);
        for b in &tag[..MAC_HEX / 2] {
            push_hex(&mut expected, u64::from(*b), 2);
        }
        let mut given = [0u8; MAC_HEX];
        for (g, b) in given.iter_mut().zip(mac_hex.bytes()) {
            *g = b.to_ascii_lowercase();
        }
        let equal: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), &given[..]).into();
        if !equal {
            return NonceCheck::Invalid;
        }
        let issued = u64::from_str_radix(&prefix[..TIME_HEX], 16).unwrap_or(0);
        let id = u64::from_str_radix(&prefix[TIME_HEX..], 16).unwrap_or(0);
        let offered = (id >> 56) as u8;
        if issued > now_ms.saturating_add(60_000) || now_ms.saturating_sub(issued) > self.ttl_ms {
            NonceCheck::Stale { offered }
        } else {
            NonceCheck::Fresh { id, offered }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stale_invalid() {
        let n = Nonces::new(b"secret", "example.com", 300);
        let t0 = 1_700_000_000_000;
        let nonce = n.issue(t0, 0b011);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert!(matches!(
            n.check(&nonce, t0 + 1000),
            NonceCheck::Fresh { offered: 0b011, .. }
        ));
        assert_eq!(
            n.check(&nonce, t0 + 301_000),
            NonceCheck::Stale { offered: 0b011 }
        );
        let md5 = n.issue(t0, 0b001);
        assert!(matches!(
            n.check(&md5, t0),
            NonceCheck::Fresh { offered: 0b001, .. }
        ));
        let mut forged = nonce.clone().into_bytes();
        forged[0] = if forged[0] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            n.check(std::str::from_utf8(&forged).unwrap(), t0),
            NonceCheck::Invalid
        );
        assert_eq!(
            Nonces::new(b"other", "example.com", 300).check(&nonce, t0),
            NonceCheck::Invalid
        );
        assert_eq!(
            Nonces::new(b"secret", "other.com", 300).check(&nonce, t0),
            NonceCheck::Invalid,
            "a nonce of another realm"
        );
        assert_ne!(n.issue(t0, 1), n.issue(t0, 1), "the random part differs");
    }
}
