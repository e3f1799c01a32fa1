//! The registrar (RFC 3261 section 10.3): the REGISTER procedure around the hook chain and
//! the location store, and the removals that do not come from a REGISTER (expiry, an
//! operator, qualify).
//!
//! - `register.rs`: a REGISTER read once into one value ([`register::Register`]).
//! - `steps.rs`: the procedure, one function per step of section 10.3.
//! - `authenticate.rs`: steps 3 and 4 (the `authenticate` chain and the digest check).
//! - `limits.rs`: the limits of one AOR (`[registrar]`, its alias's, what `bind` set).
//! - `ok.rs`: the 200 (step 8).
//! - `events.rs`: what a change of bindings sets off: the log, the history, qualify and
//!   the `expire` chain, raised by the registrar in one place.
//! - `log.rs`: the log lines, history entries and metrics of bindings and refusals.

mod aor_limits;
mod authenticate;
mod date;
mod events;
mod limits;
mod log;
mod ok;
mod register;
mod steps;

use crate::auth::guard::Guard;
use crate::auth::nonce::Nonces;
use crate::auth::replay::NonceCounts;
use crate::auth::service_route::ServiceRoutes;
use crate::config::{Challenge, Config};
use crate::history::History;
use crate::hooks::{HookChain, RequestInfo};
use crate::log_gate::LogGate;
use crate::metrics::Metrics;
use crate::qualify::Qualify;
use crate::sip::Reply;
use crate::sip::digest::Algorithm;
use crate::sip::request::Checked;
use crate::store::{Durable, LocationStore, Stores};
use limits::Limits;
use log::Log;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The authentication settings and state.
#[derive(Debug)]
pub(crate) struct AuthState {
    pub mode: Challenge,
    pub realm: String,
    pub algorithms: Vec<Algorithm>,
    /// The aliases (`user@domain`, domain in lower case) with a challenge list of their
    /// own (`[[aliases]] algorithms`).
    pub alias_algorithms: std::collections::HashMap<String, Vec<Algorithm>>,
    pub nonces: Nonces,
    pub counts: NonceCounts,
    /// The failed-authentication guard, unless it is off.
    pub guard: Option<Guard>,
}

impl AuthState {
    /// The algorithms an AOR is challenged with and may answer with: its alias's own
    /// list, else `[auth] algorithms` (an unknown alias gets the global list too).
    pub fn algorithms_for(&self, aor: &str) -> &[Algorithm] {
        self.alias_algorithms
            .get(aor)
            .map_or(&self.algorithms, |a| a)
    }
}

/// What the registrar answers.
#[derive(Debug, Clone)]
pub enum Outcome {
    Reply(Reply),
    /// A 200 to send once its change is on disk (a 500 if it does not get there).
    Stored(Reply, Durable),
    /// A reply sent after a pause (the guard's backoff for a guessed alias).
    Held(Reply, std::time::Duration),
    Drop,
}

/// The registrar: configuration, hook chain and location store.
#[derive(Debug)]
pub struct Registrar {
    limits: Limits,
    /// The aliases with limits or reply headers of their own.
    alias_settings: std::collections::HashMap<String, limits::AliasSettings>,
    /// Signs the Service-Route values of a 200, which the proxy then lets devices preload.
    service_routes: ServiceRoutes,
    domains: Vec<String>,
    pub(crate) auth: AuthState,
    chain: HookChain,
    location: Arc<dyn LocationStore>,
    qualify: Arc<Qualify>,
    log: Log,
    /// New registrations are refused (503); removals and queries are served.
    maintenance: AtomicBool,
}

impl Registrar {
    /// A registrar for a checked configuration.
    pub fn new(
        config: &Config,
        chain: HookChain,
        stores: &Stores,
        qualify: Arc<Qualify>,
        service_routes: ServiceRoutes,
    ) -> Registrar {
        let realm = config
            .auth
            .realm
            .clone()
            .or_else(|| config.server.domains.first().cloned())
            .unwrap_or_else(|| "sipreg".to_owned());
        let key = match &config.auth.nonce_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let nonces = Nonces::new(&key, &realm, config.auth.nonce_ttl);
        Registrar {
            limits: Limits::configured(&config.registrar),
            alias_settings: limits::alias_settings(&config.aliases),
            service_routes,
            domains: config.server.domains.clone(),
            auth: AuthState {
                mode: config.auth.challenge,
                realm,
                algorithms: config.auth.algorithms.clone(),
                alias_algorithms: config
                    .aliases
                    .iter()
                    .filter_map(|a| Some((a.aor()?, a.algorithms.clone()?)))
                    .collect(),
                nonces,
                counts: NonceCounts::new(config.auth.nonce_ttl),
                guard: Guard::new(&config.auth.guard, stores.kv.clone()),
            },
            chain,
            location: stores.location.clone(),
            qualify,
            log: Log {
                history: Arc::new(History::new(config.history_capacity())),
                metrics: Arc::new(Metrics::default()),
                clock: stores.clock.clone(),
                gate: Arc::new(LogGate::default()),
            },
            maintenance: AtomicBool::new(false),
        }
    }

    /// Puts the registrar into maintenance (new registrations get 503 with Retry-After,
    /// de-registrations and queries are still served) or takes it out; logged.
    pub fn set_maintenance(&self, on: bool) {
        if self.maintenance.swap(on, Ordering::Relaxed) != on {
            tracing::info!(target: log::ADMIN, on, "Maintenance mode {}", if on { "on" } else { "off" });
        }
    }

    /// Whether the registrar is in maintenance.
    pub fn in_maintenance(&self) -> bool {
        self.maintenance.load(Ordering::Relaxed)
    }

    /// The location store.
    pub fn location(&self) -> &Arc<dyn LocationStore> {
        &self.location
    }

    /// The registration history.
    pub fn history(&self) -> &Arc<History> {
        &self.log.history
    }

    /// What keeps floods of support lines down (the core's summary lines use it too).
    pub fn log_gate(&self) -> &LogGate {
        &self.log.gate
    }

    /// What the registrar counts.
    pub fn metrics(&self) -> &Metrics {
        &self.log.metrics
    }

    /// The hook chain.
    pub fn chain(&self) -> &HookChain {
        &self.chain
    }

    /// Handles a REGISTER that passed the syntax checks and `on_request`.
    pub async fn register(
        &self,
        req: &RequestInfo<'_>,
        checked: &Checked<'_>,
        now_ms: u64,
    ) -> Outcome {
        let outcome = self.procedure(req, checked, now_ms).await;
        if let Outcome::Reply(r) | Outcome::Stored(r, _) | Outcome::Held(r, _) = &outcome {
            self.log.metrics.register_answered(r.code);
        }
        outcome
    }
}
