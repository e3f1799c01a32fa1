//! Counters and histograms for Prometheus (`/metrics` on the admin listener), and the text
//! exposition format they are written in. Every update is one or two relaxed atomic adds:
//! nothing here takes a lock on the request path (the Prometheus crates' labelled
//! families and histograms do).

use std::fmt::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram with fixed bucket bounds, in microseconds.
#[derive(Debug)]
pub struct Histogram {
    bounds_us: &'static [u64],
    /// One count per bound, and one for what is above the last.
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

/// Bounds for hook calls: 10 µs to 100 ms.
pub const HOOK_BOUNDS_US: &[u64] = &[
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000,
];

/// Bounds for round trips to devices: 1 ms to 5 s.
pub const RTT_BOUNDS_US: &[u64] = &[
    1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000,
];

impl Histogram {
    pub fn new(bounds_us: &'static [u64]) -> Histogram {
        Histogram {
            bounds_us,
            counts: (0..=bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = self.bounds_us.partition_point(|b| *b < us);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// How many observations were made.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Writes the `_bucket`, `_sum` and `_count` samples, in seconds.
    fn write(&self, out: &mut Text, name: &str, labels: &[(&str, &str)]) {
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = match self.bounds_us.get(i) {
                Some(b) => seconds(*b),
                None => "+Inf".to_owned(),
            };
            let mut l = labels.to_vec();
            l.push(("le", &le));
            out.sample(&format!("{name}_bucket"), &l, cumulative);
        }
        out.sample_f(
            &format!("{name}_sum"),
            labels,
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
        out.sample(&format!("{name}_count"), labels, cumulative);
    }
}

fn seconds(us: u64) -> String {
    format!("{}", us as f64 / 1e6)
}

/// Counters labelled by a static string (a reason from a fixed set in the code), found
/// without a lock: a slot is claimed once per label. Past `SLOTS` labels, `other`.
#[derive(Debug)]
pub struct Labelled {
    slots: Box<[(OnceLock<&'static str>, AtomicU64)]>,
}

const SLOTS: usize = 32;

impl Default for Labelled {
    fn default() -> Self {
        Labelled {
            slots: (0..SLOTS)
                .map(|_| (OnceLock::new(), AtomicU64::new(0)))
                .collect(),
        }
    }
}

impl Labelled {
    /// Adds one to `label`'s counter.
    pub fn add(&self, label: &'static str) {
        for (l, n) in self.slots.iter().take(SLOTS - 1) {
            if *l.get_or_init(|| label) == label {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let (l, n) = &self.slots[SLOTS - 1];
        let _ = l.set("other");
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to the counter of a label known only at run time (a refusal's reason):
    /// the text up to its first `:` (what follows may quote the request). The first
    /// `SLOTS - 1` distinct labels are kept (leaked once, so at most that many); later
    /// ones count as `other`.
    pub fn add_text(&self, text: &str) {
        let label = text.split(':').next().unwrap_or("").trim();
        for (l, n) in self.slots.iter().take(SLOTS - 1) {
            match l.get() {
                Some(known) if *known == label => {
                    n.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(_) => {}
                None => {
                    let claimed = *l.get_or_init(|| Box::leak(label.to_owned().into_boxed_str()));
                    if claimed == label {
                        n.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
        let (l, n) = &self.slots[SLOTS - 1];
        let _ = l.set("other");
        n.fetch_add(1, Ordering::Relaxed);
    }

    /// Each label used so far with its count.
    pub fn values(&self) -> Vec<(&'static str, u64)> {
        self.slots
            .iter()
            .filter_map(|(l, n)| l.get().map(|l| (*l, n.load(Ordering::Relaxed))))
            .collect()
    }
}

/// What the registrar and the qualify probes count.
#[derive(Debug)]
pub struct Metrics {
    /// REGISTERs answered, by status code (100 to 699).
    registers: Box<[AtomicU64]>,
    /// Authentication failures by reason ("Invalid credentials", "Stale nonce", ...).
    pub auth_failures: Labelled,
    /// REGISTERs refused (or left unanswered) by reason, whoever refused them.
    pub refusals: Labelled,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            registers: (100..700).map(|_| AtomicU64::new(0)).collect(),
            auth_failures: Labelled::default(),
            refusals: Labelled::default(),
        }
    }
}

impl Metrics {
    /// Counts a REGISTER answered with `code`.
    pub fn register_answered(&self, code: u16) {
        if let Some(c) = self.registers.get(usize::from(code).wrapping_sub(100)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// REGISTERs answered with `code` so far.
    pub fn registers(&self, code: u16) -> u64 {
        self.registers
            .get(usize::from(code).wrapping_sub(100))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Writes the REGISTER and authentication families.
    pub fn write(&self, out: &mut Text) {
        out.family(
            "sipreg_register_responses_total",
            "REGISTER requests answered, by status code",
            "counter",
        );
        for (i, c) in self.registers.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let code = (i + 100).to_string();
                out.sample(
                    "sipreg_register_responses_total",
                    &[("code", &code), ("outcome", outcome_of(i as u16 + 100))],
                    n,
                );
            }
        }
        out.family(
            "sipreg_auth_failures_total",
            "Digest authentications that failed, by reason",
            "counter",
        );
        for (reason, n) in self.auth_failures.values() {
            out.sample("sipreg_auth_failures_total", &[("reason", reason)], n);
        }
        out.family(
            "sipreg_register_refusals_total",
            "REGISTER requests refused or left unanswered, by reason",
            "counter",
        );
        for (reason, n) in self.refusals.values() {
            out.sample("sipreg_register_refusals_total", &[("reason", reason)], n);
        }
    }
}

/// The outcome label of a REGISTER's status code.
fn outcome_of(code: u16) -> &'static str {
    match code {
        200..=299 => "ok",
        401 | 407 => "challenged",
        503 => "unavailable",
        300..=499 => "refused",
        _ => "failed",
    }
}

/// Text in the Prometheus exposition format (version 0.0.4).
#[derive(Debug, Default)]
pub struct Text(pub String);

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Text {
    /// The `# HELP` and `# TYPE` lines of a family.
    pub fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.0.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            let _ = write!(self.0, "{k}=\"{}\"", escape(v));
        }
        self.0.push('}');
    }

    /// One sample with an integer value.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.0.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.0, " {value}");
    }

    /// One sample with a real value.
    pub fn sample_f(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.0, " {value}");
    }

    /// A histogram's samples.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        h.write(self, name, labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_in_seconds() {
        let h = Histogram::new(&[1_000, 10_000]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_micros(5_000));
        h.observe(Duration::from_secs(1));
        let mut t = Text::default();
        t.histogram("x", &[("hook", "bind")], &h);
        assert_eq!(
            t.0,
            "x_bucket{hook=\"bind\",le=\"0.001\"} 1\n\
             x_bucket{hook=\"bind\",le=\"0.01\"} 2\n\
             x_bucket{hook=\"bind\",le=\"+Inf\"} 3\n\
             x_sum{hook=\"bind\"} 1.0055\n\
             x_count{hook=\"bind\"} 3\n"
        );
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn labelled_counts_each_label_and_overflows_into_other() {
        let l = Labelled::default();
        l.add("Stale nonce");
        l.add("Invalid credentials");
        l.add("Stale nonce");
        assert_eq!(
            l.values(),
            vec![("Stale nonce", 2), ("Invalid credentials", 1)]
        );
        let names: Vec<&'static str> = (0..40)
            .map(|i| &*Box::leak(format!("r{i}").into_boxed_str()))
            .collect();
        for n in &names {
            l.add(n);
        }
        let v = l.values();
        assert_eq!(v.len(), SLOTS);
        assert_eq!(v.last().unwrap(), &("other", 40 - (SLOTS as u64 - 3)));
    }

    #[test]
    fn registers_by_code_with_escaped_labels() {
        let m = Metrics::default();
        m.register_answered(200);
        m.register_answered(200);
        m.register_answered(401);
        m.register_answered(99); // out of range: ignored
        m.auth_failures.add("a \"quoted\" reason");
        let mut t = Text::default();
        m.write(&mut t);
        assert!(t.0.contains("sipreg_register_responses_total{code=\"200\",outcome=\"ok\"} 2\n"));
        assert!(
            t.0.contains(
                "sipreg_register_responses_total{code=\"401\",outcome=\"challenged\"} 1\n"
            )
        );
        assert!(t.0.contains("sipreg_auth_failures_total{reason=\"a \\\"quoted\\\" reason\"} 1\n"));
        assert_eq!(m.registers(200), 2);
    }
}
