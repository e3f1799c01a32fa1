//! The outside services hooks reach (HTTP destinations of `sip.http`, a plugin's
//! database): per service, its calls, failures and latency for `/metrics`, and whether it
//! is failing now, so that an outage is logged once when it starts (with the service's
//! address and the first error) and once when it ends, never once per request; and the
//! trust anchors HTTPS to them uses (the system's and `[tls] ca`).

use crate::metrics::{Histogram, RTT_BOUNDS_US, Text};
use crate::tls::ClientTls;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The services of one server, by name (`scheme://host:port`).
#[derive(Debug, Default)]
pub struct Services {
    map: Mutex<BTreeMap<String, Arc<Service>>>,
    /// `[tls] ca`, resolved.
    ca: Option<PathBuf>,
    tls: OnceLock<Result<ClientTls, String>>,
}

/// One outside service.
#[derive(Debug)]
pub struct Service {
    name: String,
    calls: AtomicU64,
    failures: AtomicU64,
    latency: Histogram,
    failing: AtomicBool,
    /// When the current outage began.
    since: Mutex<Option<Instant>>,
}

impl Services {
    /// The services of a server whose `[tls] ca` is `ca`.
    pub fn new(ca: Option<PathBuf>) -> Services {
        Services {
            ca,
            ..Services::default()
        }
    }

    /// The TLS client configuration for them, made once.
    ///
    /// # Errors
    /// `[tls] ca` cannot be read or holds no usable anchor.
    pub fn tls(&self) -> Result<ClientTls, String> {
        self.tls
            .get_or_init(|| ClientTls::new(self.ca.as_deref()))
            .clone()
    }

    /// The record of service `name`, made on first use.
    pub fn service(&self, name: &str) -> Arc<Service> {
        if let Some(s) = self.map.lock().get(name) {
            return s.clone();
        }
        self.map
            .lock()
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Service {
                    name: name.to_owned(),
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    latency: Histogram::new(RTT_BOUNDS_US),
                    failing: AtomicBool::new(false),
                    since: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Writes the `sipreg_service_*` families (nothing while no service was reached).
    pub fn write(&self, out: &mut Text) {
        let map = self.map.lock();
        if map.is_empty() {
            return;
        }
        out.family(
            "sipreg_service_up",
            "0 while an outside service the hooks reach is failing (an outage), else 1",
            "gauge",
        );
        for s in map.values() {
            let up = u64::from(!s.failing.load(Ordering::Relaxed));
            out.sample("sipreg_service_up", &[("service", &s.name)], up);
        }
        for (name, help, pick) in [
            (
                "sipreg_service_calls_total",
                "Calls of outside services (HTTP requests, queries) made by hooks",
                (|s| &s.calls) as fn(&Service) -> &AtomicU64,
            ),
            (
                "sipreg_service_failures_total",
                "Calls of outside services that failed: timed out, refused, 5xx, unreadable",
                |s| &s.failures,
            ),
        ] {
            out.family(name, help, "counter");
            for s in map.values() {
                let n = pick(s).load(Ordering::Relaxed);
                out.sample(name, &[("service", &s.name)], n);
            }
        }
        out.family(
            "sipreg_service_duration_seconds",
            "Time outside services took to answer or fail",
            "histogram",
        );
        for s in map.values() {
            out.histogram(
                "sipreg_service_duration_seconds",
                &[("service", &s.name)],
                &s.latency,
            );
        }
    }
}

impl Service {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A call that came back with an answer (which may still prove unreadable).
    pub fn answered(&self, took: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency.observe(took);
    }

    /// A call that failed after `took` (none: counted already by [`Service::answered`]):
    /// the first failure of an outage logs it.
    pub fn failed(&self, took: Option<Duration>, why: &str) {
        if let Some(t) = took {
            self.answered(t);
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        if !self.failing.swap(true, Ordering::AcqRel) {
            *self.since.lock() = Some(Instant::now());
            tracing::warn!(
                target: "sipreg::services",
                service = %self.name,
                error = %why,
                "outside service failing; requests that need it are refused until it answers"
            );
        }
    }

    /// A call whose answer served: the end of an outage, if one was on, is logged.
    pub fn healthy(&self) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::AcqRel) {
            let lasted = self.since.lock().take().map(|t| t.elapsed());
            tracing::warn!(
                target: "sipreg::services",
                service = %self.name,
                outage_ms = lasted.map_or(0, |d| d.as_millis() as u64),
                "outside service answers again"
            );
        }
    }

    /// Whether an outage is on.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_starts_once_and_ends_once() {
        let services = Services::default();
        let s = services.service("http://127.0.0.1:9");
        assert!(Arc::ptr_eq(&s, &services.service("http://127.0.0.1:9")));
        s.answered(Duration::from_millis(2));
        s.healthy();
        assert!(!s.failing());
        s.failed(Some(Duration::from_millis(1000)), "timed out");
        s.failed(Some(Duration::from_millis(1000)), "timed out");
        assert!(s.failing());
        s.answered(Duration::from_millis(3));
        s.failed(None, "the answer is not JSON");
        s.healthy();
        assert!(!s.failing());
        let mut out = Text::default();
        services.write(&mut out);
        let text = out.0;
        let line = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{name}{{service=\"http://127.0.0.1:9\"}}")))
                .map(|l| l.rsplit(' ').next().unwrap_or("").to_owned())
        };
        assert_eq!(line("sipreg_service_calls_total").as_deref(), Some("4"));
        assert_eq!(line("sipreg_service_failures_total").as_deref(), Some("3"));
        assert_eq!(line("sipreg_service_up").as_deref(), Some("1"));
        assert_eq!(
            line("sipreg_service_duration_seconds_count").as_deref(),
            Some("4")
        );
    }
}
