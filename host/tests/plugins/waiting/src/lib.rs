//! A test plugin whose `authenticate` answers later, as a plugin over a database or an HTTP
//! service would: the request's user name goes to a thread of the plugin's own, which
//! answers after `delay_ms` (config) through the call's `Done`. Users are named by what
//! they test:
//! - `u<N>` (any other name): credentials, password `pw-<name>`, after the delay;
//! - `nobody...`: a challenge, after the delay (an unknown user);
//! - `now...`: credentials at once, `Started::Now` (a cache hit);
//! - `drop...`: the thread drops the call's `Done` without answering (the request: 500);
//! - `never...`: the thread keeps the `Done` for ever (the request: the wait deadline's 500).
//!
//! A request without credentials is challenged at once.

use plugin_api::{
    Auth, AuthDecision, Done, Host, Level, Plugin, Request, Secret, Started, declare_plugin,
};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::{Duration, Instant};

/// What the thread does with one call once its time comes.
enum Then {
    Answer(AuthDecision),
    Drop,
    Keep,
}

struct Job {
    at: Instant,
    then: Then,
    done: Done<AuthDecision>,
}

/// The plugin.
pub struct Waiting {
    delay: Duration,
    jobs: Mutex<Sender<Job>>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("delay", &self.delay)
            .finish()
    }
}

/// The thread that answers: the jobs come in the order they are due (one delay for all).
fn answerer(host: Host) -> Sender<Job> {
    let (tx, rx) = channel::<Job>();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        for job in rx {
            if let Some(wait) = job.at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            match job.then {
                Then::Answer(d) => job.done.complete(d),
                Then::Drop => drop(job.done),
                Then::Keep => kept.push(job.done),
            }
        }
        host.log(Level::Info, "answerer stopped", &[]);
    });
    tx
}

fn credentials(user: &str) -> AuthDecision {
    AuthDecision::Credentials {
        username: user.into(),
        secret: Secret::Password(format!("pw-{user}")),
    }
}

impl Plugin for Waiting {
    const NAME: &'static str = "waiting";
    const WAITS: bool = true;

    fn create(config: &str, host: Host) -> Result<Self, String> {
        let delay_ms = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("delay_ms = "))
            .map_or(Ok(100), str::parse::<u64>)
            .map_err(|e| format!("delay_ms: {e}"))?;
        Ok(Waiting {
            delay: Duration::from_millis(delay_ms),
            jobs: Mutex::new(answerer(host)),
        })
    }

    fn authenticate(&self, _req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
        auth.username.map_or(AuthDecision::Challenge, credentials)
    }

    fn start_authenticate(
        &self,
        _req: &Request<'_>,
        auth: &Auth<'_>,
        done: Done<AuthDecision>,
    ) -> Started<AuthDecision> {
        let Some(user) = auth.username else {
            return Started::Now(AuthDecision::Challenge);
        };
        let then = if user.starts_with("now") {
            return Started::Now(credentials(user));
        } else if user.starts_with("nobody") {
            Then::Answer(AuthDecision::Challenge)
        } else if user.starts_with("drop") {
            Then::Drop
        } else if user.starts_with("never") {
            Then::Keep
        } else {
            Then::Answer(credentials(user))
        };
        let job = Job {
            at: Instant::now() + self.delay,
            then,
            done,
        };
        match self.jobs.lock() {
            Ok(jobs) if jobs.send(job).is_ok() => Started::Later,
            _ => Started::Now(AuthDecision::Challenge),
        }
    }
}

declare_plugin!(Waiting);
