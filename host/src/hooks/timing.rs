//! What the chain measures of each implementation: the time of every hook call and the
//! calls that failed, per hook point (for `/metrics`).

use super::Hook;
use crate::metrics::{HOOK_BOUNDS_US, Histogram, Text};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One hook point of one implementation.
#[derive(Debug)]
struct Point {
    latency: Histogram,
    errors: AtomicU64,
}

/// The timings of every implementation of a chain, by position.
#[derive(Debug)]
pub struct Timings {
    points: Box<[Point]>,
}

impl Timings {
    pub fn new(implementations: usize) -> Timings {
        Timings {
            points: (0..implementations * Hook::ALL.len())
                .map(|_| Point {
                    latency: Histogram::new(HOOK_BOUNDS_US),
                    errors: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Records one call of `hook` of implementation `i`.
    pub fn record(&self, i: usize, hook: Hook, took: Duration, failed: bool) {
        let p = &self.points[i * Hook::ALL.len() + hook.index()];
        p.latency.observe(took);
        if failed {
            p.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many calls of `hook` implementation `i` answered.
    pub fn calls(&self, i: usize, hook: Hook) -> u64 {
        self.points[i * Hook::ALL.len() + hook.index()]
            .latency
            .count()
    }

    /// Writes the latency and error families; `names` are the implementations in order,
    /// `counters` what each reports of itself ([`super::Hooks::counters`]).
    pub fn write(&self, names: &[&str], counters: &[Vec<(&'static str, u64)>], out: &mut Text) {
        let calls = |i: usize, h: Hook| self.calls(i, h) > 0;
        out.family(
            "sipreg_hook_duration_seconds",
            "Time of hook calls, per hook point and implementation",
            "histogram",
        );
        for (i, name) in names.iter().enumerate() {
            for hook in Hook::ALL {
                if calls(i, hook) {
                    let p = &self.points[i * Hook::ALL.len() + hook.index()];
                    out.histogram(
                        "sipreg_hook_duration_seconds",
                        &[("hook", hook.name()), ("implementation", name)],
                        &p.latency,
                    );
                }
            }
        }
        out.family(
            "sipreg_hook_errors_total",
            "Hook calls that failed (a script error or limit, a plugin error)",
            "counter",
        );
        for (i, name) in names.iter().enumerate() {
            for hook in Hook::ALL {
                if calls(i, hook) {
                    let p = &self.points[i * Hook::ALL.len() + hook.index()];
                    out.sample(
                        "sipreg_hook_errors_total",
                        &[("hook", hook.name()), ("implementation", name)],
                        p.errors.load(Ordering::Relaxed),
                    );
                }
            }
        }
        out.family(
            "sipreg_hook_events_total",
            "What implementations count of themselves (Lua: limits exceeded)",
            "counter",
        );
        for (name, list) in names.iter().zip(counters) {
            for (event, n) in list {
                out.sample(
                    "sipreg_hook_events_total",
                    &[("implementation", name), ("event", event)],
                    *n,
                );
            }
        }
    }
}
