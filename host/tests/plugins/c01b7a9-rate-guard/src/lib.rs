//! `rate-guard`: a per-source request rate limit, and a ban of sources that fail
//! authentication again and again. Counters live in sipreg's shared store, so scripts
//! and other plugins see them (`rate-guard:ban:<ip>`).
//!
//! ```toml
//! [[hooks]]
//! type = "plugin"
//! path = "../target/release/librate_guard.so"
//! config = { requests_per_second = 50, failures = 5, failure_window_seconds = 300, ban_seconds = 600 }
//! ```
//!
//! - More than `requests_per_second` requests from one address within one second: 503
//!   with Retry-After 1 (logged once per second and address).
//! - `failures` REGISTERs with credentials in a row that never reach `bind` (wrong
//!   password, unknown user) within `failure_window_seconds`: the address is banned for
//!   `ban_seconds` (403 "Banned"). Each new ban logs the whole ban list.
//!
//! Put it first among the hooks.

use plugin_api::{
    Auth, AuthDecision, Bind, Decision, Host, KvValue, Level, Plugin, Reply, Request,
    declare_plugin,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "fifty")]
    requests_per_second: i64,
    #[serde(default = "five")]
    failures: i64,
    #[serde(default = "five_minutes")]
    failure_window_seconds: f64,
    #[serde(default = "ten_minutes")]
    ban_seconds: f64,
}

fn fifty() -> i64 {
    50
}
fn five() -> i64 {
    5
}
fn five_minutes() -> f64 {
    300.0
}
fn ten_minutes() -> f64 {
    600.0
}

/// The plugin.
#[derive(Debug)]
pub struct RateGuard {
    host: Host,
    config: Config,
    /// Banned addresses and when (ms) their ban ends, for the log.
    bans: Mutex<BTreeMap<String, u64>>,
}

impl RateGuard {
    fn banned(&self, ip: &str) -> bool {
        self.host.kv_get(&format!("rate-guard:ban:{ip}")).is_some()
    }

    fn ban(&self, ip: &str, failures: i64, now_ms: u64) {
        self.host.kv_set(
            &format!("rate-guard:ban:{ip}"),
            &KvValue::Bool(true),
            Some(self.config.ban_seconds),
        );
        self.host.kv_delete(&format!("rate-guard:fail:{ip}"));
        let list = {
            let Ok(mut bans) = self.bans.lock() else {
                return;
            };
            bans.retain(|_, until| *until > now_ms);
            bans.insert(
                ip.to_owned(),
                now_ms + (self.config.ban_seconds * 1000.0) as u64,
            );
            bans.keys().cloned().collect::<Vec<_>>().join(" ")
        };
        self.host.log(
            Level::Warn,
            "Source banned",
            &[
                ("Source", ip),
                ("Failures", &failures.to_string()),
                ("Seconds", &self.config.ban_seconds.to_string()),
                ("Banned", &list),
            ],
        );
    }
}

impl Plugin for RateGuard {
    const NAME: &'static str = "rate-guard";

    fn create(config: &str, host: Host) -> Result<Self, String> {
        let config: Config =
            toml::from_str(config).map_err(|e| format!("config: {}", e.message()))?;
        if config.requests_per_second < 1 || config.failures < 1 {
            return Err("config: requests_per_second and failures must be at least 1".into());
        }
        Ok(RateGuard {
            host,
            config,
            bans: Mutex::new(BTreeMap::new()),
        })
    }

    fn on_request(&self, req: &Request<'_>) -> Decision {
        let ip = req.source().0;
        if self.banned(ip) {
            return Decision::Respond(Reply::with_reason(403, "Banned"));
        }
        let second = req.now_ms() / 1000;
        let n = self
            .host
            .kv_incr(&format!("rate-guard:rate:{ip}:{second}"), 1, Some(2.0))
            .unwrap_or(0);
        if n > self.config.requests_per_second {
            if n == self.config.requests_per_second + 1 {
                self.host.log(
                    Level::Warn,
                    "Rate limit exceeded",
                    &[
                        ("Source", ip),
                        ("Limit", &self.config.requests_per_second.to_string()),
                    ],
                );
            }
            return Decision::Respond(
                Reply::with_reason(503, "Too many requests").header("Retry-After", "1"),
            );
        }
        Decision::Continue
    }

    fn authenticate(&self, req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
        if auth.username.is_some() {
            let ip = req.source().0;
            let key = format!("rate-guard:fail:{ip}");
            // the failures seen so far; this attempt is forgiven in bind if it succeeds
            let before = match self.host.kv_get(&key) {
                Some(KvValue::Int(n)) => n,
                _ => 0,
            };
            if before >= self.config.failures {
                self.ban(ip, before, req.now_ms());
                return AuthDecision::Respond(Reply::with_reason(403, "Banned"));
            }
            self.host
                .kv_incr(&key, 1, Some(self.config.failure_window_seconds));
        }
        AuthDecision::Pass
    }

    fn bind(&self, req: &Request<'_>, _bind: &mut Bind<'_>) -> Decision {
        self.host
            .kv_delete(&format!("rate-guard:fail:{}", req.source().0));
        Decision::Continue
    }
}

declare_plugin!(RateGuard);
