//! The failed-authentication guard (`[auth.guard]`, on by default): brute force is closed
//! without any script or plugin.
//!
//! - Failed authentications are counted per source address *and* alias: one attacker
//!   behind an office NAT does not lock the office's other phones out, and one attacker
//!   guessing many aliases is banned alias by alias. `failures` of them within `window`
//!   seconds ban the pair for `ban` seconds: its REGISTERs are answered 403 (or not at
//!   all) before any challenge is computed, so a banned guesser costs us a lookup.
//! - Failures are counted per alias from every source too: past `user_failures` within
//!   the window, each failed answer for that alias waits (`user_delay_ms`, doubling up to
//!   `user_delay_max_ms`), which slows a guess spread over many addresses without
//!   locking the real user out: a right password is answered at once.
//! - The counts live in the shared key-value store, so with the Redis store every node
//!   sees the same counts and bans. Keys start with [`PREFIX`], which scripts and plugins
//!   may not write (`kv_quota.rs`).

use crate::config::{GuardAnswer, GuardSettings};
use crate::kv::{KvStore, KvValue};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The key prefix of the guard's counts.
pub const PREFIX: &str = "sipreg.guard:";

/// What the guard knows of a source and alias before authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// No failure counted.
    Clean,
    /// Failures counted, below the ban.
    Failed,
    /// Banned: answered at once, without a challenge.
    Banned,
}

/// What a counted failure brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failure {
    /// The pair's failures reached the ban with this one.
    pub banned_now: bool,
    /// How long the answer waits (the per-alias backoff), if at all.
    pub delay: Option<Duration>,
}

/// The guard over the shared store.
#[derive(Debug)]
pub struct Guard {
    settings: GuardSettings,
    kv: Arc<dyn KvStore>,
}

/// `PREFIX`, the address's bytes in hex (no formatting machinery: this runs for every
/// challenged REGISTER), `|` and the alias.
fn key(ip: Option<IpAddr>, aor: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut k = String::with_capacity(PREFIX.len() + 33 + aor.len());
    k.push_str(PREFIX);
    let mut hex = |bytes: &[u8]| {
        for b in bytes {
            k.push(char::from(HEX[usize::from(b >> 4)]));
            k.push(char::from(HEX[usize::from(b & 15)]));
        }
    };
    match ip {
        None => k.push('*'),
        Some(IpAddr::V4(a)) => hex(&a.octets()),
        Some(IpAddr::V6(a)) => hex(&a.octets()),
    }
    k.push('|');
    k.push_str(aor);
    k
}

fn pair_key(ip: IpAddr, aor: &str) -> String {
    key(Some(ip), aor)
}

/// The key of an alias's failures from every source.
fn alias_key(aor: &str) -> String {
    key(None, aor)
}

impl Guard {
    /// A guard with these settings; None when it is off.
    pub fn new(settings: &GuardSettings, kv: Arc<dyn KvStore>) -> Option<Guard> {
        settings.enabled.then(|| Guard {
            settings: settings.clone(),
            kv,
        })
    }

    /// What a banned pair is answered.
    pub fn answer(&self) -> GuardAnswer {
        self.settings.answer
    }

    /// The ban's length.
    pub fn ban_secs(&self) -> u64 {
        self.settings.ban
    }

    /// Whether the pair is banned, or has failures a success should forget. A store that
    /// cannot be read bans nobody (the location store fails the request anyway).
    pub fn seen(&self, ip: IpAddr, aor: &str, now_ms: u64) -> Seen {
        match self.kv.get(&pair_key(ip, aor), now_ms) {
            Ok(Some(KvValue::Int(n))) if n >= i64::from(self.settings.failures) => Seen::Banned,
            Ok(Some(_)) => Seen::Failed,
            _ => Seen::Clean,
        }
    }

