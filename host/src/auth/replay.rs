//! Nonce counts (RFC 7616 section 3.4): the highest `nc` seen per nonce, so a count that
//! does not go up is refused as a replay.
//!
//! Entries live in two generations per shard that rotate every nonce TTL: a nonce older
//! than the TTL is stale anyway, so forgetting its count after two TTLs loses nothing, and
//! no sweep over all entries is ever needed.

use parking_lot::Mutex;
use std::collections::HashMap;

const SHARDS: usize = 32;

/// The ids come from nonces whose MAC was checked, so nobody else picks them: a fast hash
/// is enough (the table, with SipHash, took a fifth of the digest check's samples).
type Counts = HashMap<u64, u32, foldhash::fast::RandomState>;

#[derive(Debug, Default)]
struct Shard {
    current: Counts,
    previous: Counts,
    generation_start_ms: u64,
}

/// The nonce-count table.
#[derive(Debug)]
pub struct NonceCounts {
    shards: Box<[Mutex<Shard>]>,
    ttl_ms: u64,
}

impl NonceCounts {
    /// A table for nonces that live `ttl_secs`.
    pub fn new(ttl_secs: u64) -> NonceCounts {
        NonceCounts {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            ttl_ms: ttl_secs.max(1) * 1000,
        }
    }

    /// Records `nc` for the nonce `id`; false when it is not higher than the last one seen.
    pub fn advance(&self, id: u64, nc: u32, now_ms: u64) -> bool {
        let mut s = self.shards[(id as usize) % SHARDS].lock();
        if now_ms.saturating_sub(s.generation_start_ms) >= self.ttl_ms {
            s.previous = std::mem::take(&mut s.current);
            s.generation_start_ms = now_ms;
        }
        let last = s
            .current
            .get(&id)
            .or_else(|| s.previous.get(&id))
            .copied()
            .unwrap_or(0);
        if nc <= last {
            return false;
        }
        s.current.insert(id, nc);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_go_up() {
        let t = NonceCounts::new(300);
        assert!(t.advance(7, 1, 0));
        assert!(!t.advance(7, 1, 10));
        assert!(t.advance(7, 3, 20));
        assert!(!t.advance(7, 2, 30));
        assert!(t.advance(8, 1, 30));
        // survives one rotation
        assert!(!t.advance(7, 3, 300_500));
        assert!(t.advance(7, 4, 300_600));
    }
}
