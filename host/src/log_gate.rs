//! Log lines that stay readable under attack. A flood of refusals from one source (a
//! banned svcrack, a scanner) wrote thousands of lines a second; here each kind of line
//! about one source address (refusals), or about one source and one To (the two summary
//! lines of every request: a proxy in front of many phones is one source, and its phones
//! are not held back) is written [`BURST`] times per window of [`WINDOW_MS`], and what was
//! held back is told in one line when the window is over:
//!
//! `Registration refused repeated 2811 times in the last 10 s kind="Registration refused" source=192.0.2.1 repeated=2811`
//!
//! (with `source` as in the lines it stands for, so a fail2ban filter matches both).
//! Nothing else is lost: the history and `/metrics` count every refusal. The gate is only
//! asked when the line would be written at all (`enabled`), so a server logging at `warn`
//! pays nothing for it.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;

/// The lines of one kind about one source written per window.
pub const BURST: u64 = 5;
/// The window.
pub const WINDOW_MS: u64 = 10_000;
/// The most sources tracked at once; lines about further sources are counted together
/// (a flood from spoofed addresses cannot grow the table).
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: u64,
    seen: u64,
}

/// The gate.
#[derive(Debug, Default)]
pub struct LogGate {
    windows: Mutex<HashMap<Key, Window>>,
}

/// A kind of line, its source (None: one of too many), and what it is about (0: the
/// source as a whole).
type Key = (&'static str, Option<IpAddr>, u64);

fn summarise(kind: &'static str, source: Option<IpAddr>, held: u64) {
    let source = source.map_or_else(|| "many".to_owned(), |ip| ip.to_string());
    tracing::info!(
        target: "sipreg::support",
        kind,
        source = %source,
        repeated = held,
        "{kind} repeated {held} times in the last {} s",
        WINDOW_MS / 1000
    );
}

impl LogGate {
    /// Whether a line of `kind` about `source` is written now; one that is not is counted
    /// and summarised when its window is over.
    pub fn admit(&self, kind: &'static str, source: IpAddr, now_ms: u64) -> bool {
        self.admit_about(kind, source, 0, now_ms)
    }

    /// [`LogGate::admit`] for lines about `subject` (a hash of the To header) from `source`.
    pub fn admit_about(
        &self,
        kind: &'static str,
        source: IpAddr,
        subject: u64,
        now_ms: u64,
    ) -> bool {
        let mut windows = self.windows.lock();
        let key = if windows.len() < MAX_SOURCES
            || windows.contains_key(&(kind, Some(source), subject))
        {
            (kind, Some(source), subject)
        } else {
            (kind, None, 0)
        };
        let w = windows.entry(key).or_insert(Window {
            start_ms: now_ms,
            seen: 0,
        });
        if now_ms >= w.start_ms.saturating_add(WINDOW_MS) {
            let held = w.seen.saturating_sub(BURST);
            if held > 0 {
                summarise(kind, key.1, held);
            }
            *w = Window {
                start_ms: now_ms,
                seen: 0,
            };
        }
        w.seen += 1;
        w.seen <= BURST
    }

    /// Writes the summaries of the windows that are over and forgets them (the server's
    /// timer calls it every second).
    pub fn flush(&self, now_ms: u64) {
        self.windows.lock().retain(|&(kind, source, _), w| {
            if now_ms < w.start_ms.saturating_add(WINDOW_MS) {
                return true;
            }
            let held = w.seen.saturating_sub(BURST);
            if held > 0 {
                summarise(kind, source, held);
            }
            false
        });
    }

    /// The sources (and kinds) in an open window.
    pub fn tracked(&self) -> usize {
        self.windows.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_kind_and_source_then_one_line_for_the_rest() {
        let g = LogGate::default();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let written = (0..100)
            .filter(|i| g.admit("Registration refused", a, *i))
            .count();
        assert_eq!(written, 5);
        // another source, another kind: their own bursts
        assert!(g.admit("Registration refused", b, 100));
        assert!(g.admit("Authentication failed", a, 100));
        assert!(g.admit_about("Registration refused", a, 7, 100));
        assert_eq!(g.tracked(), 4);
        // the window ends: the next line is written again, the table empties on flush
        assert!(g.admit("Registration refused", a, WINDOW_MS + 1));
        g.flush(3 * WINDOW_MS);
        assert_eq!(g.tracked(), 0);
    }
}