    /// Counts a failed authentication of `aor` from `ip`.
    pub fn failed(&self, ip: IpAddr, aor: &str, now_ms: u64) -> Failure {
        let s = &self.settings;
        let window = Some(s.window as f64);
        let key = pair_key(ip, aor);
        let mut out = Failure::default();
        if let Ok(n) = self.kv.incr(&key, 1, window, now_ms)
            && n == i64::from(s.failures)
        {
            // The count stays, now for the length of the ban.
            let _ = self
                .kv
                .set(&key, KvValue::Int(n), Some(s.ban as f64), now_ms);
            out.banned_now = true;
        }
        if s.user_failures > 0
            && let Ok(n) = self.kv.incr(&alias_key(aor), 1, window, now_ms)
            && n > i64::from(s.user_failures)
        {
            let doublings = (n - i64::from(s.user_failures) - 1).clamp(0, 20) as u32;
            let ms = s
                .user_delay_ms
                .saturating_mul(1 << doublings)
                .min(s.user_delay_max_ms);
            out.delay = (ms > 0).then(|| Duration::from_millis(ms));
        }
        out
    }

    /// A right password from the pair: its failures are forgotten (not the alias's: a
    /// guess spread over many addresses goes on meeting the backoff).
    pub fn succeeded(&self, ip: IpAddr, aor: &str, now_ms: u64) {
        let _ = self.kv.delete(&pair_key(ip, aor), now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Kv;

    fn guard(settings: GuardSettings) -> Guard {
        Guard::new(&settings, Arc::new(Kv::new())).unwrap()
    }

    #[test]
    fn keys() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(pair_key(v4, "a@b"), "sipreg.guard:c0000201|a@b");
        assert_eq!(
            pair_key(v6, "a@b"),
            "sipreg.guard:20010db8000000000000000000000001|a@b"
        );
        assert_eq!(alias_key("a@b"), "sipreg.guard:*|a@b");
    }

    #[test]
    fn a_pair_is_banned_at_its_failures_and_for_the_ban() {
        let g = guard(GuardSettings::default());
        let (attacker, office) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for i in 1..5 {
            assert!(
                !g.failed(attacker, "alice@example.com", 0).banned_now,
                "{i}"
            );
            assert_eq!(g.seen(attacker, "alice@example.com", 0), Seen::Failed);
        }
        assert!(g.failed(attacker, "alice@example.com", 0).banned_now);
        assert_eq!(g.seen(attacker, "alice@example.com", 1_000), Seen::Banned);
        // the same alias from another address, another alias from the same address
        assert_eq!(g.seen(office, "alice@example.com", 1_000), Seen::Clean);
        assert_eq!(g.seen(attacker, "bob@example.com", 1_000), Seen::Clean);
        // the ban lasts `ban` seconds (900), longer than the window (300)
        assert_eq!(g.seen(attacker, "alice@example.com", 899_000), Seen::Banned);
        assert_eq!(g.seen(attacker, "alice@example.com", 900_001), Seen::Clean);
    }

    #[test]
    fn a_success_forgets_the_pairs_failures() {
        let g = guard(GuardSettings::default());
        let ip = "192.0.2.1".parse().unwrap();
        for _ in 0..4 {
            g.failed(ip, "alice@example.com", 0);
        }
        g.succeeded(ip, "alice@example.com", 0);
        assert_eq!(g.seen(ip, "alice@example.com", 0), Seen::Clean);
        assert!(!g.failed(ip, "alice@example.com", 0).banned_now);
    }

    #[test]
    fn failures_from_many_addresses_slow_the_alias_down() {
        let g = guard(GuardSettings {
            user_failures: 3,
            user_delay_ms: 100,
            user_delay_max_ms: 350,
            ..GuardSettings::default()
        });
        let delays: Vec<Option<u64>> = (0..6u8)
            .map(|i| {
                let ip = IpAddr::from([198, 51, 100, i]);
                g.failed(ip, "alice@example.com", 0)
                    .delay
                    .map(|d| d.as_millis() as u64)
            })
            .collect();
        assert_eq!(delays, [None, None, None, Some(100), Some(200), Some(350)]);
    }
}
